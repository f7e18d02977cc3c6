"""Staff accounts and where staff are paged: create, change the password, disable, contact details.

Administration (`hemma staff ...`; the dashboard's own password page for a member of staff's own
password). The password policy is care.passwords'; a password is stored as an Argon2 hash only, and
neither it nor its hash ever reaches a message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from care.acting import ActingStaff, Origin, acting_admin, admin_audited, execute
from care.passwords import check_password, hash_password
from care.permissions import AdminAction, Role
from care.refusals import RefusalCode, Refused
from storage.steps import Sql, SqlMany, Steps

USERNAME = re.compile(r"[a-z0-9._-]{2,64}")  # the staff_users CHECK
MAX_DISPLAY_NAME = 100
MANAGE = AdminAction.MANAGE_STAFF


def check_username(username: str) -> None:
    # The table's own CHECK, said first: a refused row would carry the new hash in its error text.
    if not USERNAME.fullmatch(username):
        raise Refused(RefusalCode.USERNAME_FORM)


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise Refused(RefusalCode.STAFF_ROLE_CHOICE, known=tuple(Role)) from None


def check_display_name(name: str) -> str:
    """The name as staff read it: one line, single spaces, no control characters."""
    from care.messages import clean_text

    text = clean_text(" ".join(name.split()), maximum=MAX_DISPLAY_NAME, empty=RefusalCode.STAFF_NAME_EMPTY,
                      too_long=RefusalCode.STAFF_NAME_EMPTY)  # fmt: skip
    assert text is not None  # `empty` refuses
    return text


def check_wards(ward_ids: Sequence[str]) -> Steps[None]:
    """Every ward named exists (else the FOREIGN KEY would refuse the row, unexplained)."""
    rows = yield Sql("SELECT id FROM wards WHERE id = ANY(%s)", (list(ward_ids),), fetch="all")
    missing = sorted(set(ward_ids) - {r[0] for r in rows})
    if missing:
        raise Refused(RefusalCode.NO_WARD, ward_id=missing[0][:64])


# Roles that see no ward (care.permissions.may_see_ward): giving them one would only mislead the admin.
WARDLESS_ROLES = frozenset({Role.PARTNER, Role.LOG_REVIEWER})
TITLE_LENGTH = (2, 100)


def check_no_wards(role: Role, ward_ids: Sequence[str]) -> None:
    if role in WARDLESS_ROLES and ward_ids:
        raise Refused(RefusalCode.ROLE_WITHOUT_WARDS, role=role.value)


def check_title(title: str | None) -> str | None:
    """The title partners and patients read ("Distriktssköterska, kommunen"); None for none."""
    if title is None or not title.strip():
        return None
    text = " ".join(title.split())
    low, high = TITLE_LENGTH
    if not low <= len(text) <= high or not text.isprintable():
        raise Refused(RefusalCode.STAFF_TITLE, minimum=low, maximum=high)
    return text


def check_organisation(care_unit_id: str | None, hsa_id: str | None, username: str) -> Steps[str | None]:
    """The unit exists and the HSA-id has its form and is no one else's; returns the HSA-id as stored."""
    from care.organisations import check_hsa_id, unit_exists

    hsa = check_hsa_id(hsa_id)
    if care_unit_id is not None:
        yield from unit_exists(care_unit_id)
    if hsa is not None:
        taken = yield Sql(
            "SELECT 1 FROM staff_users WHERE hsa_id = %(h)s AND username <> %(u)s UNION ALL"
            " SELECT 1 FROM care_providers WHERE hsa_id = %(h)s UNION ALL SELECT 1 FROM care_units"
            " WHERE hsa_id = %(h)s LIMIT 1",
            {"h": hsa, "u": username},
            fetch="one",
        )
        if taken is not None:
            raise Refused(RefusalCode.HSA_ID_TAKEN, hsa_id=hsa)
    return hsa


def _not_own(staff: ActingStaff | None, username: str) -> None:
    """An admin does not shut themself out: the last admin disabling or demoting their own account
    would leave nobody to undo it on the dashboard."""
    if staff is not None and staff.username == username:
        raise Refused(RefusalCode.STAFF_OWN_ACCOUNT, username=username)


