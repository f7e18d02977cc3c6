"""The login brake: failed password checks counted per account and per source address, in PostgreSQL.

Issue 8, finding 4: the brake used to live in one process's memory, counted only per username, and
could be emptied by failing on 10,000 other names. Now

* every dashboard process reads and writes the same rows (`login_brakes`, migration 0006);
* an account (the typed username, known or not, so the brake reveals nothing) locks after
  `account_max_failures` failures within the window, whatever address they came from;
* a source address locks after `source_max_failures` failures on any usernames: that is what
  slows password spraying (many usernames, one try each);
* rows are deleted only when their window has passed and their lock, if any, is over.

An attempt is *admitted* before the password is checked, and admission counts it as a failure
until it is settled: so a burst of parallel guesses cannot all slip past the check before the
first of them is recorded. A correct password takes its count back (and clears the account's).

The decisions are pure functions of a `Counter` and the database's clock (`admit`, `settle_failure`);
`LoginBrake` only reads and writes rows, each step in one short transaction.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import psycopg

    from core.settings import Settings

log = logging.getLogger(__name__)

Scope = Literal["account", "source"]


@dataclass(frozen=True, slots=True)
class Limit:
    max_failures: int
    window_s: float
    lock_s: float


@dataclass(frozen=True, slots=True)
class Counter:
    """One row of `login_brakes`; times in epoch seconds of the database's clock."""

    failures: int
    window_start: float
    locked_until: float | None = None

    def locked_for(self, now: float) -> float:
        return max(0.0, self.locked_until - now) if self.locked_until is not None else 0.0


def admit(counter: Counter, now: float, limit: Limit) -> tuple[Counter, float]:
    """(the counter with this attempt counted, 0) when it may go ahead; else (unchanged, seconds to wait)."""
    wait = counter.locked_for(now)
    if wait > 0:
        return counter, wait
    if now - counter.window_start >= limit.window_s or counter.locked_until is not None:
        counter = Counter(0, now)  # a new window; an ended lock starts it afresh
    if counter.failures >= limit.max_failures:
        # Earlier attempts of this window still being checked fill it: refuse rather than guess.
        return counter, limit.lock_s
    return replace(counter, failures=counter.failures + 1), 0.0


def settle_failure(counter: Counter, now: float, limit: Limit) -> tuple[Counter, bool]:
    """After a wrong password (already counted by `admit`): (counter, True when this failure locks)."""
    if counter.locked_for(now) > 0 or counter.failures < limit.max_failures:
        return counter, False
    return Counter(0, now, now + limit.lock_s), True


@dataclass(frozen=True, slots=True)
class Failure:
    newly_locked: bool
    retry_after_s: float  # 0 unless this failure locked the account or the source


def account_key(username: str) -> str:
    """What the brake keeps of a typed username: a hash (it may be a password typed in the wrong box)."""
    return hashlib.sha256(username.strip().casefold().encode()).hexdigest()


def source_key(address: str | None) -> str:
    """IPv4 addresses as they are, IPv6 by their /64 (one household or host has a whole /64)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


_UPSERT = (
    "INSERT INTO login_brakes AS b (scope, key, failures, window_start) VALUES"
    " ('account', %s, 0, now()), ('source', %s, 0, now())"
    # A no-op update, so existing rows are returned too, and locked until the transaction ends.
    " ON CONFLICT (scope, key) DO UPDATE SET failures = b.failures"
    " RETURNING scope, key, failures, extract(epoch FROM window_start)::float8,"
    " extract(epoch FROM locked_until)::float8, extract(epoch FROM now())::float8"
)
_WRITE = (
    "UPDATE login_brakes SET failures = %s, window_start = to_timestamp(%s::float8),"
    " locked_until = to_timestamp(%s::float8)"
    " WHERE scope = %s AND key = %s"
)


class LoginBrake:
    def __init__(self, account: Limit, source: Limit) -> None:
        self.limits: dict[Scope, Limit] = {"account": account, "source": source}

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginBrake:
        window = settings.login_window_s
        return cls(
            Limit(settings.login_account_max_failures, window, settings.login_account_lock_s),
            Limit(settings.login_source_max_failures, window, settings.login_source_lock_s),
        )

    async def admit(self, conn: psycopg.AsyncConnection, username: str, source: str | None) -> float:
        """0 when this login attempt may check a password (and it is counted until settled), else seconds."""
        async with conn.transaction():
            rows, now = await self._lock_rows(conn, username, source)
            waits = {scope: admit(counter, now, self.limits[scope]) for scope, counter in rows.items()}
            wait = max(w for _, w in waits.values())
            if wait == 0:
                await self._write(conn, username, source, {s: c for s, (c, _) in waits.items()})
        return wait

    async def failed(self, conn: psycopg.AsyncConnection, username: str, source: str | None) -> Failure:
        """A wrong password after `admit`: lock what reached its limit, and forget expired rows."""
        async with conn.transaction():
            rows, now = await self._lock_rows(conn, username, source)
            settled = {scope: settle_failure(c, now, self.limits[scope]) for scope, c in rows.items()}
            await self._write(conn, username, source, {s: c for s, (c, _) in settled.items()})
            await conn.execute(
                "DELETE FROM login_brakes WHERE window_start < now() - make_interval(secs => %s)"
                " AND (locked_until IS NULL OR locked_until <= now())",
                (max(limit.window_s for limit in self.limits.values()),),
            )
        locked = [scope for scope, (_, newly) in settled.items() if newly]
        for scope in locked:
            # The address helps an operator tell an attack from a proxy that hides its clients.
            what = f"source {source_key(source)}" if scope == "source" else "an account"
            log.warning("login brake: %s locked for %.0f s", what, self.limits[scope].lock_s)
        wait = max((settled[scope][0].locked_for(now) for scope in locked), default=0.0)
        return Failure(bool(locked), wait)

    async def succeeded(self, conn: psycopg.AsyncConnection, username: str, source: str | None) -> None:
        """A right password: the account's failures are forgotten, the source's count takes this one back."""
        async with conn.transaction():
            await conn.execute(
                "DELETE FROM login_brakes WHERE scope = 'account' AND key = %s"
                " AND (locked_until IS NULL OR locked_until <= now())",
                (account_key(username),),
            )
            await conn.execute(
                "UPDATE login_brakes SET failures = greatest(failures - 1, 0)"
                " WHERE scope = 'source' AND key = %s",
                (source_key(source),),
            )

    async def _lock_rows(
        self, conn: psycopg.AsyncConnection, username: str, source: str | None
    ) -> tuple[dict[Scope, Counter], float]:
        cur = await conn.execute(_UPSERT, (account_key(username), source_key(source)))
        rows = await cur.fetchall()
        counters: dict[Scope, Counter] = {row[0]: Counter(row[2], row[3], row[4]) for row in rows}
        return counters, float(rows[0][5])

    async def _write(
        self, conn: psycopg.AsyncConnection, username: str, source: str | None, counters: dict[Scope, Counter]
    ) -> None:
        keys: dict[Scope, str] = {"account": account_key(username), "source": source_key(source)}
        for scope, c in counters.items():
            await conn.execute(_WRITE, (c.failures, c.window_start, c.locked_until, scope, keys[scope]))
