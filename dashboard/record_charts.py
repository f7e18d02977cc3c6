"""The record's charts (issue 11, "see the trajectory"): GET /api/patients/{id}/charts/{vital}.

One chart per vital the patient has, over 24 h, 7 days, 30 days or the whole stay, or a zoomed window
of one (`from`/`to`, read at a finer bucket width). The series comes from the rollups
(storage.rollups: the table ingest keeps, or TimescaleDB's continuous aggregates), never from raw rows:
a month of streaming SpO2 is 720 hourly buckets. Beside it, in the same answer: the limits in force
as bands (care.limits.LIMITS_IN_FORCE and care.orders.ON_SCALE_2, placed by the judge's own
KeyLimits), alert events and acknowledgements as markers, manual observations and questionnaire
answers on the same time axis, and on body weight the 3-day rule's gain per weighing. NEWS2 is its
own track (`vital=news2`), scored with the engine's kernel at each bucket's end (dashboard.chart_model).

Staff of the patient's ward only; any other patient is "not found", as an unknown one. Each answer
writes an access-log row (`view_chart`), the live poll's too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime

from alerts.messages_sv import SYMPTOM_SV
from alerts.thresholds import DOUBTFUL_QUALITY
from alerts.weight import WEIGHT_GAIN_KG, WEIGHT_WINDOW, WEIGHT_WINDOW_SLACK
from care.access_log import VIEW_CHART
from care.limits import LIMITS_IN_FORCE
from care.orders import ON_SCALE_2
from care.questionnaires.definitions import questionnaire
from core.vitals import VITALS, Vital
from dashboard import chart_model
from dashboard.access_log import entries_for, write_access_log
from dashboard.answers import refusals
from dashboard.auth import api_staff
from dashboard.chart_answers import ChartAnswer
from dashboard.chart_model import NEWS2, Newest, Window
from dashboard.inputs import PatientId, swedish
from dashboard.model import StaffUser
from dashboard.vendor_assets import plotly_js_url, plotly_style_guards
from storage import rollups

router = APIRouter()

# Every core.vitals.Vital and the NEWS2 track (tests/test_record_charts.py checks the list is whole).
ChartNames = Literal[
    "spo2", "pulse_rate", "heart_rate", "systolic_bp", "diastolic_bp", "mean_arterial_pressure",
    "body_temperature", "body_weight", "respiratory_rate", "glucose", "news2",
]  # fmt: skip
ChartName = Annotated[ChartNames, swedish("Okänd mätparameter")]
RangeKey = Annotated[Literal["24h", "7d", "30d", "stay"], Query(), swedish("Okänt tidsintervall")]
ZoomTime = Annotated[AwareDatetime | None, swedish("Tiden måste anges som ISO 8601 med tidszon")]
NEWS2_LABEL = "NEWS2"
ZOOM_YEARS = (2000, 2200)  # the years a zoom's `from` and `to` may name
ZOOM_OUT_OF_REACH = "Zoomens tider måste ligga mellan år 2000 och 2200"
_DOUBTFUL = sorted(DOUBTFUL_QUALITY)
_EVENT_SV = {
    "opened": "Larm",
    "escalated": "Larm eskalerat",
    "acknowledged": "Kvitterat",
    "resolved": "Avslutat",
}
_PRIORITY_SV = {"high": "högt", "medium": "medel", "low": "lågt"}


@router.get(
    "/api/patients/{patient_id}/charts/{vital}",
    name=VIEW_CHART,
    response_model=ChartAnswer,
    responses=refusals(401, 404, 422),
)
async def patient_chart(
    request: Request,
    patient_id: PatientId,
    vital: ChartName,
    staff: Annotated[StaffUser, Depends(api_staff)],
    range: RangeKey = "30d",
    zoom_from: Annotated[ZoomTime, Query(alias="from")] = None,
    zoom_to: Annotated[ZoomTime, Query(alias="to")] = None,
) -> JSONResponse:
    """One vital's chart (or the NEWS2 track) over a range, or a zoomed part of it (`from` and `to`)."""
    if (zoom_from is None) != (zoom_to is None):
        raise HTTPException(status_code=422, detail="Ange både från och till för att zooma")
    # A time no stay can reach (0001-01-01+14:00, 9999-12-31-14:00) would overflow Python's datetime
    # in the window's arithmetic: refused as the shape is, never a 500.
    if any(t is not None and not ZOOM_YEARS[0] <= t.year <= ZOOM_YEARS[1] for t in (zoom_from, zoom_to)):
        raise HTTPException(status_code=422, detail=ZOOM_OUT_OF_REACH)
    zoom = (zoom_from, zoom_to) if zoom_from and zoom_to else None
    async with request.app.state.pool.connection() as conn:
        chart = await fetch_chart(conn, patient_id, vital, range, zoom=zoom, staff=staff)
        context = f"chart:{vital} {range}{' zoom' if zoom else ''} api"
        client = request.client.host if request.client else None
        request.app.state.metrics.access_log_rows += await write_access_log(
            conn, entries_for(staff, [patient_id], VIEW_CHART, context, client)
        )
    return JSONResponse(chart)


