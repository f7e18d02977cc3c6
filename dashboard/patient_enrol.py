"""The patient app's way in and its log extract (issue 10), both sides of the enrolment link:

* staff (the record's form, a staff session and its CSRF token): `POST /patients/{id}/app-devices`
  makes a device's one-time link and answers with a printable page (QR code, link, PIN, how to hand it
  over); `POST /patients/{id}/app-devices/{device}/revoke` ends a device at once;
* the device: `GET /p/anslut?kod=...` shows one big button (and a PIN field when the link has a PIN)
  and changes nothing, since message previewers fetch links; `POST /p/anslut` opens the link
  (care.patient_enrolment.redeem) and gives the browser its device cookie;
* `GET /p/vem-har-last` (and its live fragment): who read the patient's record (care.log_extract).

The link code is a secret until it is used: it is never logged. The router's lifespan keeps it out of
uvicorn's access log (`RedactEnrolCodes`), and no log line here names it.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import segno
from fastapi import APIRouter, Depends, FastAPI, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from care import log_extract, patient_enrolment, texts_patient_sv
from care.acting import execute_async
from care.patient_access import PatientViewer
from care.patient_today import when_sv
from care.permissions import Holder, PatientAction
from care.refusals import RefusalCode, Refused
from dashboard.auth import page_staff
from dashboard.inputs import BIGINT_MAX, PatientId, Text, swedish
from dashboard.model import StaffUser
from dashboard.pages import client_address, render
from dashboard.patient_realm import (
    PatientRefused,
    page_viewer,
    patient_error,
    patient_read,
    render_patient,
    set_device_cookie,
)
from dashboard.staff_forms import form_origin, run_form_command
from storage.steps import run_async

log = logging.getLogger(__name__)

_CODE_IN_URL = re.compile(r"(kod=)[^&\s\"]*")


class RedactEnrolCodes(logging.Filter):
    """Blanks `kod=...` in uvicorn's access log lines (`GET /p/anslut?kod=... 200`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_CODE_IN_URL.sub(r"\1-", a) if isinstance(a, str) else a for a in record.args)
        return True


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    access = logging.getLogger("uvicorn.access")
    redact = RedactEnrolCodes()
    access.addFilter(redact)
    try:
        yield
    finally:
        access.removeFilter(redact)


router = APIRouter(include_in_schema=False, lifespan=_lifespan)


# --- the device's way in ------------------------------------------------------------------------------

_BRAKE_FAILURES = 20  # wrong PINs or dead links per client address ...
_BRAKE_WINDOW_S = 900.0  # ... within a quarter of an hour
_BRAKE_MESSAGE = "Det blev fel för många gånger. Vänta en kvart och försök igen, eller ring avdelningen."
_COUNTED = frozenset(
    {RefusalCode.ENROLMENT_LINK_INVALID, RefusalCode.ENROLMENT_PIN_WRONG, RefusalCode.ENROLMENT_PIN_LOCKED}
)


@dataclass
class EnrolBrake:
    """Failed link openings per client address, in this process. Each link already allows only
    care.patient_enrolment.MAX_PIN_FAILURES wrong PINs; this stops one client trying many links."""

    limit: int = _BRAKE_FAILURES
    window_s: float = _BRAKE_WINDOW_S
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def blocked(self, source: str, now: float) -> bool:
        recent = self._failures.get(source)
        while recent and recent[0] <= now - self.window_s:
            recent.popleft()
        return recent is not None and len(recent) >= self.limit

    def failed(self, source: str, now: float) -> None:
        if len(self._failures) > 10_000:  # forget addresses whose failures are all old
            self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > now - self.window_s}
        self._failures.setdefault(source, deque(maxlen=self.limit)).append(now)


def _brake(request: Request) -> EnrolBrake:
    state = request.app.state
    if not hasattr(state, "enrol_brake"):
        state.enrol_brake = EnrolBrake()
    brake: EnrolBrake = state.enrol_brake
    return brake


def _enrol_page(request: Request, code: str, needs_pin: bool, status: int = 200, error: str = "") -> Response:
    return render_patient(request, "patient_app/enrol.html", None, status, code=code, needs_pin=needs_pin,
                          error=error)  # fmt: skip


@router.get("/p/anslut", response_class=HTMLResponse)
async def enrol_page(request: Request) -> Response:
    """The link's page. Reads only: a previewer fetching the link uses nothing up."""
    code = request.query_params.get("kod", "")
    async with request.app.state.pool.connection() as conn:
        state = await run_async(conn, patient_enrolment.link_state(code))
    if state is None:
        raise patient_error(Refused(RefusalCode.ENROLMENT_LINK_INVALID))
    return _enrol_page(request, code, state.needs_pin)


