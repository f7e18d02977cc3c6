"""The login brake (issue 8, finding 4): per account and per source address, in PostgreSQL, shared by
every dashboard process, with no way to evict a live lock. Limits are the defaults: an account locks
after 5 failures within 15 min (5 min), a source address after 10 (15 min)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from core.settings import Settings
from dashboard.login_brake import Counter, Limit, account_key, admit, settle_failure, source_key
from tests.support.dashboard_server import login_token, post_login, running_dashboard
from tests.support.ward_seed import PASSWORD, seed_two_wards

SECRET = "test-session-secret-brake-0123456789"
ACCOUNT = Limit(max_failures=5, window_s=900, lock_s=300)


@pytest.fixture
def settings(database_url: str, db: psycopg.Connection) -> Settings:
    seed_two_wards(
        db,
        [
            ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
            ("nurse.syd", "Olle Öst", "nurse", ["avd-syd"]),
        ],
    )
    return Settings(database_url=database_url, session_secret=SECRET)


@pytest.fixture
def base_url(settings: Settings) -> Iterator[str]:
    with running_dashboard(settings) as url:
        yield url


def login_from(base_url: str, address: str, username: str, password: str) -> httpx.Response:
    """A login from `address`: uvicorn takes X-Forwarded-For from 127.0.0.1, as from the region's proxy."""
    with httpx.Client(base_url=base_url, timeout=30, headers={"X-Forwarded-For": address}) as client:
        return post_login(client, username, password)


# --- the pure rules ------------------------------------------------------------------------------


def test_five_failures_lock_and_the_lock_ends_with_a_new_window() -> None:
    counter, statuses = Counter(0, 0.0), []
    for t in range(6):
        counter, wait = admit(counter, float(t), ACCOUNT)
        if wait:
            statuses.append("locked")
            continue
        counter, locked = settle_failure(counter, float(t), ACCOUNT)
        statuses.append("locked now" if locked else "wrong")
    assert statuses == ["wrong"] * 4 + ["locked now", "locked"]
    assert counter.locked_for(10.0) == pytest.approx(294)
    after, wait = admit(counter, 305.0, ACCOUNT)
    assert wait == 0 and after == Counter(1, 305.0)
    # Failures spread wider than the window never lock.
    slow = Counter(0, 0.0)
    for t in range(0, 10_000, 1000):
        slow, wait = admit(slow, float(t), ACCOUNT)
        slow, locked = settle_failure(slow, float(t), ACCOUNT)
        assert wait == 0 and not locked


def test_attempts_still_being_checked_count_so_a_parallel_burst_gets_no_more_guesses() -> None:
    counter, waits = Counter(0, 0.0), []
    for _ in range(8):  # eight guesses arrive before the first answer
        counter, wait = admit(counter, 1.0, ACCOUNT)
        waits.append(wait)
    assert waits == [0.0] * 5 + [300.0] * 3


def test_keys_hide_typed_usernames_and_group_ipv6_by_64() -> None:
    assert account_key(" Nurse.Norr ") == account_key("nurse.norr")
    assert "nurse" not in account_key("nurse.norr") and len(account_key("x")) == 64
    assert source_key("10.1.2.3") == "10.1.2.3"
    assert source_key("2001:db8:1:2:aaaa::1") == source_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert source_key(None) == source_key("not an address") == "unknown"


# --- against the running dashboard ---------------------------------------------------------------


def test_password_spraying_from_one_address_is_stopped_after_ten_failures(base_url: str) -> None:
    sprayer = "10.9.9.9"
    statuses = [login_from(base_url, sprayer, f"user{i}", "Sommar2024!").status_code for i in range(10)]
    assert statuses == [401] * 9 + [429]
    locked = login_from(base_url, sprayer, "nurse.norr", PASSWORD)
    assert locked.status_code == 429 and 800 < int(locked.headers["retry-after"]) <= 900
    assert "För många misslyckade inloggningar. Försök igen om 15 min." in locked.text
    # The brake stopped the address, not the nurse: from her own ward PC she logs in.
    assert login_from(base_url, "10.1.1.1", "nurse.norr", PASSWORD).status_code == 303


def test_an_account_lock_holds_for_every_dashboard_process(settings: Settings, base_url: str) -> None:
    statuses = [login_from(base_url, f"10.2.0.{i}", "nurse.norr", "fel").status_code for i in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    with running_dashboard(settings) as second_process:
        refused = login_from(second_process, "10.3.0.1", "nurse.norr", PASSWORD)
        assert refused.status_code == 429
        assert login_from(second_process, "10.3.0.1", "nurse.syd", PASSWORD).status_code == 303


def test_a_live_lock_survives_a_flood_of_failures_on_other_names(
    base_url: str, db: psycopg.Connection
) -> None:
    for i in range(5):
        login_from(base_url, f"10.4.0.{i}", "nurse.norr", "fel")
    # 10,000 failures on other names within the window, and 10,000 long over (the in-memory brake
    # dropped live locks to make room past 10,000 names).
    db.execute(
        "INSERT INTO login_brakes (scope, key, failures, window_start)"
        " SELECT 'account', md5(i::text || w), 1, now() - make_interval(mins => m)"
        " FROM generate_series(1, 10000) i, (VALUES ('now', 1), ('old', 60)) v(w, m)"
    )
    for i in range(3):  # more failures, which also clean up
        login_from(base_url, f"10.5.0.{i}", f"other{i}", "fel")
    assert login_from(base_url, "10.6.0.1", "nurse.norr", PASSWORD).status_code == 429
    counts = db.execute(
        "SELECT count(*) FILTER (WHERE window_start < now() - interval '15 minutes'),"
        " count(*) FILTER (WHERE locked_until > now()) FROM login_brakes"
    ).fetchone()
    assert counts == (0, 1)  # the expired rows are gone, the lock is kept


def test_a_burst_of_parallel_guesses_gets_no_more_than_the_limit(base_url: str) -> None:
    clients = [
        httpx.Client(base_url=base_url, timeout=60, headers={"X-Forwarded-For": f"10.7.0.{i}"})
        for i in range(12)
    ]
    try:
        tokens = [login_token(client) for client in clients]

        def guess(i: int) -> int:
            data = {"username": "nurse.norr", "password": f"gissning-{i}", "csrf": tokens[i]}
            return clients[i].post("/login", data=data).status_code

        with ThreadPoolExecutor(len(clients)) as pool:
            statuses = list(pool.map(guess, range(len(clients))))
    finally:
        for client in clients:
            client.close()
    assert sorted(statuses) == [401] * 4 + [429] * 8, statuses
