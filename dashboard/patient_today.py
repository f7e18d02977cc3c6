"""The patient app's Idag and Mina värden screens (issue 10).

Idag: the date and a greeting, what to do today (the plan's measurements from care.patient_today, the
questionnaires due), the latest values with their plain word (the patient only: a relative's Idag has
no numbers), the agreed self-care card and a big "Kontakta oss". The part that changes by itself is a
live region refreshed from /p/fragment/idag (patient.js), rendered by the same partial as the page.

Mina värden: per value, two weeks as a chart (dashboard.patient_chart) with the patient's own band, a
table alternative and one neutral sentence (care.patient_values).

Every read runs in `patient_read`: refused for a holder who may not (a relative on Mina värden gets
the calm 403 page), logged with the device's id in the same transaction.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from care import patient_today as today_rules
from care import patient_values
from care.patient_access import PatientViewer
from care.patient_receipts import RECEIPT_SV
from care.permissions import Holder, PatientAction
from dashboard import patient_contact, patient_questionnaires
from dashboard.patient_chart import chart_of
from dashboard.patient_realm import page_viewer, patient_read, render_patient
from storage.steps import run_async

router = APIRouter(include_in_schema=False)
Viewer = Annotated[PatientViewer, Depends(page_viewer)]


@dataclass(frozen=True, slots=True)
class TodayPart:
    """Another screen's part of Idag: its loader `loader(conn, viewer, now)` (sync or async) in
    `module`, whose result the template `patient_app/_today_<name>.html` reads as `<name>`."""

    name: str
    module: object
    loader: str


# The questionnaires due today (their own helper's module) and the agreed self-care instruction. A
# part whose loader is not there yet is left out, and so is its template (`ignore missing`).
TODAY_PARTS: tuple[TodayPart, ...] = (
    TodayPart("questionnaires", patient_questionnaires, "today_questionnaires"),
    TodayPart("self_care", patient_contact, "today_self_care"),
)


async def _parts(conn: psycopg.AsyncConnection[Any], viewer: PatientViewer, now: datetime) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for part in TODAY_PARTS:
        loader = getattr(part.module, part.loader, None)
        if loader is None:
            continue
        value = loader(conn, viewer, now)
        found[part.name] = await value if inspect.isawaitable(value) else value
    return found


async def _today(request: Request, viewer: PatientViewer, context: str) -> dict[str, Any]:
    """Everything Idag shows, read in one logged transaction."""
    now = datetime.now(UTC)
    zone = request.app.state.settings.site_zone()
    async with patient_read(request, viewer, PatientAction.VIEW_TODAY, context) as conn:
        with_values = viewer.holder is Holder.PATIENT and viewer.may(PatientAction.VIEW_VALUES)
        day = await run_async(conn, today_rules.today(viewer.patient_id, now=now, zone=zone,
                                                      with_values=with_values))  # fmt: skip
        name = await run_async(conn, today_rules.first_name(viewer.patient_id))
        parts = await _parts(conn, viewer, now)
    return {
        "today": day,
        "show_values": with_values,
        "date_text": today_rules.date_sv(now.astimezone(zone).date()).capitalize(),
        "greeting": today_rules.greeting_sv(now, zone),
        "patient_name": name,
        "receipt_sv": RECEIPT_SV,
        "feeling_worse": today_rules.FEELING_WORSE_SV,
        **parts,
    }


@router.get("/p/")
async def today_page(request: Request, viewer: Viewer) -> Response:
    context = await _today(request, viewer, "page:idag")
    return render_patient(request, "patient_app/today.html", viewer, **context)


@router.get("/p/fragment/idag")
async def today_fragment(request: Request, viewer: Viewer) -> Response:
    """The live region's contents, by the page's own partial (patient.js swaps them in)."""
    context = await _today(request, viewer, "fragment:idag")
    return render_patient(request, "patient_app/_today_live.html", viewer, **context)


@router.get("/p/varden")
async def values_page(request: Request, viewer: Viewer) -> Response:
    now = datetime.now(UTC)
    zone = request.app.state.settings.site_zone()
    async with patient_read(request, viewer, PatientAction.VIEW_VALUES, "page:varden") as conn:
        histories = await run_async(conn, patient_values.value_history(viewer.patient_id, now=now, zone=zone))
    charts = [(h, chart_of(h, now=now, zone=zone, days=today_rules.HISTORY_DAYS)) for h in histories]
    return render_patient(
        request,
        "patient_app/values.html",
        viewer,
        charts=charts,
        days=today_rules.HISTORY_DAYS,
        feeling_worse=today_rules.FEELING_WORSE_SV,
    )
