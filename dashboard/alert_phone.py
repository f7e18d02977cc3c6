"""The on-call physician's phone (issue 11): the page an escalation message's link opens.

`paging.notify.base.ALERT_LINK_PATH` puts `/alerts/{id}` in every escalation message. After login
(`page_staff` sends a stranger to /login?next=… and back) it is one phone-sized page: the alert (text,
priority, when it opened, how far it has been escalated, its state and who acknowledged it), the
patient's latest values, NEWS2, care level, monitoring plan, personal limits and SpO2 scale, a compact
24-hour trend per vital, and one big "Kvittera" with an optional note. Two taps from the message to
acknowledged: the link, then the button. There is no confirm step: acknowledging says "I have seen
this", it stops the escalation and changes nothing clinical, and a wrong tap is undone by the alert
itself (a worsening opens it again, alerts.lifecycle).

The button is a plain form POST with the session's `csrf` field (works without JavaScript); the
acknowledgement is dashboard.alert_actions' (the same command as the API's: role check, lifecycle, the
note on the `acknowledged` alert_events row, its access-log row), and the answer is this page again
with the confirmation (post/redirect/get). `alert_phone.js` only keeps a second tap from sending twice.

Reading the page writes one access-log row for the patient (ALERT_VIEW). An alert of a ward the member
of staff may not see answers exactly as a number that was never used (issue 8, finding 11).
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alerts.thresholds import DOUBTFUL_QUALITY
from care.access_log import ALERT_VIEW
from core.vitals import VITALS, Vital
from dashboard import alert_actions
from dashboard.access_log import entries_for, write_access_log
from dashboard.auth import csrf_ok, page_staff
from dashboard.errors import AlertNotAcknowledgeable, AlertNotFound, InvalidInput
from dashboard.formatting import format_value
from dashboard.inputs import TEXT_MESSAGE, is_clean_text
from dashboard.model import StaffUser
from dashboard.pages import client_address, error_page, render
from dashboard.queries import fetch_alert, fetch_patient_record
from dashboard.staff_forms import StaleForm
from storage.steps import run_async

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
_BIGINT_MAX = 2**63 - 1
TREND_SPAN = timedelta(hours=24)
NOT_FOUND_SV = "Larmet finns inte."
# The sparkline's box (SVG user units); drawn on the server, so the page needs no script for it.
_W, _H = 120.0, 28.0


@dataclass(frozen=True, slots=True)
class TrendPoint:
    at: datetime  # the hour's start
    mean: float
    low: float
    high: float
    count: int


@dataclass(frozen=True, slots=True)
class VitalTrend:
    """One vital's last 24 hours: hourly means of trustworthy readings, as a line and in words."""

    vital: Vital
    points: tuple[TrendPoint, ...]

    @property
    def label(self) -> str:
        return VITALS[self.vital].display

    def _text(self, value: float) -> str:
        return format_value(value, VITALS[self.vital].decimals)

    @property
    def unit(self) -> str:
        return VITALS[self.vital].display_unit

    @property
    def range_text(self) -> str:
        low = min(p.low for p in self.points)
        high = max(p.high for p in self.points)
        return f"{self._text(low)}–{self._text(high)}" if low != high else self._text(low)

    @property
    def newest_text(self) -> str:
        return self._text(self.points[-1].mean)

    @property
    def summary(self) -> str:
        """What the line shows, for a screen reader and for whoever prefers words."""
        return f"{self.label} senaste 24 h: {self.range_text} {self.unit}, senast timmedel {self.newest_text}"

    def polyline(self, since: datetime) -> str:
        """SVG points of the hourly means on a 24-hour axis ending now (the newest hour at the right)."""
        lows = [p.mean for p in self.points]
        bottom, top = min(lows), max(lows)
        spread = (top - bottom) or 1.0
        span = TREND_SPAN.total_seconds()
        out = []
        for p in self.points:
            x = max(0.0, min(1.0, (p.at - since).total_seconds() / span)) * _W
            y = _H - 2 - (p.mean - bottom) / spread * (_H - 4)
            out.append(f"{x:.1f},{y:.1f}")
        return " ".join(out)


@dataclass(frozen=True, slots=True)
class AlertPage:
    alert: Any  # dashboard.model.AlertView
    record: Any  # dashboard.patient_record.PatientRecord
    trends: tuple[VitalTrend, ...]
    escalation: str | None  # the newest escalation step, as the escalator wrote it
    escalation_level: int | None
    trend_since: datetime


_TREND_SQL = (
    "SELECT vital, date_trunc('hour', time) AS hour, avg(value), min(value), max(value), count(*)"
    " FROM observations WHERE patient_id = %s AND time > %s AND time <= %s AND NOT quality && %s"
    " GROUP BY vital, hour ORDER BY vital, hour"
)


