"""The record's charts (dashboard.record_charts) against a real PostgreSQL and dashboard: the JSON's
values (series from the rollups, limit bands, markers, the NEWS2 track, the 3-day weight rule), access,
the access-log row, refusals; the pure part's kernels against their scalar twins."""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import psycopg
import pytest

from alerts import news2, weight
from core.settings import Settings
from core.vitals import Vital
from dashboard import chart_model, record_charts
from tests.support.chart_seed import WEIGHTS, ChartWard, seed_chart_ward
from tests.support.dashboard_server import logged_in, running_dashboard
from tests.support.ward_seed import PASSWORD


@pytest.fixture
def ward(db: psycopg.Connection) -> ChartWard:
    return seed_chart_ward(db)


@pytest.fixture
def nurse(database_url: str, ward: ChartWard) -> typing.Iterator[httpx.Client]:
    with (
        running_dashboard(Settings(database_url=database_url)) as base_url,
        logged_in(base_url, "nurse.hjarta", PASSWORD) as client,
    ):
        yield client


def test_the_chart_names_are_every_vital_and_news2() -> None:
    assert set(typing.get_args(record_charts.ChartNames)) == {v.value for v in Vital} | {"news2"}


def test_a_month_of_streaming_spo2_is_hourly_buckets_equal_to_the_raw_rows(
    nurse: httpx.Client, db: psycopg.Connection, ward: ChartWard
) -> None:
    answer = nurse.get(f"/api/patients/{ward.oskar}/charts/spo2", params={"range": "30d"})
    assert answer.status_code == 200
    chart = answer.json()
    series = chart["series"]
    assert (chart["label"], chart["unit"], series["bucket_s"]) == ("Syremättnad", "%", 3600)
    raw = db.execute(
        "SELECT date_bin('1 hour', time, timestamptz 'epoch'), count(*), min(value), max(value), avg(value)"
        " FROM observations WHERE patient_id = %s AND vital = 'spo2' GROUP BY 1 ORDER BY 1",
        (ward.oskar,),
    ).fetchall()
    assert [datetime.fromisoformat(t) for t in series["t"]] == [r[0] for r in raw]
    assert series["n"] == [r[1] for r in raw] and sum(series["n"]) == 2880
    assert series["min"] == [r[2] for r in raw] and series["max"] == [r[3] for r in raw]
    assert series["mean"] == pytest.approx([float(r[4]) for r in raw], abs=1e-3)
    assert min(series["min"]) == 86.0  # the dip
    # The limits in force: the physician's 88 % replaces the ward's high 92 %; the ward's medium 94 % stays.
    assert sorted((lim["priority"], lim["value"], lim["kind"]) for lim in chart["limits"]) == [
        ("high", 88.0, "personal"),
        ("medium", 94.0, "ward"),
    ]
    # The alert opened and was acknowledged; the heart-failure check's answer is on the same axis.
    kinds = [(m["kind"], m.get("alert_id")) for m in chart["markers"]]
    assert kinds == [("opened", ward.alert_id), ("acknowledged", ward.alert_id), ("answer", None)]
    assert chart["markers"][2]["text"].startswith("Svar: ") and "3 poäng" in chart["markers"][2]["text"]
    assert chart["news2"] == [] and chart["weight_rule"] is None
    # A zoom into the dip reads 5-minute buckets of that window only.
    now = datetime.now(UTC)
    zoom = {
        "range": "30d",
        "from": (now - timedelta(hours=6)).isoformat(),
        "to": (now - timedelta(hours=4)).isoformat(),
    }
    zoomed = nurse.get(f"/api/patients/{ward.oskar}/charts/spo2", params=zoom).json()["series"]
    assert zoomed["bucket_s"] == 300 and 24 <= len(zoomed["t"]) <= 25
    assert min(zoomed["min"]) == 86.0 and sum(zoomed["n"]) <= 125


def test_the_weight_chart_shows_the_three_day_rule(nurse: httpx.Client, ward: ChartWard) -> None:
    chart = nurse.get(f"/api/patients/{ward.oskar}/charts/body_weight", params={"range": "30d"}).json()
    rule = chart["weight_rule"]
    assert rule["limit_kg"] == weight.WEIGHT_GAIN_KG == 2.0
    # Each weighing against the lowest of the 3 days before it: the last is 81.2 - 78.4 = 2.8 kg.
    assert rule["gain_kg"][-4:] == [0.4, 1.3, 2.1, 2.8]  # over 2 kg since yesterday
    assert chart["series"]["bucket_s"] == 3600 and chart["series"]["last"][-1] == WEIGHTS[0]
    assert chart["limits"] == []  # no threshold rule on weight


def test_news2_is_its_own_track_complete_and_incomplete_told_apart(
    nurse: httpx.Client, db: psycopg.Connection, ward: ChartWard
) -> None:
    track = nurse.get(f"/api/patients/{ward.oskar}/charts/news2", params={"range": "7d"}).json()["news2"]
    assert len(track) == 7 * 24 + 1 or len(track) == 7 * 24
    by_time = {datetime.fromisoformat(p["t"]): p for p in track}
    now = datetime.now(UTC)
    # Before the nurse's first visit (no respiration rate, no consciousness): a lower bound only.
    early = [p for t, p in by_time.items() if now - timedelta(hours=40) <= t <= now - timedelta(hours=30)]
    assert early and all(not p["complete"] and p["total"] is None for p in early)
    # After it, every point is complete; the last one equals the scalar twin on the newest values.
    last = track[-1]
    assert last["complete"]
    newest = dict(
        db.execute(
            "SELECT DISTINCT ON (vital) vital, value FROM observations WHERE patient_id = %s"
            " ORDER BY vital, time DESC",
            (ward.oskar,),
        ).fetchall()
    )
    expected = news2.score_one(
        newest["respiratory_rate"], newest["spo2"], newest["systolic_bp"], newest["pulse_rate"],
        newest["body_temperature"], "A", False,
    )  # fmt: skip
    assert last["total"] == expected.total


