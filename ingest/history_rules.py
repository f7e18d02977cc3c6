"""Rules that need a patient's history, not only the batch: read the window from the database.

The database is the engine's state here, so there is nothing to rebuild after a restart: the
window is read inside the same transaction as the new readings, and a redelivered message (which
inserts nothing) re-evaluates nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from alerts.model import RuleOutput
from alerts.thresholds import DOUBTFUL_QUALITY
from alerts.weight import (
    WEIGHT_WINDOW,
    WEIGHT_WINDOW_SLACK,
    BaselineChart,
    BaselineSettings,
    baseline_output,
    update_baseline,
    weight_gain,
    weight_gain_output,
)
from core.contract import MAX_CLOCK_SKEW
from core.vitals import Vital

if TYPE_CHECKING:
    import psycopg

# Each patient's weights from the 3 days (plus slack) before their newest weight.
_WEIGHT_WINDOW_SQL = """
WITH newest AS (
    SELECT patient_id, max(time) AS t FROM observations
    WHERE patient_id = ANY(%(patients)s) AND vital = %(vital)s AND NOT quality && %(doubtful)s
    GROUP BY patient_id
)
SELECT o.patient_id, extract(epoch FROM o.time)::float8, o.value
FROM observations o JOIN newest n USING (patient_id)
WHERE o.vital = %(vital)s AND o.time >= n.t - %(window)s AND NOT o.quality && %(doubtful)s
ORDER BY o.patient_id, o.time
"""


def weight_gain_rule(conn: psycopg.Connection, patients: list[uuid.UUID], *, now: datetime) -> RuleOutput:
    """ESC/HFA "more than 2 kg within 3 days" for the patients who just sent a weight."""
    if not patients:
        return [], []
    rows = conn.execute(
        _WEIGHT_WINDOW_SQL,
        {
            "patients": patients,
            "vital": Vital.BODY_WEIGHT.value,
            "doubtful": sorted(DOUBTFUL_QUALITY),
            "window": WEIGHT_WINDOW + WEIGHT_WINDOW_SLACK,
        },
    ).fetchall()
    values, times = padded_rows(rows, patients)
    # Readings may be up to MAX_CLOCK_SKEW ahead of the server clock and still be accepted.
    gain = weight_gain(values, times, now=now + MAX_CLOCK_SKEW)
    return weight_gain_output(gain, patients, now=now)


# Each patient's trustworthy weights since enrolment, oldest first: the EWMA chart is replayed from
# the first weight, so it is the same after a restart as if the engine had never stopped.
_WEIGHT_HISTORY_SQL = """
SELECT o.patient_id, extract(epoch FROM o.time)::float8, o.value
FROM observations o JOIN patients p ON p.id = o.patient_id
WHERE o.patient_id = ANY(%(patients)s) AND o.vital = %(vital)s AND NOT o.quality && %(doubtful)s
  AND o.time >= p.enrolled_at AND o.time <= %(until)s
ORDER BY o.patient_id, o.time
"""


def weight_baseline_rule(
    conn: psycopg.Connection,
    patients: list[uuid.UUID],
    *,
    now: datetime,
    settings: BaselineSettings | None = None,
) -> RuleOutput:
    """ "Weight above the patient's own baseline" (EWMA chart) for the patients who just sent a weight.

    Replayed from the database: a patient weighs once a day, so a quarter's history is ~90 rows, and a
    late weight (store-and-forward) lands in its place in time instead of after the newest.
    """
    if not patients:
        return [], []
    rows = conn.execute(
        _WEIGHT_HISTORY_SQL,
        {
            "patients": patients,
            "vital": Vital.BODY_WEIGHT.value,
            "doubtful": sorted(DOUBTFUL_QUALITY),
            "until": now + MAX_CLOCK_SKEW,
        },
    ).fetchall()
    values, times = padded_rows(rows, patients)
    chart = BaselineChart.empty(len(patients))
    for col in range(values.shape[1]):
        chart = update_baseline(chart, values[:, col], times[:, col], settings)
    newest_at = np.nanmax(np.where(np.isnan(times), -np.inf, times), axis=1, initial=-np.inf)
    newest_at = np.where(np.isfinite(newest_at), newest_at, np.nan)
    return baseline_output(chart, patients, now=now, observed_at=newest_at, settings=settings)


def padded_rows(rows: list[tuple], patients: list[uuid.UUID]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of (patient, epoch s, value), grouped by patient in time order, as NaN-padded [patients, n]."""
    order = {p: i for i, p in enumerate(patients)}
    counts = np.zeros(len(patients), dtype=np.int64)
    for patient_id, _, _ in rows:
        counts[order[patient_id]] += 1
    width = max(1, int(counts.max()))
    values = np.full((len(patients), width), np.nan)
    times = np.full((len(patients), width), np.nan)
    filled = np.zeros(len(patients), dtype=np.int64)
    for patient_id, at, value in rows:
        row = order[patient_id]
        values[row, filled[row]] = value
        times[row, filled[row]] = at
        filled[row] += 1
    return values, times
