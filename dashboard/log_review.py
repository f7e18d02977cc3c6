"""`/logg`: the region's log reviewer's screen (issue 12; care.log_review). Only Role.LOG_REVIEWER
(AdminAction.REVIEW_ACCESS_LOG): everyone else gets the role refusal on every route and method.

The search is a POSTed form (CSRF), paging and the CSV export too, so that a personnummer never
travels in a URL (browser history, proxies, server logs): the page echoes it only in its own form
field. The number is checked as care.personal_numbers checks it and refused in words that never
repeat it. The reviewer's own reading is logged: one REVIEW_ACCESS_LOG row per patient shown on a
page or exported, entry point DASHBOARD.

The chain's state (care.access_log_seals: "Loggen är obruten t.o.m. 5 dec") is the last check's,
as `hemma accesslog seal --verify` recorded it.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from care import access_log, log_extract, log_review
from care.access_log_seals import SEAL_STATE_SQL, SealState
from care.log_review import LogFilter, ReviewPage, ReviewRow
from care.permissions import AdminAction
from care.personal_numbers import check_personal_number
from care.refusals import Refused
from dashboard.access_log import entries_for, write_access_log
from dashboard.admin_staff import admin_for
from dashboard.formatting import format_date_time
from dashboard.inputs import check_text
from dashboard.model import ROLE_LABELS, StaffUser
from dashboard.pages import client_address, render
from dashboard.staff_forms import form_origin
from storage.steps import run_async

router = APIRouter(include_in_schema=False)
Reviewer = Annotated[StaffUser, Depends(admin_for(AdminAction.REVIEW_ACCESS_LOG))]

ENTRY_POINTS_SV = {
    access_log.DASHBOARD: "Översikten (webb)",
    access_log.PATIENT_APP: "Patientappen",
    access_log.PARTNER: "Samverkansvyn",
    access_log.FHIR: "FHIR (journalsystem)",
    access_log.CLI: "Kommandoraden",
    access_log.ESCALATOR: "Larmtjänsten",
}
_DEVICE_WORDS = {a: w[:1].upper() + w[1:] for a, w in log_extract.DEVICE_DID_SV.items()}
ACTIONS_SV: dict[str, str] = {
    **{str(a): w for a, w in log_extract.STAFF_DID_SV.items() if ":" not in a},
    **_DEVICE_WORDS,
}
FLAG_SV = "Utan vårdrelation"


def _what(row: ReviewRow) -> str:
    return ACTIONS_SV.get(row.action, row.action)


# Rows without a staff account or system client behind them (care.access_log), by username.
NO_ACCOUNT_SV = {
    access_log.PATIENT_DEVICE: "Patientens egen enhet",
    access_log.RELATIVE_DEVICE: "Närståendes enhet",
    access_log.OPERATOR: "Kommandoraden (drift)",
    access_log.PATIENT_REPORTED: "Patientens egna uppgifter (inskrivna)",
    access_log.ESCALATION_SERVICE: "Larmtjänsten",
}


def _who(row: ReviewRow) -> str:
    if row.client:
        return f"Systemklient: {row.client}"
    return row.display_name or NO_ACCOUNT_SV.get(row.username, row.username)


def _clean(value: str, limit: int = 200) -> str | None:
    value = value.strip()[:limit]
    return value or None


class FilterRefused(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _day(text: str, field: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise FilterRefused(field, "Skriv datumet som ÅÅÅÅ-MM-DD.") from None


def _start_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)


async def _filter(
    request: Request, conn: Any, form: dict[str, str], zone: ZoneInfo
) -> tuple[LogFilter, str | None]:
    """The filter the form asks for, and the patient's name when one was named; FilterRefused."""
    patient_id, patient_name = None, None
    if form["personnummer"].strip():
        try:
            number = check_personal_number(form["personnummer"], today=datetime.now(zone).date())
        except Refused:
            raise FilterRefused(
                "personnummer", "Personnumret är inte giltigt (12 siffror, ÅÅÅÅMMDD-NNNN)."
            ) from None
        found = await run_async(conn, log_review.patient_by_personal_number(number.number))
        if found is None:
            raise FilterRefused("personnummer", "Det finns ingen patient i Hemma med det personnumret.")
        patient_id, patient_name = found
    start, end = _day(form["fran"], "fran"), _day(form["till"], "till")
    if start and end and start > end:
        raise FilterRefused("till", "Till-datumet ligger före från-datumet.")
    wanted = LogFilter(
        staff=_clean(form["anvandare"], 64),
        patient_id=patient_id,
        care_unit_id=_clean(form["enhet"], 64),
        care_provider_id=_clean(form["vardgivare"], 64),
        entry_point=_clean(form["ingang"], 32),
        action=_clean(form["atgard"], 64),
        start=_start_of(start, zone) if start else None,
        end=_start_of(end + timedelta(days=1), zone) if end else None,
        only_flagged=form["flaggade"] == "1",
    )
    return wanted, patient_name


