"""`hemma bench charts`: how long the record's 30-day chart takes with 1,000 patients' history stored.

Seeds a scratch database (benchmarks.ingest's): `--patients` patients with `--days` of spot checks
(blood pressure, temperature, pulse, weight, 6 a day), and `--streaming` of them streaming SpO2 and pulse
once a minute, written with INSERT … SELECT generate_series (not the ingest path: this measures reading),
then `storage.rollups.rebuild` as `hemma rollups rebuild` would. Then, for streaming patients:

* the whole 30-day SpO2 chart as the API answers it (dashboard.record_charts.fetch_chart: rollup series,
  limits, markers), and the 30-day NEWS2 track;
* the series alone from the rollups, and the same series computed from the raw observations (the
  baseline: what the chart would cost without rollups).

Prints p50/p95 of each. The goal (issue 11): under 200 ms for the 30-day chart.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from contextlib import ExitStack
from typing import Any

import psycopg

from benchmarks.ingest import _scratch_database
from core.settings import Settings
from dashboard.record_charts import fetch_chart
from storage import rollups

GOAL_MS = 200.0
_RAW_SERIES = (
    "SELECT date_bin('1 hour', time, timestamptz 'epoch') AS bucket, count(*), min(value), max(value),"
    " avg(value), (array_agg(value ORDER BY time DESC))[1], bool_or(quality <> '{}') FROM observations"
    " WHERE patient_id = %s AND vital = 'spo2' AND time >= now() - interval '30 days' GROUP BY 1 ORDER BY 1"
)
_ROLLUP_SERIES = (
    "SELECT bucket, n, min_value, max_value, sum_value / n, last_value, flagged FROM observation_rollups"
    " WHERE patient_id = %s AND vital = 'spo2' AND width_s = 3600 AND bucket >= now() - interval '30 days'"
    " ORDER BY bucket"
)


def run(settings: Settings, *, patients: int, streaming: int, days: int, repeats: int) -> int:
    with ExitStack() as stack:
        url, label = _scratch_database(settings, stack)
        print(f"Hemma chart benchmark: {patients} patients ({streaming} streaming), {days} days, {label}")
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            stream_ids = _seed(conn, patients=patients, streaming=streaming, days=days)
            rows = conn.execute("SELECT count(*) FROM observations").fetchone()[0]  # type: ignore[index]
            seeded = time.perf_counter() - started
            started = time.perf_counter()
            buckets = rollups.rebuild(conn)
            conn.execute("ANALYZE observations")
            conn.execute("ANALYZE observation_rollups")
            print(f"  seeded {rows:,} observations in {seeded:.1f} s; rollups rebuilt ({buckets:,} buckets)"
                  f" in {time.perf_counter() - started:.1f} s")  # fmt: skip
            raw = _timed(lambda pid: conn.execute(_RAW_SERIES, (pid,)).fetchall(), stream_ids, repeats)
            series = _timed(lambda pid: conn.execute(_ROLLUP_SERIES, (pid,)).fetchall(), stream_ids, repeats)
        chart, news2 = asyncio.run(_time_charts(url, stream_ids, repeats))
    _print("30-day SpO2 chart, whole answer (rollups)", chart)
    _print("30-day NEWS2 track (rollups)", news2)
    _print("30-day SpO2 series from rollups", series)
    _print("30-day SpO2 series from raw observations (baseline)", raw)
    est = statistics.median(chart) - statistics.median(series) + statistics.median(raw)
    print(f"  the whole chart from raw rows would take about {est:.1f} ms (p50)")
    verdict = "met" if _p(chart, 95) < GOAL_MS else "NOT met"
    print(f"  goal: 30-day chart under {GOAL_MS:.0f} ms at p95: {verdict}")
    return 0


def _seed(conn: psycopg.Connection[Any], *, patients: int, streaming: int, days: int) -> list[Any]:
    conn.execute("INSERT INTO wards (id, name) VALUES ('bench', 'Bänk')")
    ids = [
        r[0]
        for r in conn.execute(
            "INSERT INTO patients (ward_id, display_name, enrolled_at) SELECT 'bench', 'Patient ' || g,"
            " now() - make_interval(days => %s) FROM generate_series(1, %s) g RETURNING id",
            (days + 1, patients),
        ).fetchall()
    ]
    spot = [("systolic_bp", "mm[Hg]", "125 + random() * 20"), ("body_temperature", "Cel", "36.8 + random()"),
            ("pulse_rate", "/min", "65 + random() * 20"), ("body_weight", "kg", "78 + random()")]  # fmt: skip
    for vital, unit, value in spot:
        conn.execute(
            "INSERT INTO observations (time, patient_id, vital, value, unit, measurement_id, gateway_id,"
            " device_id, characteristic, received_at)"
            f" SELECT now() - make_interval(hours => h * 4), p, %s, {value}, %s,"
            " gen_random_uuid(), 'bench', 'dev', '2A35', now() FROM unnest(%s::uuid[]) p,"
            " generate_series(0, %s) h",
            (vital, unit, ids, days * 6),
        )
    streamers = ids[:streaming]
    for vital, unit, value in (
        ("spo2", "%", "92 + random() * 6"),
        ("pulse_rate", "/min", "70 + random() * 15"),
    ):
        conn.execute(
            "INSERT INTO observations (time, patient_id, vital, value, unit, measurement_id, gateway_id,"
            " device_id, characteristic, received_at)"
            f" SELECT now() - make_interval(mins => m), p, %s, {value}, %s,"
            " gen_random_uuid(), 'bench', 'dev', '2A5F', now() FROM unnest(%s::uuid[]) p,"
            " generate_series(1, %s) m",
            (vital, unit, streamers, days * 1440),
        )
    return streamers


def _timed(work: Any, patients: list[Any], repeats: int) -> list[float]:
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        work(patients[i % len(patients)])
        times.append((time.perf_counter() - started) * 1000)
    return times


async def _time_charts(url: str, patients: list[Any], repeats: int) -> tuple[list[float], list[float]]:
    chart, news2 = [], []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for i in range(repeats):
            pid = patients[i % len(patients)]
            started = time.perf_counter()
            answer = await fetch_chart(conn, pid, "spo2", "30d", zoom=None, staff=None)
            chart.append((time.perf_counter() - started) * 1000)
            assert 700 <= len(answer["series"]["t"]) <= 722, len(answer["series"]["t"])
            started = time.perf_counter()
            await fetch_chart(conn, pid, "news2", "30d", zoom=None, staff=None)
            news2.append((time.perf_counter() - started) * 1000)
    return chart, news2


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def _print(what: str, ms: list[float]) -> None:
    print(f"  {what}: p50 {statistics.median(ms):.1f} ms, p95 {_p(ms, 95):.1f} ms ({len(ms)} runs)")