def save_staff_user(
    *, username: str, display_name: str, role: str, password: str, ward_ids: Sequence[str],
    by: str | None = None, origin: Origin | None = None, replace: bool = True,
    care_unit_id: str | None = None, hsa_id: str | None = None, title: str | None = None,
) -> Steps[int]:  # fmt: skip
    """Create or update a staff account (re-enabled, with this password and these wards added).

    `care_unit_id`, `hsa_id` and `title` None keep what an updated account has (a new one belongs to
    the region's own unit, migration 0018). Partners and log reviewers are given no wards.

    `by` an admin (AdminAction.MANAGE_STAFF) or None, the CLI's operator. `replace` False refuses a
    username that exists (the dashboard's "Nytt konto" never overwrites a colleague's account).
    Updating an account sets a new password, so its dashboard sessions end (migration 0006's trigger).
    """
    staff = yield from acting_admin(by, MANAGE)  # first: who may not learn nothing from the checks
    check_username(username)
    chosen = check_role(role)
    name = check_display_name(display_name)
    check_password(password, username=username, display_name=name)
    check_no_wards(chosen, ward_ids)
    titled = check_title(title)
    yield from check_wards(ward_ids)
    hsa = yield from check_organisation(care_unit_id, hsa_id, username)
    if not replace:
        found = yield Sql("SELECT 1 FROM staff_users WHERE username = %s", (username,), fetch="one")
        if found is not None:
            raise Refused(RefusalCode.STAFF_EXISTS, username=username)
    hashed = hash_password(password)
    row = yield Sql(
        "INSERT INTO staff_users (username, display_name, role, password_hash, care_unit_id, hsa_id, title)"
        " VALUES (%(u)s, %(n)s, %(r)s, %(h)s, coalesce(%(unit)s, 'region-hemma'), %(hsa)s, %(t)s)"
        " ON CONFLICT (username) DO UPDATE SET display_name = EXCLUDED.display_name,"
        " role = EXCLUDED.role, password_hash = EXCLUDED.password_hash, disabled = false,"
        " care_unit_id = coalesce(%(unit)s, staff_users.care_unit_id),"
        " hsa_id = coalesce(%(hsa)s, staff_users.hsa_id), title = coalesce(%(t)s, staff_users.title)"
        " RETURNING id",
        {
            "u": username,
            "n": name,
            "r": chosen.value,
            "h": hashed,
            "unit": care_unit_id,
            "hsa": hsa,
            "t": titled,
        },
        fetch="one",
    )
    staff_id = int(row[0])
    yield SqlMany(
        "INSERT INTO staff_ward_access (staff_user_id, ward_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        [(staff_id, ward_id) for ward_id in ward_ids],
    )
    yield from admin_audited(origin, staff=staff, action=MANAGE,
                             context=f"staff:{username} save role:{chosen.value}")  # fmt: skip
    return staff_id


def change_access(
    *, username: str, role: str, ward_ids: Sequence[str], by: str | None, origin: Origin | None
) -> Steps[None]:
    """Set an account's role and exactly these wards. Takes effect on the account's next request:
    a session reads its role and wards anew every time (dashboard.sessions)."""
    staff = yield from acting_admin(by, MANAGE)
    chosen = check_role(role)
    if chosen is not Role.ADMIN:
        _not_own(staff, username)
    check_no_wards(chosen, ward_ids)
    yield from check_wards(ward_ids)
    row = yield Sql("SELECT id FROM staff_users WHERE username = %s FOR UPDATE", (username,), fetch="one")
    if row is None:
        raise Refused(RefusalCode.NO_STAFF_ACCOUNT, username=username)
    yield Sql("UPDATE staff_users SET role = %s WHERE id = %s", (chosen.value, row[0]))
    yield Sql(
        "DELETE FROM staff_ward_access WHERE staff_user_id = %s AND NOT ward_id = ANY(%s)",
        (row[0], list(ward_ids)),
    )
    yield SqlMany(
        "INSERT INTO staff_ward_access (staff_user_id, ward_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        [(row[0], ward_id) for ward_id in ward_ids],
    )
    wards = ",".join(sorted(ward_ids)) or "-"
    context = f"staff:{username} access role:{chosen.value} wards:{wards}"
    yield from admin_audited(origin, staff=staff, action=MANAGE, context=context)


def change_organisation(
    *, username: str, care_unit_id: str, hsa_id: str | None, title: str | None, by: str | None,
    origin: Origin | None,
) -> Steps[None]:  # fmt: skip
    """Set an account's care unit, HSA-id and title (None or blank: none). The access log names the
    unit and provider an account has at the moment of each read (migration 0018's trigger)."""
    staff = yield from acting_admin(by, MANAGE)
    titled = check_title(title)
    hsa = yield from check_organisation(care_unit_id, hsa_id, username)
    row = yield Sql(
        "UPDATE staff_users SET care_unit_id = %s, hsa_id = %s, title = %s WHERE username = %s RETURNING id",
        (care_unit_id, hsa, titled, username),
        fetch="one",
    )
    if row is None:
        raise Refused(RefusalCode.NO_STAFF_ACCOUNT, username=username)
    context = f"staff:{username} organisation unit:{care_unit_id} hsa:{'set' if hsa else '-'}"
    yield from admin_audited(origin, staff=staff, action=MANAGE, context=context)