_FIELDS = ("personnummer", "anvandare", "enhet", "vardgivare", "ingang", "atgard", "fran", "till", "flaggade")
Field = Annotated[str, Form(max_length=200)]


@router.get("/logg", response_class=HTMLResponse)
async def review_page(request: Request, reviewer: Reviewer) -> Response:
    """The newest rows of the whole log, and the search form."""
    return await _answer(request, reviewer, dict.fromkeys(_FIELDS, ""), 1, csv_export=False)


@router.post("/logg", response_class=HTMLResponse)
async def review_search(
    request: Request,
    reviewer: Reviewer,
    csrf: Field = "",
    personnummer: Field = "",
    anvandare: Field = "",
    enhet: Field = "",
    vardgivare: Field = "",
    ingang: Field = "",
    atgard: Field = "",
    fran: Field = "",
    till: Field = "",
    flaggade: Field = "",
    sida: Field = "1",
    format: Field = "",
) -> Response:
    form_origin(request, csrf)
    form = {
        "personnummer": personnummer,
        "anvandare": anvandare,
        "enhet": enhet,
        "vardgivare": vardgivare,
        "ingang": ingang,
        "atgard": atgard,
        "fran": fran,
        "till": till,
        "flaggade": flaggade,
    }
    for value in (*form.values(), sida, format):
        check_text(value)
    page = int(sida) if sida.isdigit() and 0 < int(sida) <= log_review.MAX_PAGE else 1
    return await _answer(request, reviewer, form, page, csv_export=format == "csv")


async def _answer(
    request: Request, reviewer: StaffUser, form: dict[str, str], page: int, *, csv_export: bool
) -> Response:
    zone: ZoneInfo = request.app.state.renderer.zone
    async with request.app.state.pool.connection() as conn:
        units, providers = await run_async(conn, log_review.organisations())
        state_row = await (await conn.execute(SEAL_STATE_SQL)).fetchone()
        context: dict[str, Any] = {
            "form": form,
            "units": units,
            "providers": providers,
            "entry_points": ENTRY_POINTS_SV,
            "actions": sorted(ACTIONS_SV.items(), key=lambda kv: kv[1]),
            "seal": _seal_text(SealState(*state_row), zone),
        }
        try:
            wanted, patient_name = await _filter(request, conn, form, zone)
        except FilterRefused as refused:
            return render(
                request,
                "log_review.html",
                reviewer,
                422,
                error=refused.message,
                error_field=refused.field,
                result=None,
                **context,
            )
        if csv_export:
            rows = await run_async(conn, log_review.review_export(wanted))
            await _log_review(request, conn, reviewer, rows, "log_review csv")
            return _csv(rows, zone)
        result: ReviewPage = await run_async(conn, log_review.review_page(wanted, page))
        await _log_review(request, conn, reviewer, result.rows, f"log_review page:{page}")
    lines = [_line(row, zone) for row in result.rows]
    return render(
        request,
        "log_review.html",
        reviewer,
        result=result,
        lines=lines,
        patient_id=wanted.patient_id,
        patient_name=patient_name,
        **context,
    )


