"""Staff accounts and where staff are paged: create, change the password, disable, contact details.

Administration (`hemma staff ...`; the dashboard's own password page for a member of staff's own
password). The password policy is care.passwords'; a password is stored as an Argon2 hash only, and
neither it nor its hash ever reaches a message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import psycopg

from care.acting import execute
from care.passwords import check_password, hash_password
from care.refusals import RefusalCode, Refused
from storage.steps import Sql, SqlMany, Steps

USERNAME = re.compile(r"[a-z0-9._-]{2,64}")  # the staff_users CHECK


def check_username(username: str) -> None:
    # The table's own CHECK, said first: a refused row would carry the new hash in its error text.
    if not USERNAME.fullmatch(username):
        raise Refused(RefusalCode.USERNAME_FORM)


def save_staff_user(
    *, username: str, display_name: str, role: str, password: str, ward_ids: Sequence[str]
) -> Steps[int]:
    """Create or update a staff account (re-enabled, with this password and these wards added).

    Updating an account sets a new password, so its dashboard sessions end (migration 0006's trigger).
    """
    check_username(username)
    check_password(password, username=username, display_name=display_name)
    hashed = hash_password(password)
    row = yield Sql(
        "INSERT INTO staff_users (username, display_name, role, password_hash) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (username) DO UPDATE SET display_name = EXCLUDED.display_name,"
        " role = EXCLUDED.role, password_hash = EXCLUDED.password_hash, disabled = false RETURNING id",
        (username, display_name, role, hashed),
        fetch="one",
    )
    staff_id = int(row[0])
    yield SqlMany(
        "INSERT INTO staff_ward_access (staff_user_id, ward_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        [(staff_id, ward_id) for ward_id in ward_ids],
    )
    return staff_id


def change_password(*, username: str, password: str, current: str | None = None) -> Steps[None]:
    """A new password under the policy (`current` is the one it replaces, when the member of staff
    changes their own); every dashboard session of the account ends."""
    row = yield Sql("SELECT display_name FROM staff_users WHERE username = %s", (username,), fetch="one")
    if row is None:
        raise Refused(RefusalCode.NO_STAFF_ACCOUNT, username=username)
    check_password(password, username=username, display_name=row[0], current=current)
    yield Sql(
        "UPDATE staff_users SET password_hash = %s WHERE username = %s", (hash_password(password), username)
    )


def disable(*, username: str, disabled: bool) -> Steps[None]:
    """Disable an account (its dashboard sessions end at once) or enable it again (they stay ended)."""
    row = yield Sql(
        "UPDATE staff_users SET disabled = %s WHERE username = %s RETURNING id",
        (disabled, username),
        fetch="one",
    )
    if row is None:
        raise Refused(RefusalCode.NO_STAFF_ACCOUNT, username=username)


def save_contact(
    *, username: str, email: str | None = None, ntfy_topic: str | None = None, webhook_url: str | None = None
) -> Steps[None]:
    """Where a member of staff is paged. Addresses given replace the stored ones; others are kept."""
    if email is None and ntfy_topic is None and webhook_url is None:
        raise Refused(RefusalCode.CONTACT_EMPTY)
    row = yield Sql("SELECT id FROM staff_users WHERE username = %s", (username,), fetch="one")
    if row is None:
        raise Refused(RefusalCode.NO_STAFF_ACCOUNT, username=username)
    try:
        yield Sql(
            "INSERT INTO staff_contacts (staff_user_id, email, ntfy_topic, webhook_url)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (staff_user_id) DO UPDATE SET"
            " email = coalesce(EXCLUDED.email, staff_contacts.email),"
            " ntfy_topic = coalesce(EXCLUDED.ntfy_topic, staff_contacts.ntfy_topic),"
            " webhook_url = coalesce(EXCLUDED.webhook_url, staff_contacts.webhook_url),"
            " updated_at = now()",
            (row[0], email, ntfy_topic, webhook_url),
        )
    except psycopg.errors.CheckViolation as exc:
        raise Refused(RefusalCode.CONTACT_FORM, username=username) from exc


# --- on a synchronous connection (CLI, `hemma demo`, the dashboard's password page, tests) ---------------


def create_staff_user(
    conn: psycopg.Connection[Any], *, username: str, display_name: str, role: str, password: str,
    ward_ids: Sequence[str],
) -> int:  # fmt: skip
    return execute(conn, save_staff_user(username=username, display_name=display_name, role=role,
                                         password=password, ward_ids=ward_ids))  # fmt: skip


def set_staff_password(
    conn: psycopg.Connection[Any], *, username: str, password: str, current: str | None = None
) -> None:
    execute(conn, change_password(username=username, password=password, current=current))


def set_staff_disabled(conn: psycopg.Connection[Any], *, username: str, disabled: bool) -> None:
    execute(conn, disable(username=username, disabled=disabled))


def set_staff_contact(
    conn: psycopg.Connection[Any],
    *,
    username: str,
    email: str | None = None,
    ntfy_topic: str | None = None,
    webhook_url: str | None = None,
) -> None:
    execute(
        conn, save_contact(username=username, email=email, ntfy_topic=ntfy_topic, webhook_url=webhook_url)
    )
