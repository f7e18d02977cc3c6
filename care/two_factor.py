"""TOTP two-factor for local staff accounts (issue 12; RFC 6238 via pyotp): enrol, check, reset.

A member of staff turns it on from /account: Hemma makes a secret (`begin_enrolment`, stored
unconfirmed), shows it as a QR code and text, and keeps it only when a code from it comes back
(`confirm_enrolment`). From then on a password login asks for a code before any session exists
(dashboard.two_factor_login). An admin resets it (`reset_two_factor`, `hemma staff totp-reset`):
the account's sessions end and the next login goes without a code, or enrols again when
HEMMA_TOTP_REQUIRED is set.

The decision whether a code is right is `matching_step`, pure: RFC 6238 §5.2's window of one time
step either side of now (a phone's clock off by up to 30 s), and never a step at or before the last
one accepted (§5.2: "the verifier MUST NOT accept the second attempt of the same OTP"), so a code
seen over a shoulder or replayed from a proxy log is dead once used. `accept_code` records the step
with a compare-and-set, so two parallel posts of one code cannot both win.

Why the secret is stored as it is, not encrypted: the database that holds it already holds the
patient data, the staff accounts and the sessions; whoever reads it has what the second factor
protects already, and whoever can write it can make any account they like. The second factor is
against a guessed, phished or reused password, which it defeats whatever the storage. An
encryption key from the settings would add a way to lock every enrolled account out (a lost or
rotated key) for no gain against that threat; backups are to be protected as patient data anyway.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

import pyotp

from care.acting import Origin, acting_admin, admin_audited
from care.permissions import AdminAction
from care.refusals import RefusalCode, Refused
from storage.steps import Sql, Steps

DIGITS = 6
INTERVAL_S = 30
WINDOW_STEPS = 1  # RFC 6238 §5.2: at most one step of clock drift either way
ISSUER = "Hemma"
# A code is exactly six ASCII digits (a space in the middle is allowed: apps show "123 456").
CODE_LENGTH = DIGITS


def new_secret() -> str:
    """160 random bits in base32 (32 characters), RFC 4226 §4's recommended length."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, username: str) -> str:
    """The otpauth:// URI the QR code carries (issuer "Hemma", the username as the account name)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL_S).provisioning_uri(
        name=username, issuer_name=ISSUER
    )


def normalise_code(typed: str) -> str | None:
    """The six digits typed, without spaces; None for anything else."""
    code = "".join(typed.split())
    return code if len(code) == CODE_LENGTH and code.isascii() and code.isdigit() else None


def time_step(at: datetime) -> int:
    return int(at.timestamp()) // INTERVAL_S


def matching_step(secret: str, typed: str, at: datetime, last_step: int | None) -> int | None:
    """The time step whose code `typed` is, within ±WINDOW_STEPS of `at` and after `last_step`; None
    when it is no such code. Every candidate is compared, in constant time, whatever matches."""
    code = normalise_code(typed)
    if code is None:
        return None
    hotp = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL_S)
    now_step = time_step(at)
    found = None
    for step in range(now_step - WINDOW_STEPS, now_step + WINDOW_STEPS + 1):
        right = hmac.compare_digest(hotp.generate_otp(step), code)
        if right and (last_step is None or step > last_step) and found is None:
            found = step
    return found


# --- the table ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TwoFactorState:
    enrolled: bool  # a confirmed secret: password logins ask for a code
    pending_secret: str | None  # shown but not yet confirmed (None once confirmed)


def two_factor_state(staff_id: int) -> Steps[TwoFactorState]:
    row = yield Sql(
        "SELECT secret, confirmed_at IS NOT NULL FROM staff_totp WHERE staff_user_id = %s",
        (staff_id,),
        fetch="one",
    )
    if row is None:
        return TwoFactorState(False, None)
    return TwoFactorState(bool(row[1]), None if row[1] else str(row[0]))


def begin_enrolment(staff_id: int) -> Steps[str | None]:
    """A new unconfirmed secret for the account (replacing an earlier unconfirmed one); None when
    the account has a confirmed one, which is never replaced here (that takes an admin's reset)."""
    secret = new_secret()
    row = yield Sql(
        "INSERT INTO staff_totp (staff_user_id, secret) VALUES (%s, %s) ON CONFLICT (staff_user_id)"
        " DO UPDATE SET secret = EXCLUDED.secret, created_at = now(), last_step = NULL"
        " WHERE staff_totp.confirmed_at IS NULL RETURNING secret",
        (staff_id, secret),
        fetch="one",
    )
    return None if row is None else str(row[0])


def confirm_enrolment(staff_id: int, typed: str, at: datetime) -> Steps[bool]:
    """Keep the unconfirmed secret if `typed` is its code now; False (nothing changes) if not."""
    row = yield Sql(
        "SELECT secret FROM staff_totp WHERE staff_user_id = %s AND confirmed_at IS NULL FOR UPDATE",
        (staff_id,),
        fetch="one",
    )
    if row is None:
        return False
    step = matching_step(str(row[0]), typed, at, None)
    if step is None:
        return False
    yield Sql(
        "UPDATE staff_totp SET confirmed_at = now(), last_step = %s WHERE staff_user_id = %s",
        (step, staff_id),
    )
    return True


def accept_code(staff_id: int, typed: str, at: datetime) -> Steps[bool]:
    """The login's second step: True when `typed` is a fresh code of the account's confirmed secret,
    and its step is recorded (compare-and-set: a code used once, or by a parallel request, is refused)."""
    row = yield Sql(
        "SELECT secret, last_step FROM staff_totp WHERE staff_user_id = %s AND confirmed_at IS NOT NULL",
        (staff_id,),
        fetch="one",
    )
    if row is None:
        return False
    step = matching_step(str(row[0]), typed, at, None if row[1] is None else int(row[1]))
    if step is None:
        return False
    won = yield Sql(
        "UPDATE staff_totp SET last_step = %s WHERE staff_user_id = %s"
        " AND (last_step IS NULL OR last_step < %s) RETURNING 1",
        (step, staff_id, step),
        fetch="one",
    )
    return won is not None


def reset_two_factor(*, username: str, by: str | None, origin: Origin | None) -> Steps[bool]:
    """An admin (AdminAction.MANAGE_STAFF) or the CLI's operator removes an account's TOTP secret,
    for a lost phone: the account's sessions end (reason 'two_factor_reset'). True when there was one."""
    staff = yield from acting_admin(by, AdminAction.MANAGE_STAFF)
    account = yield Sql("SELECT id FROM staff_users WHERE username = %s", (username,), fetch="one")
    if account is None:
        raise Refused(RefusalCode.NO_STAFF_ACCOUNT, username=username)
    removed = yield Sql(
        "DELETE FROM staff_totp WHERE staff_user_id = %s RETURNING 1", (account[0],), fetch="one"
    )
    yield Sql(
        "UPDATE staff_sessions SET revoked_at = now(), revoked_reason = 'two_factor_reset'"
        " WHERE staff_user_id = %s AND revoked_at IS NULL",
        (account[0],),
    )
    yield from admin_audited(origin, staff=staff, action=AdminAction.MANAGE_STAFF,
                             context=f"staff:{username} totp_reset")  # fmt: skip
    return removed is not None


def enrolled_usernames(*, by: str) -> Steps[frozenset[str]]:
    """The accounts with confirmed two-factor (the admin's staff page)."""
    yield from acting_admin(by, AdminAction.MANAGE_STAFF)
    rows = yield Sql(
        "SELECT u.username FROM staff_totp t JOIN staff_users u ON u.id = t.staff_user_id"
        " WHERE t.confirmed_at IS NOT NULL",
        (),
        fetch="all",
    )
    return frozenset(str(r[0]) for r in rows)