async def fetch_chart(
    conn: Any,
    patient_id: uuid.UUID,
    vital: str,
    range_key: str,
    *,
    zoom: tuple[datetime, datetime] | None,
    staff: StaffUser | None,
) -> dict[str, Any]:
    """The chart's answer (ChartAnswer's shape). `staff` None: no ward check (the benchmark's reads)."""
    cur = await conn.execute(
        "SELECT ward_id, enrolled_at, discharged_at, now() FROM patients WHERE id = %s", (patient_id,)
    )
    row = await cur.fetchone()
    if row is None or (staff is not None and not staff.can_see(row[0])):
        raise HTTPException(status_code=404, detail="Patienten finns inte")
    _, enrolled_at, discharged_at, now = row
    window = chart_model.chart_window(
        range_key, now=now, enrolled_at=enrolled_at, discharged_at=discharged_at, zoom=zoom
    )
    timescale = await _timescale(conn)
    answer: dict[str, Any] = {
        "patient_id": str(patient_id), "vital": vital, "range": range_key,
        "start": window.start.isoformat(), "end": window.end.isoformat(),
        "series": None, "limits": [], "news2": [], "weight_rule": None,
    }  # fmt: skip
    if vital == NEWS2:
        answer.update(label=NEWS2_LABEL, unit="poäng", decimals=0)
        answer["news2"] = await _news2_track(conn, patient_id, window, timescale)
    else:
        info = VITALS[Vital(vital)]
        answer.update(label=info.display, unit=info.display_unit, decimals=info.decimals)
        answer["series"] = await _series(conn, patient_id, vital, window, timescale)
        answer["limits"] = await _limits(conn, patient_id, Vital(vital), window.end)
        if vital == Vital.BODY_WEIGHT:
            answer["weight_rule"] = await _weight_rule(conn, patient_id, window)
    answer["markers"] = await _markers(conn, patient_id, vital, window)
    return answer


async def _timescale(conn: Any) -> bool:
    cur = await conn.execute(rollups.ROLLUP_SOURCE_QUERY, (rollups.TIMESCALE_MARKER,))
    row = await cur.fetchone()
    return bool(row and row[0])


def _bucket_query(window: Window, timescale: bool, columns: str) -> str:
    source, width_clause = rollups.source_for(window.width, timescale)
    return (
        f"SELECT {columns} FROM {source} WHERE patient_id = %(patient)s AND vital = ANY(%(vitals)s)"
        f" AND {width_clause} AND bucket >= %(start)s AND bucket < %(end)s ORDER BY bucket"
    )


async def _series(conn: Any, patient_id: uuid.UUID, vital: str, window: Window, timescale: bool) -> dict:
    # A bucket that began before the window's start still holds readings inside it: start from its start.
    first = window.start - timedelta(seconds=window.start.timestamp() % window.width.seconds)
    cur = await conn.execute(
        _bucket_query(
            window, timescale, "bucket, n, min_value, max_value, sum_value / n, last_value, flagged"
        ),
        {"patient": patient_id, "vitals": [vital], "start": first, "end": window.end},
    )
    rows = await cur.fetchall()
    columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [() for _ in range(7)]
    return {
        "bucket_s": window.width.seconds,
        "t": [b.isoformat() for b in columns[0]],
        "n": [int(x) for x in columns[1]],
        "min": list(columns[2]), "max": list(columns[3]), "mean": [round(x, 3) for x in columns[4]],
        "last": list(columns[5]), "flagged": list(columns[6]),
    }  # fmt: skip