def test_manual_observations_are_markers_on_respiration(nurse: httpx.Client, ward: ChartWard) -> None:
    chart = nurse.get(f"/api/patients/{ward.oskar}/charts/respiratory_rate", params={"range": "24h"}).json()
    manual = [m for m in chart["markers"] if m["kind"] == "manual"]
    assert len(manual) == 4 and {m["value"] for m in manual} == {18.0}
    assert manual[0]["text"] == "Manuell observation (sjuksköterska): AF 18/min, medvetandegrad A, luft"
    assert chart["series"]["bucket_s"] == 300 and sum(chart["series"]["n"]) == 4


def test_each_chart_read_is_in_the_access_log(
    nurse: httpx.Client, db: psycopg.Connection, ward: ChartWard
) -> None:
    nurse.get(f"/api/patients/{ward.oskar}/charts/pulse_rate", params={"range": "stay"})
    rows = db.execute(
        "SELECT username, patient_id, action, context FROM access_log WHERE action = 'view_chart'"
    ).fetchall()
    assert rows == [("nurse.hjarta", ward.oskar, "view_chart", "chart:pulse_rate stay api")]


def test_another_ward_unknown_names_and_bad_ranges_are_refused_without_a_leak(
    nurse: httpx.Client, db: psycopg.Connection, ward: ChartWard
) -> None:
    other = nurse.get(f"/api/patients/{ward.other_ward_patient}/charts/spo2")
    unknown = nurse.get("/api/patients/00000000-0000-4000-8000-000000000000/charts/spo2")
    assert other.status_code == unknown.status_code == 404
    assert other.json() == unknown.json() == {"detail": "Patienten finns inte"}
    bad_range = nurse.get(f"/api/patients/{ward.oskar}/charts/spo2", params={"range": "<script>"})
    assert bad_range.status_code == 422 and "<script>" not in bad_range.text
    assert bad_range.json()["detail"] == "Okänt tidsintervall"
    bad_vital = nurse.get(f"/api/patients/{ward.oskar}/charts/blood_sugar")
    assert bad_vital.status_code == 422 and bad_vital.json()["detail"] == "Okänd mätparameter"
    half_zoom = nurse.get(f"/api/patients/{ward.oskar}/charts/spo2", params={"from": "2025-01-01T00:00:00Z"})
    assert half_zoom.status_code == 422
    bad_time = nurse.get(f"/api/patients/{ward.oskar}/charts/spo2", params={"from": "igår", "to": "idag"})
    assert bad_time.status_code == 422 and "igår" not in bad_time.text
    assert db.execute("SELECT count(*) FROM access_log WHERE action = 'view_chart'").fetchone() == (0,)


def test_the_plotly_library_is_served_from_its_package_with_long_caching(nurse: httpx.Client) -> None:
    from dashboard.vendor_assets import plotly_js_url

    answer = nurse.get(plotly_js_url())
    assert answer.status_code == 200 and answer.text.startswith("/**\n* plotly.js v")
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "style-src 'self'" in answer.headers["content-security-policy"]
    assert nurse.get("/vendor/plotly-0.0.1.min.js").status_code == 404


# --- the pure part against the kernels' scalar twins -----------------------------------------------


def test_weight_rule_track_agrees_with_the_scalar_twin() -> None:
    rng = np.random.default_rng(11)
    times = np.sort(rng.uniform(0, 20 * 86400, 40))
    values = 78 + np.cumsum(rng.normal(0, 0.4, 40))
    shown_from = 5 * 86400.0
    window = (weight.WEIGHT_WINDOW + weight.WEIGHT_WINDOW_SLACK).total_seconds()
    want = []
    for i, t in enumerate(times):
        if t >= shown_from:
            g = weight.weight_gain_one(list(values[: i + 1]), list(times[: i + 1]), float(t), window)
            if g is not None:
                want.append((float(t), g))
    got = chart_model.weight_rule_track(times, values, shown_from)
    assert [t for t, _ in got] == [t for t, _ in want]
    assert [g for _, g in got] == pytest.approx([g for _, g in want])


def test_chart_windows_choose_a_few_hundred_buckets() -> None:
    now = datetime(2025, 3, 3, 12, tzinfo=UTC)
    enrolled = now - timedelta(days=60)
    widths = {
        key: chart_model.chart_window(key, now=now, enrolled_at=enrolled, discharged_at=None).width.seconds
        for key in chart_model.RANGES
    }
    assert widths == {"24h": 300, "7d": 3600, "30d": 3600, "stay": 86400}
    zoomed = chart_model.chart_window(
        "30d",
        now=now,
        enrolled_at=enrolled,
        discharged_at=None,
        zoom=(now - timedelta(days=40), now - timedelta(days=2)),
    )
    assert zoomed.start == now - timedelta(days=30) and zoomed.width.seconds == 3600
