"""The region's log review (issue 12; Patientdatalagen 4 kap. 3 §, HSLF-FS 2016:40 4 kap. 9 §): the
access log filtered by reader, patient, care unit, care provider, entry point, action and time, newest
first, each read flagged "Utan vårdrelation" when the reader had no care relationship with the patient
at that moment. The screen is dashboard.log_review; only Role.LOG_REVIEWER may
(AdminAction.REVIEW_ACCESS_LOG).

The flag, by who read:
* a partner: no grant in force at the read (care.sharing.GRANT_IN_FORCE_SQL, the one decision,
  evaluated at the row's time);
* other staff (nurse, physician, admin): the patient's ward is not among the account's wards
  (staff_ward_access). Hemma keeps no history of ward access, so this is today's wards, and the
  patient's ward today: the screen says so;
* a system client: the patient's ward is not among the client's wards (system_client_wards, today's).
  Partner grants name staff accounts, not system clients, so a client has no grant to be inside;
* the log reviewer's own review rows, the patient's own devices, operators at the command line and
  the escalation service are never flagged: their access is not a care relationship to begin with.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from care import access_log
from care.sharing import GRANT_IN_FORCE_SQL
from storage.steps import Sql, Steps

PER_PAGE = 50
MAX_PAGE = 10_000
CSV_MAX = 10_000  # rows in one export; narrow the filter for more

# The grant decision at the moment of each row: the same predicate, its moment the row's time.
_GRANT_AT_READ = GRANT_IN_FORCE_SQL.replace("%(at)s", "l.at")
assert "%(" not in _GRANT_AT_READ

FLAG_SQL = f"""CASE
    WHEN l.patient_id IS NULL OR l.action = '{access_log.REVIEW_ACCESS_LOG}' THEN false
    WHEN r.role = 'log_reviewer' THEN false
    WHEN r.role = 'partner' THEN NOT EXISTS (
        SELECT 1 FROM partner_grants g JOIN staff_users s ON s.id = g.staff_user_id
        JOIN care_units u ON u.id = s.care_unit_id
        WHERE g.staff_user_id = l.staff_user_id AND g.patient_id = l.patient_id AND {_GRANT_AT_READ})
    WHEN r.id IS NOT NULL THEN NOT EXISTS (
        SELECT 1 FROM staff_ward_access a WHERE a.staff_user_id = l.staff_user_id AND a.ward_id = p.ward_id)
    WHEN l.system_client_id IS NOT NULL THEN NOT EXISTS (
        SELECT 1 FROM system_client_wards cw
        WHERE cw.client_id = l.system_client_id AND cw.ward_id = p.ward_id)
    ELSE false END"""

_ROWS = f"""
SELECT * FROM (
    SELECT l.id, l.at, l.username, r.display_name, r.role, l.hsa_id, cu.name AS unit, cp.name AS provider,
           sc.name AS client, l.patient_id, p.display_name AS patient, p.personal_number, l.action,
           l.context, l.entry_point, {FLAG_SQL} AS flagged
    FROM access_log l
    LEFT JOIN staff_users r ON r.id = l.staff_user_id
    LEFT JOIN care_units cu ON cu.id = l.care_unit_id
    LEFT JOIN care_providers cp ON cp.id = l.care_provider_id
    LEFT JOIN system_clients sc ON sc.id = l.system_client_id
    LEFT JOIN patients p ON p.id = l.patient_id
    WHERE (%(staff)s::text IS NULL OR l.username = lower(%(staff)s) OR l.hsa_id = %(staff)s)
      AND (%(patient)s::uuid IS NULL OR l.patient_id = %(patient)s)
      AND (%(unit)s::text IS NULL OR l.care_unit_id = %(unit)s)
      AND (%(provider)s::text IS NULL OR l.care_provider_id = %(provider)s)
      AND (%(entry)s::text IS NULL OR l.entry_point = %(entry)s)
      AND (%(action)s::text IS NULL OR l.action = %(action)s)
      AND (%(start)s::timestamptz IS NULL OR l.at >= %(start)s)
      AND (%(end)s::timestamptz IS NULL OR l.at < %(end)s)
) x WHERE (NOT %(flagged)s OR flagged)
ORDER BY at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s
"""


@dataclass(frozen=True, slots=True)
class LogFilter:
    """What the reviewer asked for; None is no filter on that part."""

    staff: str | None = None  # a username or an HSA-id
    patient_id: uuid.UUID | None = None
    care_unit_id: str | None = None
    care_provider_id: str | None = None
    entry_point: str | None = None
    action: str | None = None
    start: datetime | None = None
    end: datetime | None = None  # exclusive
    only_flagged: bool = False


@dataclass(frozen=True, slots=True)
class ReviewRow:
    id: int
    at: datetime
    username: str
    display_name: str | None
    role: str | None
    hsa_id: str | None
    unit: str | None
    provider: str | None
    client: str | None
    patient_id: uuid.UUID | None
    patient: str | None
    personal_number: str | None
    action: str
    context: str | None
    entry_point: str
    flagged: bool


@dataclass(frozen=True, slots=True)
class ReviewPage:
    rows: tuple[ReviewRow, ...]
    page: int
    has_next: bool

    @property
    def patient_ids(self) -> list[uuid.UUID]:
        return list(dict.fromkeys(r.patient_id for r in self.rows if r.patient_id is not None))


def _params(wanted: LogFilter, limit: int, offset: int) -> dict[str, object]:
    return {
        "staff": wanted.staff,
        "patient": wanted.patient_id,
        "unit": wanted.care_unit_id,
        "provider": wanted.care_provider_id,
        "entry": wanted.entry_point,
        "action": wanted.action,
        "start": wanted.start,
        "end": wanted.end,
        "flagged": wanted.only_flagged,
        "limit": limit,
        "offset": offset,
    }


def review_page(wanted: LogFilter, page: int = 1) -> Steps[ReviewPage]:
    """Page `page` (from 1) of the rows `wanted` selects, newest first."""
    page = min(max(page, 1), MAX_PAGE)
    rows = yield Sql(_ROWS, _params(wanted, PER_PAGE + 1, (page - 1) * PER_PAGE), fetch="all")
    found = tuple(ReviewRow(*r) for r in rows[:PER_PAGE])
    return ReviewPage(found, page, len(rows) > PER_PAGE)


def review_export(wanted: LogFilter) -> Steps[tuple[ReviewRow, ...]]:
    """Up to CSV_MAX of the rows `wanted` selects, newest first."""
    rows = yield Sql(_ROWS, _params(wanted, CSV_MAX, 0), fetch="all")
    return tuple(ReviewRow(*r) for r in rows)


def patient_by_personal_number(number: str) -> Steps[tuple[uuid.UUID, str] | None]:
    """(id, name) of the patient with this (checked, 12-digit) personnummer, or None."""
    row = yield Sql(
        "SELECT id, display_name FROM patients WHERE personal_number = %s", (number,), fetch="one"
    )
    return None if row is None else (row[0], str(row[1]))


def organisations() -> Steps[tuple[list[tuple[str, str]], list[tuple[str, str]]]]:
    """(care units, care providers) as (id, name), for the filter's choices."""
    units = yield Sql(
        "SELECT u.id, u.name || ' (' || p.name || ')' FROM care_units u JOIN care_providers p"
        " ON p.id = u.provider_id ORDER BY u.name",
        fetch="all",
    )
    providers = yield Sql("SELECT id, name FROM care_providers ORDER BY name", fetch="all")
    return [(str(a), str(b)) for a, b in units], [(str(a), str(b)) for a, b in providers]