async def _limits(conn: Any, patient_id: uuid.UUID, vital: Vital, at: datetime) -> list[dict]:
    cur = await conn.execute(LIMITS_IN_FORCE, ([patient_id], at))
    personal = chart_model.personal_limits(patient_id, await cur.fetchall())
    cur = await conn.execute(ON_SCALE_2, ([patient_id],))
    scale_2 = await cur.fetchone() is not None
    info = VITALS[vital]
    bands = chart_model.limit_bands(vital, patient_id, personal=personal, scale_2=scale_2)
    return [
        {"rule": b.rule, "direction": b.direction, "priority": b.priority, "value": b.value, "kind": b.kind,
         "label": f"{chart_model.LIMIT_KIND_SV[b.kind]} ({_PRIORITY_SV[b.priority]}) {info.format(b.value)}"}
        for b in bands
    ]  # fmt: skip


async def _weight_rule(conn: Any, patient_id: uuid.UUID, window: Window) -> dict:
    """The 3-day rule at each trustworthy weighing in the window (weights are daily: a few dozen rows)."""
    lookback = WEIGHT_WINDOW + WEIGHT_WINDOW_SLACK
    cur = await conn.execute(
        "SELECT extract(epoch FROM time)::float8, value FROM observations WHERE patient_id = %s"
        " AND vital = 'body_weight' AND time >= %s AND time <= %s AND NOT quality && %s ORDER BY time",
        (patient_id, window.start - lookback, window.end, _DOUBTFUL),
    )
    rows = await cur.fetchall()
    times = np.array([r[0] for r in rows], dtype=float)
    values = np.array([r[1] for r in rows], dtype=float)
    track = chart_model.weight_rule_track(times, values, window.start.timestamp())
    return {
        "limit_kg": WEIGHT_GAIN_KG,
        "t": [_iso(t) for t, _ in track],
        "gain_kg": [round(g, 2) for _, g in track],
    }


async def _markers(conn: Any, patient_id: uuid.UUID, vital: str, window: Window) -> list[dict]:
    """Alert events of this vital's (or NEWS2's) alerts, manual observations, questionnaire answers."""
    markers: list[dict] = []
    rule_clause = "a.rule = 'news2'" if vital == NEWS2 else "a.vital = %(vital)s"
    cur = await conn.execute(
        "SELECT e.at, e.kind, a.priority, a.id, a.message, a.value FROM alert_events e"
        " JOIN alerts a ON a.id = e.alert_id"
        " WHERE a.patient_id = %(patient)s AND a.condition = 'physiological'"
        f" AND {rule_clause} AND e.kind = ANY(%(kinds)s) AND e.at BETWEEN %(start)s AND %(end)s"
        " ORDER BY e.at",
        {
            "patient": patient_id,
            "vital": vital,
            "kinds": list(_EVENT_SV),
            "start": window.start,
            "end": window.end,
        },
    )
    for at, kind, priority, alert_id, message, value in await cur.fetchall():
        markers.append({"at": at.isoformat(), "kind": kind, "priority": priority, "alert_id": alert_id,
                        "value": value, "text": f"{_EVENT_SV[kind]}: {message}"})  # fmt: skip
    cur = await conn.execute(
        "SELECT time, respiratory_rate, consciousness, on_oxygen, oxygen_l_min, source"
        " FROM manual_observations WHERE patient_id = %s AND time BETWEEN %s AND %s ORDER BY time",
        (patient_id, window.start, window.end),
    )
    for at, rr, acvpu, oxygen, litres, source in await cur.fetchall():
        if vital not in (NEWS2, Vital.RESPIRATORY_RATE):
            continue
        parts = [f"AF {rr:g}/min"] if rr is not None else []
        if acvpu:
            parts.append(f"medvetandegrad {acvpu}")
        if oxygen is not None:
            parts.append(f"syrgas {litres:g} l/min" if oxygen and litres else "syrgas" if oxygen else "luft")
        who = "sjuksköterska" if source == "nurse" else "patienten"
        markers.append({"at": at.isoformat(), "kind": "manual", "value": rr,
                        "text": f"Manuell observation ({who}): {', '.join(parts)}"})  # fmt: skip
    cur = await conn.execute(
        "SELECT authored_at, questionnaire, score, flags FROM questionnaire_responses"
        " WHERE patient_id = %s AND authored_at BETWEEN %s AND %s ORDER BY authored_at",
        (patient_id, window.start, window.end),
    )
    for at, qid, score, flags in await cur.fetchall():
        q = questionnaire(qid)
        said = "; ".join(SYMPTOM_SV.get(f, f) for f in flags)
        text = f"Svar: {q.title if q else qid}, {score} poäng" + (f" – {said}" if said else "")
        markers.append({"at": at.isoformat(), "kind": "answer", "value": float(score), "text": text})
    markers.sort(key=lambda m: m["at"])
    return markers


