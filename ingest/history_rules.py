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
from alerts.weight import WEIGHT_WINDOW, WEIGHT_WINDOW_SLACK, weight_gain, weight_gain_output
from hemma.contract import MAX_CLOCK_SKEW
from hemma.vitals import Vital

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
    # Readings may be up to MAX_CLOCK_SKEW ahead of the server clock and still be accepted.
    gain = weight_gain(values, times, now=now + MAX_CLOCK_SKEW)
    return weight_gain_output(gain, patients, now=now)
