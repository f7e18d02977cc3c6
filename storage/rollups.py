"""Time-bucketed aggregates of `observations`, so a chart of 30 days of streaming SpO2 reads a few
hundred rows instead of hundreds of thousands (issue 11, "served from rollups, not raw rows").

Per patient, vital, bucket width and bucket: the number of readings, min, max, sum (the mean is
sum / n), the newest reading's value and time, and whether any reading carried a quality flag.

Two ways to keep them, chosen by what the database has:

* Plain PostgreSQL (migration 0015): the table `observation_rollups`, maintained by ingest in the
  same statement that moves a batch into `observations` (ingest/writer.py) and by a person's counted
  respiration rate (care/observations.py). Only the rows the insert RETURNs feed it, so a redelivered
  message, which adds no observation (observations_identity), never counts twice.
* TimescaleDB (storage.db.enable_timescaledb): continuous aggregates `observation_rollups_<width>`
  with the same columns, refreshed by TimescaleDB itself; ingest then leaves the table alone.
  `rollup_source` tells a reader which one to read.

Buckets start on the UTC epoch (date_bin / time_bucket): a day bucket is a UTC day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True, slots=True)
class BucketWidth:
    seconds: int
    name: str  # the continuous aggregate's suffix and the API's word


# 5 minutes for a day (288 points), an hour for a week or a month (168, 720), a day for a long stay.
WIDTHS: tuple[BucketWidth, ...] = (
    BucketWidth(300, "5min"),
    BucketWidth(3600, "1h"),
    BucketWidth(86400, "1d"),
)
WIDTH_SECONDS: tuple[int, ...] = tuple(w.seconds for w in WIDTHS)
_WIDTH_ARRAY = "ARRAY[" + ",".join(str(s) for s in WIDTH_SECONDS) + "]"

_ROLLUP_COLUMNS = (
    "patient_id, vital, width_s, bucket, n, min_value, max_value, sum_value, last_time, last_value, flagged"
)


def _aggregate(source: str) -> str:
    """SELECT of the rollup rows of every reading in `source` (a table or a CTE with time, patient_id,
    vital, value, quality), one group per patient, vital, width and bucket."""
    return f"""
    SELECT o.patient_id, o.vital, w.width_s,
           date_bin(make_interval(secs => w.width_s), o.time, timestamptz 'epoch') AS bucket,
           count(*), min(o.value), max(o.value), sum(o.value), max(o.time),
           (array_agg(o.value ORDER BY o.time DESC))[1],
           bool_or(cardinality(o.quality) > 0)
    FROM {source} o CROSS JOIN unnest({_WIDTH_ARRAY}) AS w(width_s)
    GROUP BY 1, 2, 3, 4"""


def upsert_from(source: str) -> str:
    """INSERT … ON CONFLICT DO UPDATE adding the readings of `source` to the rollups: set-based, one
    statement per batch. Usable as a data-modifying CTE beside the observations insert."""
    return f"""INSERT INTO observation_rollups AS r ({_ROLLUP_COLUMNS}){_aggregate(source)}
    ON CONFLICT (patient_id, vital, width_s, bucket) DO UPDATE SET
        n = r.n + EXCLUDED.n,
        min_value = LEAST(r.min_value, EXCLUDED.min_value),
        max_value = GREATEST(r.max_value, EXCLUDED.max_value),
        sum_value = r.sum_value + EXCLUDED.sum_value,
        last_value = CASE WHEN EXCLUDED.last_time >= r.last_time
                          THEN EXCLUDED.last_value ELSE r.last_value END,
        last_time = GREATEST(r.last_time, EXCLUDED.last_time),
        flagged = r.flagged OR EXCLUDED.flagged"""


def rebuild(conn: psycopg.Connection[Any], patient_id: Any = None) -> int:
    """Recompute the rollup table from `observations` (all patients, or one); returns the rows written.

    For history stored before migration 0015 ran, or after rows were loaded around ingest. The lock
    makes ingest's upserts wait until this commits, so a batch is counted once: either its readings
    were committed before (and are recomputed here) or its upsert runs after.
    """
    where = "" if patient_id is None else " WHERE patient_id = %(patient)s"
    source = (
        "observations"
        if patient_id is None
        else "(SELECT * FROM observations WHERE patient_id = %(patient)s)"
    )
    params = None if patient_id is None else {"patient": patient_id}
    with conn.transaction():
        conn.execute("LOCK TABLE observation_rollups IN SHARE ROW EXCLUSIVE MODE")
        conn.execute("DELETE FROM observation_rollups" + where, params)
        cur = conn.execute(f"INSERT INTO observation_rollups ({_ROLLUP_COLUMNS}){_aggregate(source)}", params)
        return cur.rowcount


# --- TimescaleDB --------------------------------------------------------------------------------


def continuous_aggregate_name(width: BucketWidth) -> str:
    return f"observation_rollups_{width.name}"


def create_continuous_aggregates(conn: psycopg.Connection[Any]) -> None:
    """One continuous aggregate per width, with the table's columns, real-time (materialized_only =
    false, so the newest minutes show before the policy refreshes them). Called by
    storage.db.enable_timescaledb once observations is a hypertable. Not exercised by the tests: the
    extension cannot be installed on the machines they run on."""
    for width in WIDTHS:
        name = continuous_aggregate_name(width)
        conn.execute(
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name}"
            " WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS"
            f" SELECT patient_id, vital, {width.seconds} AS width_s,"
            f" time_bucket(interval '{width.seconds} seconds', time) AS bucket,"
            " count(*) AS n, min(value) AS min_value, max(value) AS max_value, sum(value) AS sum_value,"
            " max(time) AS last_time, last(value, time) AS last_value,"
            " bool_or(cardinality(quality) > 0) AS flagged"
            " FROM observations GROUP BY patient_id, vital, bucket WITH NO DATA"
        )
        conn.execute(
            "SELECT add_continuous_aggregate_policy(%s, start_offset => NULL,"
            " end_offset => interval '1 minute', schedule_interval => interval '1 minute',"
            " if_not_exists => true)",
            (name,),
        )
        conn.execute("SELECT hemma_grant_to_services(ARRAY[%s])", (name,))


# Parameter: TIMESCALE_MARKER. True when TimescaleDB keeps the rollups (its continuous aggregates exist).
ROLLUP_SOURCE_QUERY = "SELECT to_regclass(%s) IS NOT NULL"
TIMESCALE_MARKER = continuous_aggregate_name(WIDTHS[0])


def source_for(width: BucketWidth, timescale: bool) -> tuple[str, str]:
    """(FROM clause, extra WHERE) for reading one width's buckets: the continuous aggregate when
    TimescaleDB keeps them, else the table's rows of that width."""
    if timescale:
        return continuous_aggregate_name(width), "TRUE"
    return "observation_rollups", f"width_s = {width.seconds}"
