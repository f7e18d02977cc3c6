"""Staff sessions seen and ended from outside the browser that holds them (issue 12).

The admin's staff page, staff's own /account and `hemma staff sessions` / `logout` list an
account's live sessions (started, last seen, address, how it logged in) and end one or all of them.
Ending is an UPDATE of `staff_sessions.revoked_at`: every dashboard process finds no session for
the cookie on its next request, and migration 0006's trigger announces it on hemma_events, so the
live hub closes the session's websockets at once (dashboard.live).

Who may: the account's own holder (`by` == `username`), an admin (AdminAction.MANAGE_STAFF), or
the CLI's operator (`by` None). An admin's and the operator's actions are written to the access
log (care.acting.admin_audited); a member of staff ending their own sessions is not an act on
anyone's data and is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from care.acting import ActingStaff, Origin, acting_admin, admin_audited
from care.permissions import AdminAction
from care.refusals import RefusalCode, Refused
from storage.steps import Sql, Steps

LoginMethod = Literal["password", "password_totp", "oidc"]
METHOD_LABELS_SV: dict[str, str] = {
    "password": "Lösenord",
    "password_totp": "Lösenord och engångskod",
    "oidc": "SITHS-kort (OIDC)",
}


@dataclass(frozen=True, slots=True)
class LiveSession:
    """A live session as the lists show it: never its secret or hash."""

    id: int
    username: str
    started_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    client_address: str | None
    method: str

    @property
    def method_label(self) -> str:
        return METHOD_LABELS_SV.get(self.method, self.method)


_LIVE = (
    "SELECT ss.id, u.username, ss.created_at, ss.last_seen_at, ss.expires_at, ss.client_address, ss.method"
    " FROM staff_sessions ss JOIN staff_users u ON u.id = ss.staff_user_id"
    " WHERE ss.revoked_at IS NULL AND ss.expires_at > now() AND NOT u.disabled"
)


def _who(username: str, by: str | None) -> Steps[ActingStaff | None]:
    """None for the account's own holder or the CLI; the admin otherwise (refused for anyone else)."""
    if by is not None and by == username:
        return None
    return (yield from acting_admin(by, AdminAction.MANAGE_STAFF))


def live_sessions_of(username: str, *, by: str | None) -> Steps[list[LiveSession]]:
    """The account's live sessions, the most recently seen first."""
    yield from _who(username, by)
    found = yield Sql("SELECT 1 FROM staff_users WHERE username = %s", (username,), fetch="one")
    if found is None:
        raise Refused(RefusalCode.NO_STAFF_ACCOUNT, username=username)
    rows = yield Sql(_LIVE + " AND u.username = %s ORDER BY ss.last_seen_at DESC, ss.id DESC",
                     (username,), fetch="all")  # fmt: skip
    return [LiveSession(*row) for row in rows]


def live_sessions_by_account(*, by: str) -> Steps[dict[str, list[LiveSession]]]:
    """Every account's live sessions (the admin's staff page), by username."""
    yield from acting_admin(by, AdminAction.MANAGE_STAFF)
    rows = yield Sql(_LIVE + " ORDER BY ss.last_seen_at DESC, ss.id DESC", (), fetch="all")
    sessions: dict[str, list[LiveSession]] = {}
    for row in rows:
        session = LiveSession(*row)
        sessions.setdefault(session.username, []).append(session)
    return sessions


def end_sessions(
    *, username: str, by: str | None, origin: Origin | None, session_id: int | None = None,
    keep_session_id: int | None = None,
) -> Steps[int]:  # fmt: skip
    """End one live session of the account (`session_id`) or all of them (but `keep_session_id`,
    the page's own when staff end their other devices'); the number ended. A session id of another
    account ends nothing (0), as one that does not exist."""
    admin = yield from _who(username, by)
    account = yield Sql("SELECT id FROM staff_users WHERE username = %s", (username,), fetch="one")
    if account is None:
        raise Refused(RefusalCode.NO_STAFF_ACCOUNT, username=username)
    reason = "operator" if by is None else "own" if admin is None else "admin"
    rows = yield Sql(
        "UPDATE staff_sessions SET revoked_at = now(), revoked_reason = %s"
        " WHERE staff_user_id = %s AND revoked_at IS NULL AND (%s::bigint IS NULL OR id = %s)"
        " AND (%s::bigint IS NULL OR id <> %s) RETURNING id",
        (reason, account[0], session_id, session_id, keep_session_id, keep_session_id),
        fetch="all",
    )
    if admin is not None or by is None:
        what = f"session:{session_id}" if session_id is not None else "all"
        yield from admin_audited(origin, staff=admin, action=AdminAction.MANAGE_STAFF,
                                 context=f"staff:{username} logout {what} ended:{len(rows)}")  # fmt: skip
    return len(rows)
