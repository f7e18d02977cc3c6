"""The chart rollups (storage.rollups): maintained by ingest's batch writer in the statement that stores
the readings, never counting a redelivered reading twice, equal to aggregates computed over the raw rows,
and rebuilt from history by `hemma rollups rebuild`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from care.enrolment import enrol_patient, ensure_ward
from core import contract
from core.vitals import VITALS, Vital
from ingest.directory import Enrolment
from ingest.writer import AcceptedBatch, BatchWriter
from storage import rollups

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


class Ward:
    def __init__(self, conn: psycopg.Connection, unique_id: str) -> None:
        self.conn = conn
        ensure_ward(conn, f"ward-{unique_id}", "Hemsjukvård")
        enrolled = enrol_patient(
            conn, ward_id=f"ward-{unique_id}", display_name="Oskar", gateway_id=f"gw-{unique_id}"
        )
        self.enrolment = Enrolment(enrolled.gateway_id, enrolled.patient_id, enrolled.ward_id)
        self.writer = BatchWriter(conn)

    def batch(self, readings: list[tuple[datetime, Vital, float, tuple[str, ...]]]) -> AcceptedBatch:
        measurements = [
            contract.Measurement(
                id=uuid.uuid4(), device_id="AA:BB:CC:DD:EE:01", characteristic="2A5F", raw="00",
                effective_time=at, received_time=at,
                observations=(contract.Observation(vital=v, value=x, unit=VITALS[v].ucum, quality=q),),
            )
            for at, v, x, q in readings
        ]  # fmt: skip
        decoded = contract.DecodedBatch(uuid.uuid4(), self.enrolment.gateway_id, T0, measurements, [])
        return AcceptedBatch(decoded, self.enrolment)

    def store(self, accepted: AcceptedBatch) -> int:
        return self.writer.commit([accepted], [], [], now=T0 + timedelta(days=2)).observations_stored


@pytest.fixture
def ward(db: psycopg.Connection, unique_id: str) -> Iterator[Ward]:
    yield Ward(db, unique_id)


def _rollups(conn: psycopg.Connection, patient: uuid.UUID) -> list[tuple]:
    return conn.execute(
        "SELECT vital, width_s, bucket, n, min_value, max_value, round(sum_value::numeric, 6), last_time,"
        " last_value, flagged FROM observation_rollups WHERE patient_id = %s ORDER BY 1, 2, 3",
        (patient,),
    ).fetchall()


def _raw_aggregates(conn: psycopg.Connection, patient: uuid.UUID) -> list[tuple]:
    """The same aggregates, computed by a different query over the raw rows (window functions for the
    newest value, not array_agg)."""
    return conn.execute(
        """
        WITH b AS (
            SELECT o.*, w, to_timestamp(floor(extract(epoch FROM o.time) / w) * w) AS bucket
            FROM observations o, unnest(ARRAY[300, 3600, 86400]) w WHERE patient_id = %s
        ), ranked AS (
            SELECT b.*, row_number() OVER (PARTITION BY vital, w, bucket ORDER BY time DESC) AS k FROM b
        )
        SELECT vital, w, bucket, count(*), min(value), max(value), round(sum(value)::numeric, 6), max(time),
               max(value) FILTER (WHERE k = 1), bool_or(quality <> '{}')
        FROM ranked GROUP BY vital, w, bucket ORDER BY 1, 2, 3
        """,
        (patient,),
    ).fetchall()


def test_ingest_keeps_rollups_and_a_redelivered_batch_counts_once(db: psycopg.Connection, ward: Ward) -> None:
    readings = [
        (T0 + timedelta(minutes=1), Vital.SPO2, 95.0, ()),
        (T0 + timedelta(minutes=2), Vital.SPO2, 91.0, ("low_perfusion",)),
        (T0 + timedelta(minutes=4), Vital.SPO2, 97.0, ()),
        (T0 + timedelta(minutes=7), Vital.SPO2, 93.0, ()),
    ]
    accepted = ward.batch(readings)
    assert ward.store(accepted) == 4
    assert ward.store(accepted) == 0  # the same message again: nothing inserted, nothing added
    pid = ward.enrolment.patient_id
    rows = {(r[1], r[2]): r for r in _rollups(db, pid)}
    first_five = rows[(300, T0)]
    assert first_five[3:] == (3, 91.0, 97.0, 283, T0 + timedelta(minutes=4), 97.0, True)
    second_five = rows[(300, T0 + timedelta(minutes=5))]
    assert second_five[3:] == (1, 93.0, 93.0, 93, T0 + timedelta(minutes=7), 93.0, False)
    hour = rows[(3600, T0)]
    assert hour[3:] == (4, 91.0, 97.0, 376, T0 + timedelta(minutes=7), 93.0, True)
    # A later batch with an older reading adds to the bucket but does not become its newest value.
    assert ward.store(ward.batch([(T0 + timedelta(minutes=3), Vital.SPO2, 99.0, ())])) == 1
    hour = {(r[1], r[2]): r for r in _rollups(db, pid)}[(3600, T0)]
    assert hour[3:] == (5, 91.0, 99.0, 475, T0 + timedelta(minutes=7), 93.0, True)
    assert _rollups(db, pid) == _raw_aggregates(db, pid)


# Each example enrols a patient of its own, so sharing the test's database is safe.
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3 * 86400 - 1),  # seconds after T0
            st.sampled_from([Vital.SPO2, Vital.PULSE_RATE]),
            st.floats(60, 100, allow_nan=False).map(lambda x: round(x, 1)),
            st.booleans(),
        ),
        min_size=1,
        max_size=60,
        unique_by=lambda r: (r[0], r[1]),  # one reading per vital and second: "the newest" is one
    ),
    st.integers(1, 4),
)
def test_rollups_equal_numpy_over_the_raw_readings(database_url: str, readings: list, batches: int) -> None:
    """Whatever the readings and however they are split into batches (some redelivered), each bucket
    holds what numpy computes over the distinct readings that fall in it."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        ward = Ward(conn, uuid.uuid4().hex[:8])
        timed = [
            (T0 + timedelta(seconds=s), v, x, ("body_movement",) if q else ()) for s, v, x, q in readings
        ]
        accepted = [ward.batch(timed[i::batches]) for i in range(batches)]
        for a in accepted + accepted[:1]:  # the first one twice
            ward.store(a)
        got = {(r[0], r[1], r[2]): r[3:] for r in _rollups(conn, ward.enrolment.patient_id)}
    want = {}
    for vital in {v for _, v, _, _ in readings}:
        mine = [(s, x, q) for s, v, x, q in readings if v == vital]
        secs = np.array([s for s, _, _ in mine])
        values = np.array([x for _, x, _ in mine])
        flags = np.array([q for _, _, q in mine])
        for width in rollups.WIDTH_SECONDS:
            start = (int(T0.timestamp()) + secs) // width * width
            for b in np.unique(start):
                inside = start == b
                newest = np.flatnonzero(inside)[np.argmax(secs[inside])]
                want[(vital.value, width, datetime.fromtimestamp(int(b), UTC))] = (
                    int(inside.sum()), values[inside].min(), values[inside].max(),
                    round(float(values[inside].sum()), 6), T0 + timedelta(seconds=int(secs[newest])),
                    values[newest], bool(flags[inside].any()),
                )  # fmt: skip
    assert set(got) == set(want)
    for key, (n, lo, hi, total, last_at, last, flagged) in want.items():
        g = got[key]
        assert (g[0], g[1], g[2], g[4], g[5], g[6]) == (n, lo, hi, last_at, last, flagged), key
        assert float(g[3]) == pytest.approx(total)


def test_rebuild_recomputes_history_stored_around_ingest(db: psycopg.Connection, ward: Ward) -> None:
    pid = ward.enrolment.patient_id
    ward.store(ward.batch([(T0 + timedelta(minutes=m), Vital.PULSE_RATE, 70.0 + m, ()) for m in range(30)]))
    stored = _rollups(db, pid)
    # History loaded without ingest (an import, a restore): the rollups do not know it yet.
    db.execute(
        "INSERT INTO observations (time, patient_id, vital, value, unit, measurement_id, gateway_id,"
        " device_id, characteristic, received_at) SELECT %s - make_interval(mins => g), %s, 'pulse_rate',"
        " 60, '/min', gen_random_uuid(), 'gw', 'dev', '2A37', now() FROM generate_series(1, 120) g",
        (T0, pid),
    )
    assert _rollups(db, pid) == stored
    written = rollups.rebuild(db, patient_id=pid)
    assert written == len(_raw_aggregates(db, pid)) > len(stored)
    assert _rollups(db, pid) == _raw_aggregates(db, pid)
    # The whole table, every patient: the same result.
    rollups.rebuild(db)
    assert _rollups(db, pid) == _raw_aggregates(db, pid)