@router.post("/p/anslut", response_class=HTMLResponse)
async def enrol(
    request: Request,
    kod: Annotated[str, Form(max_length=patient_enrolment.MAX_CODE_LENGTH)] = "",
    pin: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Open the link on this device: its token goes into the device cookie, and Idag opens."""
    source = client_address(request) or "-"
    brake = _brake(request)
    if brake.blocked(source, time.monotonic()):
        raise PatientRefused(429, "refused: enrolment brake", _BRAKE_MESSAGE)
    async with request.app.state.pool.connection() as conn:
        redemption = await execute_async(conn, patient_enrolment.redeem(kod, pin, client_address=source))
    outcome = redemption.outcome
    if isinstance(outcome, Refused):
        if outcome.code in _COUNTED:
            brake.failed(source, time.monotonic())
        if outcome.code in (RefusalCode.ENROLMENT_PIN_WRONG, RefusalCode.PIN_FORM):
            status = 422
            return _enrol_page(request, kod, True, status, error=texts_patient_sv.text(outcome.refusal))
        raise patient_error(outcome)
    log.info("patient device %s enrolled", outcome.viewer.device_id)
    response = RedirectResponse("/p/", status_code=303)
    set_device_cookie(response, request, outcome.token)
    return response


# --- Vem har läst: the patient's log extract --------------------------------------------------------------


def span_sv(first: datetime, last: datetime, now: datetime, zone: ZoneInfo) -> str:
    """One time (care.patient_today.when_sv), or 'idag 13:40-14:02' (with an en dash) for a run of reads."""
    start, end = when_sv(first, now, zone), when_sv(last, now, zone)
    if start == end:
        return end
    same_day = first.astimezone(zone).date() == last.astimezone(zone).date()
    return f"{start}–{end.rsplit(' ', 1)[1]}" if same_day else f"{start} – {end}"


def _log_context(request: Request, extract: log_extract.LogExtract) -> dict[str, Any]:
    zone: ZoneInfo = request.app.state.renderer.zone
    now = datetime.now(zone)
    return {
        "extract": extract,
        "times": [span_sv(e.first_at, e.last_at, now, zone) for e in extract.entries],
        "window_days": log_extract.WINDOW.days,
    }


Page = Annotated[int, Query(ge=1, le=log_extract.MAX_PAGE)]


@router.get("/p/vem-har-last", response_class=HTMLResponse)
async def access_log_page(
    request: Request, viewer: Annotated[PatientViewer, Depends(page_viewer)], sida: Page = 1
) -> Response:
    """Who has read my record: role and care unit, when, what, newest first (page `sida`)."""
    async with patient_read(
        request, viewer, PatientAction.VIEW_ACCESS_LOG, f"access_log page {sida}"
    ) as conn:
        extract = await run_async(conn, log_extract.extract(viewer.patient_id, page=sida))
    return render_patient(request, "patient_app/access_log.html", viewer, **_log_context(request, extract))


@router.get("/p/fragment/vem-har-last", response_class=HTMLResponse)
async def access_log_fragment(
    request: Request, viewer: Annotated[PatientViewer, Depends(page_viewer)]
) -> Response:
    """The first page's list, for the open page to refresh itself (static/patient.js, `data-live`)."""
    async with patient_read(request, viewer, PatientAction.VIEW_ACCESS_LOG, "access_log live") as conn:
        extract = await run_async(conn, log_extract.extract(viewer.patient_id, page=1))
    return render_patient(
        request, "patient_app/access_log_list.html", viewer, **_log_context(request, extract)
    )


# --- staff: make a link, revoke a device ---------------------------------------------------------------

# An id that cannot exist names no device: not found, as an unknown one.
DeviceId = Annotated[int, Path(ge=1, le=BIGINT_MAX), swedish("Enheten finns inte för patienten", status=404)]


def qr_svg(link: str) -> str:
    """The link as a QR code, an SVG data URI for an <img> (the page's CSP allows data: images)."""
    return str(segno.make(link, error="m", micro=False).svg_data_uri(scale=10, border=4))


@router.post("/patients/{patient_id}/app-devices", response_class=HTMLResponse)
async def create_device(
    request: Request,
    patient_id: PatientId,
    staff: Annotated[StaffUser, Depends(page_staff)],
    holder: Annotated[Holder, Form()] = Holder.PATIENT,
    label: Annotated[Text, Form(max_length=2000)] = "",
    consent: Annotated[Text, Form(max_length=4000)] = "",
    pin: Annotated[Text, Form(max_length=10)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """A new device link for the patient or a relative: the printable page with its QR code and PIN."""
    origin = form_origin(request, csrf)
    settings = request.app.state.settings
    command = patient_enrolment.create(
        patient_id=patient_id, holder=holder, label=label, consent_note=consent or None, with_pin=bool(pin),
        valid_days=settings.patient_link_valid_days, by=staff.username, origin=origin,
    )  # fmt: skip
    created = await run_form_command(request, command)
    request.app.state.metrics.access_log_rows += 1
    log.info("staff %s made patient device %s", staff.id, created.device_id)
    link = created.link(settings.dashboard_url)
    return render(request, "app_device_link.html", staff, created=created, link=link, qr=qr_svg(link),
                  patient_id=patient_id)  # fmt: skip


@router.post("/patients/{patient_id}/app-devices/{device_id}/revoke")
async def revoke_device(
    request: Request,
    patient_id: PatientId,
    device_id: DeviceId,
    staff: Annotated[StaffUser, Depends(page_staff)],
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """End a device of the patient (or its unused link) at once; back to the record."""
    origin = form_origin(request, csrf)
    command = patient_enrolment.revoke(
        patient_id=patient_id, device_id=device_id, by=staff.username, origin=origin
    )
    await run_form_command(request, command)
    request.app.state.metrics.access_log_rows += 1
    log.info("staff %s revoked patient device %s", staff.id, device_id)
    return RedirectResponse(f"/patients/{patient_id}#patient-app", status_code=303)