async def _log_review(request: Request, conn: Any, reviewer: StaffUser, rows: Any, context: str) -> None:
    patients = list(dict.fromkeys(r.patient_id for r in rows if r.patient_id is not None))
    entries = entries_for(reviewer, patients, access_log.REVIEW_ACCESS_LOG, context, client_address(request))
    request.app.state.metrics.access_log_rows += await write_access_log(conn, entries)


def _line(row: ReviewRow, zone: ZoneInfo) -> dict[str, Any]:
    """What one row of the table says."""
    return {
        "row": row,
        "when": format_date_time(row.at, zone),
        "who": _who(row),
        "role": ROLE_LABELS.get(row.role or "", ""),
        "what": _what(row),
        "entry": ENTRY_POINTS_SV.get(row.entry_point, row.entry_point),
    }


def _seal_text(state: SealState, zone: ZoneInfo) -> tuple[str, bool] | None:
    """("Loggen är obruten t.o.m. 5 dec 2026 …", ok) from the last check, or None before any."""
    if state.checked_at is None:
        if state.sealed_through is None:
            return None
        return (
            f"Loggen är förseglad t.o.m. {_date_sv(state.sealed_through)} men har inte kontrollerats.",
            False,
        )
    checked = format_date_time(state.checked_at, zone)
    if state.problem is None:
        through = _date_sv(state.intact_through) if state.intact_through else "–"
        return (f"Loggen är obruten t.o.m. {through} (UTC-dygn; kontrollerad {checked}).", True)
    problem = {
        "altered": "en rad ändrad",
        "deleted": "en rad borttagen",
        "inserted": "en rad tillagd i efterhand",
        "late": "en rad sparad efter förseglingen",
        "seal": "förseglingen stämmer inte",
    }
    where = f", rad {state.problem_row}" if state.problem_row else ""
    day = _date_sv(state.problem_day) if state.problem_day else "?"
    what = problem.get(state.problem, state.problem)
    return (f"Loggen är bruten {day}{where}: {what} (kontrollerad {checked}).", False)


_MONTHS = ("jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec")


def _date_sv(day: date) -> str:
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


# --- CSV ---------------------------------------------------------------------------------------------------

CSV_HEADER = (
    "Tid",
    "Användare",
    "Namn",
    "Roll",
    "HSA-id",
    "Vårdenhet",
    "Vårdgivare",
    "Systemklient",
    "Patient",
    "Personnummer",
    "Åtgärd",
    "Beskrivning",
    "Ingång",
    FLAG_SV,
    "Rad",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """A cell a spreadsheet would read as a formula ('=HYPERLINK(...)', '+1', '@SUM') as plain text
    (OWASP "CSV injection"): a leading apostrophe, which Excel and LibreOffice hide."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _csv(rows: tuple[ReviewRow, ...], zone: ZoneInfo) -> Response:
    """UTF-8 with a byte-order mark and semicolons: what Excel opens as columns in a Swedish locale
    (where the comma is the decimal sign)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for r in rows:
        cells = (
            r.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            r.username,
            r.display_name or "",
            ROLE_LABELS.get(r.role or "", ""),
            r.hsa_id or "",
            r.unit or "",
            r.provider or "",
            r.client or "",
            r.patient or "",
            r.personal_number or "",
            _what(r),
            r.context or "",
            ENTRY_POINTS_SV.get(r.entry_point, r.entry_point),
            "ja" if r.flagged else "",
            str(r.id),
        )
        writer.writerow([neutralise(c) for c in cells])
    stamp = datetime.now(zone).strftime("%Y%m%d-%H%M")
    return Response(
        ("\ufeff" + out.getvalue()).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="logg-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )
