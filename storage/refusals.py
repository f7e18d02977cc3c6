"""What to tell an operator when PostgreSQL refuses a statement, without repeating what it said.

A psycopg error's message and DETAIL quote the values involved ("Failing row contains (…, Tolvan
Tolvansson, 19121212-1212, …)", "Key (personal_number)=(…) already exists"): patient data, or a
password hash. So the text shown, and anything logged, is built from the SQLSTATE and the
constraint's name only, with a sentence saying what to do. The commands check their input before
the database sees it; this is the last line when one slips through.
"""

from __future__ import annotations

# What each constraint a command can run into asks for (names as PostgreSQL gives them, migration 0001).
_CONSTRAINTS = {
    "wards_id_check": "a ward id is 2 to 63 characters of a-z, 0-9 and -, starting with a letter or digit",
    "gateways_id_check": "a kit id is 3 to 63 characters of a-z, 0-9 and -, starting with a letter or digit",
    "patients_birth_year_check": "the birth year is outside the years the database accepts",
    "patients_personal_number_key": "a patient with this personal number is already registered",
    "patients_ward_id_fkey": "the ward does not exist: create it first with `hemma ward add`",
    "staff_users_username_check": "a username is 2 to 64 characters of a-z, 0-9, '.', '_' and '-'",
    "staff_users_role_check": "the role must be nurse, physician or admin",
    "staff_ward_access_ward_id_fkey": "a ward given with --ward does not exist (`hemma ward add`)",
}
# By SQLSTATE class (the first two characters), when the constraint says nothing more.
_CLASSES = {
    "08": "the connection to the database failed; check HEMMA_DATABASE_URL and that the server runs",
    "28": "the database refused the login; check the user and password in HEMMA_DATABASE_URL",
    "23": "a value was refused by the database's rules; check the command's arguments (--help)",
    "22": "a value has the wrong form or is out of range; check the command's arguments (--help)",
    "42": "this database role may not do this; schema changes and purges are for the database owner",
    "40": "the database broke off the transaction (conflict or deadlock); run the command again",
    "53": "the database is short of resources (disk, memory or connections); tell its administrator",
    "57": "the database is shutting down or cancelled the statement; run the command again later",
}


def describe(exc: BaseException) -> str:
    """One line for a database error: SQLSTATE, constraint name and what to do; never the message."""
    diag = getattr(exc, "diag", None)
    sqlstate = getattr(exc, "sqlstate", None) or "unknown"
    constraint = getattr(diag, "constraint_name", None)
    where = f"SQLSTATE {sqlstate}" + (f", constraint {constraint}" if constraint else "")
    advice = _CONSTRAINTS.get(constraint or "") or _CLASSES.get(sqlstate[:2], "the statement failed")
    return f"the database refused this ({where}): {advice}"
