"""Staff sessions held on the server (table `staff_sessions`, migration 0006).

The signed cookie carries one thing after login: a random 256-bit session id. The database keeps
only its SHA-256, with the staff member, the times and whether and why it was revoked; so a
session ends for every dashboard process at once when staff log out, when the account is disabled
or its password changes (a trigger, see the migration), and a cookie replayed afterwards finds
nothing. The CSRF token of a session is derived from the id (HMAC), so it needs no storage and
changes with every login.

Every request reads its session and the account behind it in one statement, which also refreshes
`last_seen_at` when it is more than a minute old (so a busy page does not write on every request).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from psycopg.rows import dict_row

from care.staff_sessions import LoginMethod
from dashboard.model import StaffUser
from dashboard.queries import staff_from_row

if TYPE_CHECKING:
    import psycopg

RevokeReason = Literal["logout", "operator"]
# Rows of sessions that ended more than this long ago are deleted at the next login.
KEEP_ENDED_DAYS = 30
_LAST_SEEN_STEP = "1 minute"

_SESSION_STAFF = (
    "SELECT ss.id AS session_id, extract(epoch FROM ss.expires_at)::float8 AS expires_at, ss.method,"
    " s.id, s.username, s.display_name, s.role, s.care_unit_id, s.hsa_id,"
    " (SELECT u.provider_id FROM care_units u WHERE u.id = s.care_unit_id) AS care_provider_id,"
    " coalesce(array_agg(a.ward_id) FILTER (WHERE a.ward_id IS NOT NULL), '{{}}') AS ward_ids"
    " FROM {sessions} ss JOIN staff_users s ON s.id = ss.staff_user_id"
    " LEFT JOIN staff_ward_access a ON a.staff_user_id = s.id"
    " WHERE {where} AND ss.revoked_at IS NULL AND ss.expires_at > now() AND NOT s.disabled"
    " GROUP BY ss.id, ss.expires_at, ss.method, s.id"
)


@dataclass(frozen=True, slots=True)
class ActiveSession:
    """A live session. `id` is the row id: safe to log and to hand around, unlike the cookie's secret."""

    id: int
    staff: StaffUser
    expires_at: float  # epoch seconds
    method: LoginMethod = "password"  # how it was started (migration 0023)


def new_session_secret() -> str:
    return secrets.token_urlsafe(32)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def csrf_for(secret: str) -> str:
    """The session's CSRF token: an HMAC of the session id, so the page's token never reveals the id."""
    mac = hmac.new(secret.encode(), b"hemma dashboard csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


async def create_session(
    conn: psycopg.AsyncConnection, staff_id: int, max_age_s: int, client_address: str | None,
    method: LoginMethod = "password",
) -> str:  # fmt: skip
    """Store a new session for `staff_id`, started by `method` (migration 0023); returns the secret id
    for the cookie."""
    secret = new_session_secret()
    async with conn.transaction():
        await conn.execute(
            "DELETE FROM staff_sessions WHERE expires_at < now() - make_interval(days => %s)",
            (KEEP_ENDED_DAYS,),
        )
        await conn.execute(
            "INSERT INTO staff_sessions (token_sha256, staff_user_id, expires_at, client_address, method)"
            " VALUES (%s, %s, now() + make_interval(secs => %s), %s, %s)",
            (_digest(secret), staff_id, max_age_s, client_address, method),
        )
    return secret


async def find_session(conn: psycopg.AsyncConnection, secret: str) -> ActiveSession | None:
    """The live session with this secret and its enabled account, or None; one statement."""
    query = (
        "WITH live AS (SELECT id, staff_user_id, expires_at, revoked_at, last_seen_at, method"
        " FROM staff_sessions WHERE token_sha256 = %s),"
        " seen AS (UPDATE staff_sessions t SET last_seen_at = now() FROM live WHERE t.id = live.id"
        f" AND live.revoked_at IS NULL AND live.last_seen_at < now() - interval '{_LAST_SEEN_STEP}') "
        + _SESSION_STAFF.format(sessions="live", where="true")
    )
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, (_digest(secret),))  # built from constants
        row = await cur.fetchone()
    return None if row is None else _active(row)


async def live_sessions(conn: psycopg.AsyncConnection, session_ids: Collection[int]) -> dict[int, StaffUser]:
    """Of these session row ids, the live ones with their account as it is now (the live hub's check)."""
    query = _SESSION_STAFF.format(sessions="staff_sessions", where="ss.id = ANY(%s)")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, (list(session_ids),))  # built from constants
        return {row["session_id"]: staff_from_row(row) for row in await cur.fetchall()}


async def revoke_session(conn: psycopg.AsyncConnection, secret: str, reason: RevokeReason) -> None:
    await conn.execute(
        "UPDATE staff_sessions SET revoked_at = now(), revoked_reason = %s"
        " WHERE token_sha256 = %s AND revoked_at IS NULL",
        (reason, _digest(secret)),
    )


def _active(row: dict[str, Any]) -> ActiveSession:
    return ActiveSession(row["session_id"], staff_from_row(row), float(row["expires_at"]), row["method"])