def change_password(
    *, username: str, password: str, current: str | None = None, by: str | None = None,
    origin: Origin | None = None,
) -> Steps[None]:  # fmt: skip
    """A new password under the policy (`current` is the one it replaces, when the member of staff
    changes their own; `by` an admin setting a temporary one); every dashboard session of the
    account ends."""
    staff = yield from acting_admin(by, MANAGE)
    row = yield Sql("SELECT display_name FROM staff_users WHERE username = %s", (username,), fetch="one")
    if row is None:
        raise Refused(RefusalCode.NO_STAFF_ACCOUNT, username=username)
    check_password(password, username=username, display_name=row[0], current=current)
    yield Sql(
        "UPDATE staff_users SET password_hash = %s WHERE username = %s", (hash_password(password), username)
    )
    yield from admin_audited(origin, staff=staff, action=MANAGE, context=f"staff:{username} password")


def disable(
    *, username: str, disabled: bool, by: str | None = None, origin: Origin | None = None
) -> Steps[None]:
    """Disable an account (its dashboard sessions end at once) or enable it again (they stay ended)."""
    staff = yield from acting_admin(by, MANAGE)
    if disabled:
        _not_own(staff, username)
    row = yield Sql(
        "UPDATE staff_users SET disabled = %s WHERE username = %s RETURNING id",
        (disabled, username),
        fetch="one",
    )
    if row is None:
        raise Refused(RefusalCode.NO_STAFF_ACCOUNT, username=username)
    what = "disable" if disabled else "enable"
    yield from admin_audited(origin, staff=staff, action=MANAGE, context=f"staff:{username} {what}")


def save_contact(
    *, username: str, email: str | None = None, ntfy_topic: str | None = None, webhook_url: str | None = None,
    by: str | None = None, origin: Origin | None = None,
) -> Steps[None]:  # fmt: skip
    """Where a member of staff is paged. Addresses given replace the stored ones; others are kept."""
    staff = yield from acting_admin(by, MANAGE)
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
    yield from admin_audited(origin, staff=staff, action=MANAGE, context=f"staff:{username} contact")


@dataclass(frozen=True, slots=True)
class StaffAccount:
    """An account as the admin's page lists it: never its password or hash."""

    username: str
    display_name: str
    role: Role
    ward_ids: tuple[str, ...]
    disabled: bool
    email: str | None
    ntfy_topic: str | None
    webhook_url: str | None
    care_unit_id: str = "region-hemma"
    hsa_id: str | None = None
    title: str | None = None


def staff_accounts(by: str) -> Steps[list[StaffAccount]]:
    """Every account, by name; for an admin (MANAGE_STAFF) only."""
    yield from acting_admin(by, MANAGE)
    rows = yield Sql(
        "SELECT u.username, u.display_name, u.role,"
        " coalesce(array_agg(a.ward_id ORDER BY a.ward_id) FILTER (WHERE a.ward_id IS NOT NULL), '{}'),"
        " u.disabled, c.email, c.ntfy_topic, c.webhook_url, u.care_unit_id, u.hsa_id, u.title"
        " FROM staff_users u"
        " LEFT JOIN staff_ward_access a ON a.staff_user_id = u.id"
        " LEFT JOIN staff_contacts c ON c.staff_user_id = u.id"
        " GROUP BY u.id, c.staff_user_id ORDER BY u.disabled, lower(u.display_name), u.username",
        (),
        fetch="all",
    )
    return [
        StaffAccount(r[0], r[1], Role(r[2]), tuple(r[3]), bool(r[4]), r[5], r[6], r[7], r[8], r[9], r[10])
        for r in rows
    ]


# --- on a synchronous connection (CLI, `hemma demo`, the dashboard's password page, tests) ---------------
# `origin` names the CLI's operator in the log; None is a program seeding a database.


def create_staff_user(
    conn: psycopg.Connection[Any], *, username: str, display_name: str, role: str, password: str,
    ward_ids: Sequence[str], origin: Origin | None = None, care_unit_id: str | None = None,
    hsa_id: str | None = None, title: str | None = None,
) -> int:  # fmt: skip
    return execute(conn, save_staff_user(username=username, display_name=display_name, role=role,
                                         password=password, ward_ids=ward_ids, origin=origin,
                                         care_unit_id=care_unit_id, hsa_id=hsa_id, title=title))  # fmt: skip


def set_staff_password(
    conn: psycopg.Connection[Any], *, username: str, password: str, current: str | None = None,
    origin: Origin | None = None,
) -> None:  # fmt: skip
    execute(conn, change_password(username=username, password=password, current=current, origin=origin))


def set_staff_disabled(
    conn: psycopg.Connection[Any], *, username: str, disabled: bool, origin: Origin | None = None
) -> None:
    execute(conn, disable(username=username, disabled=disabled, origin=origin))


def set_staff_contact(
    conn: psycopg.Connection[Any],
    *,
    username: str,
    email: str | None = None,
    ntfy_topic: str | None = None,
    webhook_url: str | None = None,
    origin: Origin | None = None,
) -> None:
    execute(conn, save_contact(username=username, email=email, ntfy_topic=ntfy_topic,
                               webhook_url=webhook_url, origin=origin))  # fmt: skip