# The NEWS2 parameters' device vitals (pulse: pulse rate or heart rate, whichever is newer at a time).
_NEWS2_VITALS = ("respiratory_rate", "spo2", "systolic_bp", "pulse_rate", "heart_rate", "body_temperature")


async def _news2_track(conn: Any, patient_id: uuid.UUID, window: Window, timescale: bool) -> list[dict]:
    """NEWS2 at each bucket's end: the newest value of each parameter (the buckets' newest readings,
    from 12 h before the window so a value still fresh at its start counts), manual entries for
    consciousness and air/oxygen, the SpO2 scale in force."""
    lookback = window.start - timedelta(hours=12)
    cur = await conn.execute(
        _bucket_query(window, timescale, "vital, extract(epoch FROM last_time)::float8, last_value"),
        {"patient": patient_id, "vitals": list(_NEWS2_VITALS), "start": lookback, "end": window.end},
    )
    by_vital: dict[str, list[tuple[float, float]]] = {v: [] for v in _NEWS2_VITALS}
    for v, t, x in await cur.fetchall():
        by_vital[v].append((t, x))
    by_vital["pulse"] = sorted(by_vital.pop("pulse_rate") + by_vital.pop("heart_rate"))
    cur = await conn.execute(
        "SELECT extract(epoch FROM time)::float8, consciousness, on_oxygen FROM manual_observations"
        " WHERE patient_id = %s AND time BETWEEN %s AND %s ORDER BY time, id",
        (patient_id, lookback, window.end),
    )
    manual = await cur.fetchall()
    cur = await conn.execute(ON_SCALE_2, ([patient_id],))
    scale = 2 if await cur.fetchone() else 1
    step = window.width.seconds
    start = window.start.timestamp() - window.start.timestamp() % step + step
    grid = np.arange(start, window.end.timestamp() + step, step, dtype=float)
    grid = np.minimum(grid, window.end.timestamp())

    def newest(pairs: list[tuple[float, Any]], text: bool = False) -> Newest:
        dtype = str if text else float
        return Newest(np.array([p[0] for p in pairs], float), np.array([p[1] for p in pairs], dtype))

    track = chart_model.news2_track(
        grid,
        resp_rate=newest(by_vital["respiratory_rate"]), spo2=newest(by_vital["spo2"]),
        systolic_bp=newest(by_vital["systolic_bp"]), pulse=newest(by_vital["pulse"]),
        temperature=newest(by_vital["body_temperature"]),
        consciousness=newest([(t, c) for t, c, _ in manual if c is not None], text=True),
        on_oxygen=newest([(t, float(o)) for t, _, o in manual if o is not None]), spo2_scale=scale,
    )  # fmt: skip
    return [
        {"t": _iso(p.at), "partial_total": p.partial_total, "total": p.total, "complete": p.total is not None}
        for p in track
    ]


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat()


# --- the record's section (dashboard/templates/_vital_charts.html) --------------------------------


async def chart_names(conn: Any, patient_id: uuid.UUID) -> list[tuple[str, str]]:
    """(name, Swedish label) of every chart the patient has: each vital with a reading, then NEWS2.
    Read after the page's own access-log row (the section shows no values itself; each chart's read
    writes its own row)."""
    cur = await conn.execute("SELECT vital FROM latest_vitals WHERE patient_id = %s", (patient_id,))
    have = {r[0] for r in await cur.fetchall()}
    names = [(v.value, VITALS[v].display) for v in Vital if v.value in have]
    return [*names, (NEWS2, NEWS2_LABEL)] if names else []


@dataclass(frozen=True, slots=True)
class ChartsSection:
    """What _vital_charts.html needs: whose charts, which, the site's zone, the library's URL."""

    patient_id: uuid.UUID
    names: tuple[tuple[str, str], ...]
    zone: str
    library_url: str
    style_guards: tuple[str, ...]
    range: str = "7d"
    ranges: tuple[tuple[str, str], ...] = tuple(chart_model.RANGE_LABELS_SV.items())


async def section(conn: Any, patient_id: uuid.UUID, zone: str) -> ChartsSection:
    names = tuple(await chart_names(conn, patient_id))
    return ChartsSection(patient_id, names, zone, plotly_js_url(), plotly_style_guards())