async def fetch_trends(
    conn: psycopg.AsyncConnection[Any], patient_id: uuid.UUID, now: datetime
) -> tuple[VitalTrend, ...]:
    """Hourly means of the last 24 h per vital, doubtful readings left out (they never alarm either)."""
    cur = await conn.execute(_TREND_SQL, (patient_id, now - TREND_SPAN, now, sorted(DOUBTFUL_QUALITY)))
    by_vital: dict[Vital, list[TrendPoint]] = defaultdict(list)
    for vital, hour, mean, low, high, count in await cur.fetchall():
        if vital in Vital._value2member_map_:
            by_vital[Vital(vital)].append(TrendPoint(hour, mean, low, high, count))
    order = {v: i for i, v in enumerate(Vital)}
    return tuple(VitalTrend(v, tuple(p)) for v, p in sorted(by_vital.items(), key=lambda kv: order[kv[0]]))


async def _escalation(conn: psycopg.AsyncConnection[Any], alert_id: int) -> tuple[str | None, int | None]:
    cur = await conn.execute(
        # The on-call chain's steps, or the ward's escalation ladder's hand-offs (issue 12).
        "SELECT note, (detail->>'level')::int FROM alert_events WHERE alert_id = %s"
        " AND kind IN ('escalated', 'handed_off')"
        " ORDER BY at DESC, id DESC LIMIT 1",
        (alert_id,),
    )
    row = await cur.fetchone()
    return (row[0], row[1]) if row else (None, None)


def alert_number(text: str) -> int | None:
    """An alert id as typed into a URL, or None: no 422 list, no 500 for what no bigint can hold."""
    if len(text) > 19 or not (text.isascii() and text.isdigit()):
        return None
    return int(text) if 0 < int(text) <= _BIGINT_MAX else None


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
async def alert_page(
    request: Request,
    alert_id: str,
    staff: Annotated[StaffUser, Depends(page_staff)],
    kvitterat: str = "",
) -> Response:
    """The phone view of one alert and its patient (the escalation message's link)."""
    number = alert_number(alert_id)
    async with request.app.state.pool.connection() as conn:
        alert = await fetch_alert(conn, number) if number is not None else None
        if alert is None or not staff.can_see(alert.ward_id):
            return error_page(request, staff, 404, NOT_FOUND_SV)
        record = await fetch_patient_record(conn, alert.patient_id)
        if record is None:
            return error_page(request, staff, 404, NOT_FOUND_SV)
        now = record.now
        assert now is not None  # fetch_patient_record reads the database's clock with the record
        trends = await fetch_trends(conn, alert.patient_id, now)
        escalation, level = await _escalation(conn, alert.id)
        request.app.state.metrics.access_log_rows += await write_access_log(
            conn,
            entries_for(
                staff, [alert.patient_id], ALERT_VIEW, f"alert:{alert.id} html", client_address(request)
            ),
        )
    page = AlertPage(alert, record, trends, escalation, level, now - TREND_SPAN)
    return render(
        request, "alert_phone.html", staff, page=page, record=record, card=record.card,
        alert=alert, just_acknowledged=kvitterat == "1", may_acknowledge=staff.may("acknowledge_alert"),
        max_note=alert_actions.MAX_NOTE_LENGTH,
    )  # fmt: skip


@router.post("/alerts/{alert_id}/kvittera")
async def acknowledge_form(
    request: Request,
    alert_id: str,
    staff: Annotated[StaffUser, Depends(page_staff)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    note: Annotated[str, Form(max_length=alert_actions.MAX_NOTE_LENGTH)] = "",
) -> Response:
    """ "Kvittera" from the phone view: the API's acknowledgement, then the page with its confirmation."""
    if not csrf_ok(request, csrf):
        request.app.state.metrics.csrf_rejections += 1
        raise StaleForm()
    number = alert_number(alert_id)
    if number is None:
        return error_page(request, staff, 404, NOT_FOUND_SV)
    if not is_clean_text(note):  # a NUL cannot be stored; a bidi override makes the note read otherwise
        raise InvalidInput(TEXT_MESSAGE, "note")
    steps = alert_actions.acknowledge(number, staff, note.strip() or None, client_address(request))
    try:
        async with request.app.state.pool.connection() as conn, conn.transaction():
            change = await run_async(conn, steps)
    except AlertNotFound:  # missing, or of a ward this member of staff may not see: the page's answer
        return error_page(request, staff, 404, NOT_FOUND_SV)
    except AlertNotAcknowledgeable:
        # Someone was quicker (or it resolved): the page says who, and in what state it is now.
        return RedirectResponse(f"/alerts/{number}#larm", status_code=303)
    request.app.state.metrics.staff_action(change.kind)
    log.info("alert %s acknowledged by staff %s from the phone view", number, staff.id)
    return RedirectResponse(f"/alerts/{number}?kvitterat=1#larm", status_code=303)
