"""Technical alarms read from the database: the monitoring plan, gateways and devices.

The kernels are in `alerts.missing`; these functions load their inputs for every patient in care,
one query each, for the engine's timer (`ingest.engine.AlertEngine.tick`). Like
`ingest.history_rules`, the database is their state: nothing to rebuild after a restart.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from alerts import missing
from alerts.model import AlertClear, AlertRequest, RuleOutput
from alerts.thresholds import DOUBTFUL_QUALITY
from core.contract import MAX_CLOCK_SKEW
from core.vitals import Vital

if TYPE_CHECKING:
    import psycopg

DEVICE_SILENT_AFTER = timedelta(hours=26)  # spot-check devices: a day's use plus slack
_DOUBTFUL = sorted(DOUBTFUL_QUALITY)


def missing_vitals(conn: psycopg.Connection, *, now: datetime) -> RuleOutput:
    rows = conn.execute(
        "SELECT m.patient_id, m.vital, m.every_minutes * 60.0,"
        " extract(epoch FROM greatest(m.set_at, p.enrolled_at))::float8,"
        " (SELECT extract(epoch FROM o.time)::float8 FROM observations o WHERE o.patient_id = m.patient_id"
        "   AND o.vital = m.vital AND o.time <= %(until)s AND NOT o.quality && %(d)s"
        "   ORDER BY o.time DESC LIMIT 1)"
        " FROM monitoring_plans m JOIN patients p ON p.id = m.patient_id WHERE p.discharged_at IS NULL"
        " ORDER BY m.vital, m.patient_id",
        {"until": now + MAX_CLOCK_SKEW, "d": _DOUBTFUL},
    ).fetchall()
    requests: list[AlertRequest] = []
    clears: list[AlertClear] = []
    by_vital: dict[str, list[tuple]] = {}
    for row in rows:
        by_vital.setdefault(row[1], []).append(row)
    for vital_name, group in by_vital.items():
        ids = [r[0] for r in group]
        got = missing.missing_vital_output(
            Vital(vital_name),
            ids,
            last_trusted_at=np.array([np.nan if r[4] is None else r[4] for r in group], float),
            every=np.array([r[2] for r in group], float),
            plan_started_at=np.array([r[3] for r in group], float),
            now=now,
        )
        requests += got[0]
        clears += got[1]
    return requests, clears


def gateways_offline(conn: psycopg.Connection, *, now: datetime) -> RuleOutput:
    rows = conn.execute(
        "SELECT g.patient_id, g.status, extract(epoch FROM g.status_at)::float8,"
        " extract(epoch FROM g.registered_at)::float8 FROM gateways g JOIN patients p ON p.id = g.patient_id"
        " WHERE p.discharged_at IS NULL"
    ).fetchall()
    if not rows:
        return [], []
    return missing.gateway_offline_output(
        [r[0] for r in rows],
        status=[r[1] for r in rows],
        status_at=np.array([np.nan if r[2] is None else r[2] for r in rows], float),
        registered_at=np.array([r[3] for r in rows], float),
        now=now,
    )


def receipts_overdue(conn: psycopg.Connection, *, now: datetime) -> RuleOutput:
    rows = conn.execute(
        "SELECT g.patient_id, g.status, extract(epoch FROM g.unconfirmed_since)::float8,"
        " g.unconfirmed_measurements::float8 FROM gateways g JOIN patients p ON p.id = g.patient_id"
        " WHERE p.discharged_at IS NULL"
    ).fetchall()
    if not rows:
        return [], []
    return missing.receipts_overdue_output(
        [r[0] for r in rows],
        status=[r[1] for r in rows],
        unconfirmed_since=np.array([np.nan if r[2] is None else r[2] for r in rows], float),
        measurements=np.array([np.nan if r[3] is None else r[3] for r in rows], float),
        now=now,
    )


def _device_rows(conn: psycopg.Connection, columns: str) -> list[tuple]:
    return conn.execute(
        f"SELECT g.patient_id, d.device_id, {columns} FROM devices d JOIN gateways g ON g.id = d.gateway_id"
        " JOIN patients p ON p.id = g.patient_id WHERE p.discharged_at IS NULL"
        " ORDER BY g.patient_id, d.device_id"
    ).fetchall()


def devices_silent(conn: psycopg.Connection, *, now: datetime) -> RuleOutput:
    rows = _device_rows(conn, "extract(epoch FROM d.last_seen_at)::float8")
    if not rows:
        return [], []
    return missing.device_silent_output(
        [r[0] for r in rows], [r[1] for r in rows], last_seen_at=np.array([r[2] for r in rows], float),
        silent_after=DEVICE_SILENT_AFTER, now=now,
    )  # fmt: skip


def batteries(conn: psycopg.Connection, *, now: datetime) -> RuleOutput:
    rows = _device_rows(conn, "d.battery_percent::float8, extract(epoch FROM d.battery_at)::float8")
    if not rows:
        return [], []
    return missing.battery_low_output(
        [r[0] for r in rows], [r[1] for r in rows],
        percent=np.array([np.nan if r[2] is None else r[2] for r in rows], float),
        measured_at=np.array([np.nan if r[3] is None else r[3] for r in rows], float), now=now,
    )  # fmt: skip


def clocks(conn: psycopg.Connection, *, now: datetime) -> RuleOutput:
    rows = _device_rows(conn, "d.clock_not_set, extract(epoch FROM d.clock_checked_at)::float8")
    if not rows:
        return [], []
    return missing.clock_not_set_output(
        [r[0] for r in rows], [r[1] for r in rows], clock_not_set=np.array([bool(r[2]) for r in rows]),
        measured_at=np.array([np.nan if r[3] is None else r[3] for r in rows], float), now=now,
    )  # fmt: skip
