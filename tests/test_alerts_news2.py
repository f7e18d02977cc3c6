"""NEWS2 against the RCP 2017 chart: every band edge, scale 2, ACVPU, rounding, risk, missing data."""

from __future__ import annotations

import dataclasses
import math
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import news2
from alerts.model import Priority
from alerts.news2 import MISSING, FreshnessWindows, News2Latest, Risk, Timed, score, score_one

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
# A patient scoring 0 on every parameter; each golden case changes one parameter.
NORMAL = {
    "resp_rate": 16.0,
    "spo2": 97.0,
    "systolic_bp": 120.0,
    "pulse": 70.0,
    "temperature": 37.0,
    "consciousness": "A",
    "on_oxygen": False,
    "spo2_scale": 1,
}
INDEX = {p: i for i, p in enumerate(news2.News2Result.PARAMETERS)}


def vector_one(**params: object) -> news2.News2One:
    """The vectorized kernel on a single patient."""
    p = {**NORMAL, **params}
    o2 = p["on_oxygen"]
    result = score(
        np.array([p["resp_rate"]], dtype=float),
        np.array([p["spo2"]], dtype=float),
        np.array([p["systolic_bp"]], dtype=float),
        np.array([p["pulse"]], dtype=float),
        np.array([p["temperature"]], dtype=float),
        np.array([p["consciousness"]], dtype=object),
        np.array([math.nan if o2 is None else float(o2)]),
        np.array([p["spo2_scale"]]),
    )
    return result.one(0)


def both(**params: object) -> news2.News2One:
    """Score one patient with both kernels; they must agree exactly."""
    vec = vector_one(**params)
    scalar = score_one(**{**NORMAL, **params})  # type: ignore[arg-type]
    assert vec == scalar
    return vec


# --- chart 1, band by band --------------------------------------------------------------------

BAND_EDGES = {
    "resp_rate": [(4, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (60, 3)],
    "systolic_bp": [(60, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)],
    "pulse": [(30, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2),
              (131, 3), (200, 3)],
    "temperature": [(34.0, 3), (35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1),
                    (39.1, 2), (41.0, 2)],
}  # fmt: skip
SPO2_SCALE_1 = [(80, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)]
SPO2_SCALE_2_AIR = [(80, 3), (83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0), (93, 0), (97, 0),
                    (100, 0)]  # fmt: skip
SPO2_SCALE_2_OXYGEN = [(80, 3), (83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0), (93, 1),
                       (94, 1), (95, 2), (96, 2), (97, 3), (100, 3)]  # fmt: skip


@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [(p, v, s) for p, cases in BAND_EDGES.items() for v, s in cases],
)
def test_band_edges(parameter: str, value: float, expected: int) -> None:
    result = both(**{parameter: value})
    assert result.scores[INDEX[parameter]] == expected
    assert result.total == expected


@pytest.mark.parametrize("on_oxygen", [False, True])
@pytest.mark.parametrize(("value", "expected"), SPO2_SCALE_1)
def test_spo2_scale_1_ignores_oxygen(value: int, expected: int, on_oxygen: bool) -> None:
    result = both(spo2=value, on_oxygen=on_oxygen)
    assert result.scores[INDEX["spo2"]] == expected
    assert result.scores[INDEX["air_or_oxygen"]] == (2 if on_oxygen else 0)


@pytest.mark.parametrize(("value", "expected"), SPO2_SCALE_2_AIR)
def test_spo2_scale_2_on_air(value: int, expected: int) -> None:
    result = both(spo2=value, spo2_scale=2, on_oxygen=False)
    assert result.scores[INDEX["spo2"]] == expected
    assert result.total == expected


@pytest.mark.parametrize(("value", "expected"), SPO2_SCALE_2_OXYGEN)
def test_spo2_scale_2_on_oxygen(value: int, expected: int) -> None:
    result = both(spo2=value, spo2_scale=2, on_oxygen=True)
    assert result.scores[INDEX["spo2"]] == expected
    assert result.total == expected + 2  # "Air or oxygen?": oxygen scores 2 on both scales


def test_scale_2_above_92_needs_the_oxygen_record_but_below_does_not() -> None:
    unknown_high = both(spo2=95, spo2_scale=2, on_oxygen=None)
    assert unknown_high.scores[INDEX["spo2"]] is None
    assert unknown_high.total is None
    unknown_low = both(spo2=86, spo2_scale=2, on_oxygen=None)
    assert unknown_low.scores[INDEX["spo2"]] == 1
    assert unknown_low.scores[INDEX["air_or_oxygen"]] is None
    assert unknown_low.partial_total == 1
    # Scale 1 never needs it for the saturation score.
    assert both(spo2=95, on_oxygen=None).scores[INDEX["spo2"]] == 1


@pytest.mark.parametrize(("letter", "expected"), [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3)])
def test_every_acvpu_letter(letter: str, expected: int) -> None:
    result = both(consciousness=letter)
    assert result.scores[INDEX["consciousness"]] == expected
    assert result.risk == (Risk.LOW_MEDIUM if expected == 3 else Risk.LOW)


def test_the_maximum_is_20() -> None:
    worst = both(resp_rate=30, spo2=85, on_oxygen=True, systolic_bp=80, pulse=140, consciousness="U",
                 temperature=34.5)  # fmt: skip
    assert worst.scores == (3, 3, 2, 3, 3, 3, 3)
    assert worst.total == 20
    assert worst.risk == Risk.HIGH


# --- rounding: half up at the chart's resolution ----------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [
        # 36.05 → 36.1 scores 0. Banker's rounding (and np.round on the binary 36.0499…) gives 36.0 → 1.
        ("temperature", 36.05, 0),
        ("temperature", 36.04, 1),
        ("temperature", 36.0499, 1),
        ("temperature", 35.05, 1),  # → 35.1, not 35.0 (3)
        ("temperature", 35.0499, 3),
        ("temperature", 38.05, 1),  # → 38.1
        ("temperature", 38.0499, 0),
        ("temperature", 39.05, 2),  # → 39.1
        ("pulse", 90.5, 1),  # → 91; banker's gives 90 (0)
        ("pulse", 90.49, 0),
        ("systolic_bp", 100.5, 1),  # → 101; banker's gives 100 (2)
        ("resp_rate", 20.5, 2),  # → 21; banker's gives 20 (0)
        ("resp_rate", 8.5, 1),  # → 9; banker's gives 8 (3)
        ("spo2", 95.5, 0),  # → 96
        ("spo2", 95.49, 1),
    ],
)
def test_rounding_is_half_up_before_banding(parameter: str, value: float, expected: int) -> None:
    assert both(**{parameter: value}).scores[INDEX[parameter]] == expected


def test_half_up_differs_from_bankers_rounding_where_it_matters() -> None:
    assert round(90.5) == 90 and np.round(36.05, 1) == 36.0  # what we deliberately do not do
    assert both(pulse=90.5).total == 1
    assert both(temperature=36.05).total == 0


# --- chart 2: risk ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "total", "risk"),
    [
        ({}, 0, Risk.LOW),
        ({"resp_rate": 21, "systolic_bp": 101, "pulse": 91}, 4, Risk.LOW),
        ({"resp_rate": 21, "systolic_bp": 101, "pulse": 91, "temperature": 38.1}, 5, Risk.MEDIUM),
        ({"resp_rate": 21, "spo2": 92, "pulse": 91, "temperature": 38.1}, 6, Risk.MEDIUM),
        ({"resp_rate": 21, "spo2": 92, "pulse": 91, "temperature": 38.1, "systolic_bp": 101}, 7, Risk.HIGH),
        ({"consciousness": "C"}, 3, Risk.LOW_MEDIUM),
        ({"consciousness": "C", "pulse": 91}, 4, Risk.LOW_MEDIUM),
        ({"consciousness": "C", "resp_rate": 21}, 5, Risk.MEDIUM),
        ({"consciousness": "C", "resp_rate": 21, "spo2": 92}, 7, Risk.HIGH),
        ({"systolic_bp": 220}, 3, Risk.LOW_MEDIUM),
        ({"on_oxygen": True, "pulse": 91}, 3, Risk.LOW),  # 3 points but no single red 3
    ],
)
def test_risk_boundaries(params: dict[str, object], total: int, risk: Risk) -> None:
    result = both(**params)
    assert (result.total, result.risk, result.risk_floor) == (total, risk, risk)


def test_risk_labels() -> None:
    assert [r.label for r in Risk] == ["low", "low-medium", "medium", "high"]
    assert news2.RISK_LABELS[Risk.LOW_MEDIUM] == "low-medium"


# --- missing is never 0 -----------------------------------------------------------------------


def test_missing_parameter_makes_the_set_incomplete_not_zero() -> None:
    result = both(resp_rate=math.nan, pulse=91)
    assert result.scores[INDEX["resp_rate"]] is None
    assert (result.partial_total, result.total, result.risk, result.risk_floor) == (1, None, None, Risk.LOW)


@pytest.mark.parametrize("missing", [None, ""])
def test_missing_consciousness(missing: str | None) -> None:
    result = both(consciousness=missing)
    assert result.scores[INDEX["consciousness"]] is None
    assert result.total is None


def test_partial_total_can_already_be_high() -> None:
    result = both(temperature=math.nan, resp_rate=25, spo2=91, systolic_bp=90)
    assert (result.partial_total, result.total, result.risk, result.risk_floor) == (9, None, None, Risk.HIGH)


def test_vectorized_arrays_encode_missing_as_minus_one() -> None:
    consciousness = np.array(["A", ""])
    r = score([np.nan, 16], [97, 97], [120, 120], [70, 70], [37, 37], consciousness, [0, np.nan], [1, 1])
    assert r.resp_rate.tolist() == [MISSING, 0]
    assert r.consciousness.tolist() == [0, MISSING]
    assert r.air_or_oxygen.tolist() == [0, MISSING]
    assert r.incomplete.tolist() == [True, True]
    assert r.total.tolist() == [MISSING, MISSING]
    assert r.risk.tolist() == [MISSING, MISSING]
    assert r.partial_total.dtype == np.int8


@pytest.mark.parametrize(
    ("field", "bad", "message"),
    [
        ("consciousness", "X", "not one of"),
        ("consciousness", "Alert", "not one of"),  # one letter, not a word that starts with one
        ("on_oxygen", 2.0, "on_oxygen"),
        ("spo2_scale", 3, "scales 1 and 2"),
    ],
)
def test_bad_inputs_are_refused(field: str, bad: object, message: str) -> None:
    args = {k: np.array([v], dtype=object if k == "consciousness" else None) for k, v in NORMAL.items()}
    args[field] = np.array([bad], dtype=object if field == "consciousness" else None)
    with pytest.raises(ValueError, match=message):
        score(**args)


# --- freshness --------------------------------------------------------------------------------


def _latest(age: timedelta, **overrides: float) -> News2Latest:
    at = np.array([(NOW - age).timestamp()])

    def timed(name: str, value: object) -> Timed:
        return Timed(np.array([overrides.get(name, value)]), at)

    return News2Latest(
        resp_rate=timed("resp_rate", 16.0), spo2=timed("spo2", 97.0), systolic_bp=timed("systolic_bp", 120.0),
        pulse=timed("pulse", 70.0), temperature=timed("temperature", 37.0),
        consciousness=Timed(np.array(["A"], dtype=object), at), on_oxygen=timed("on_oxygen", 0.0),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("age", "missing"),
    [
        (timedelta(hours=3, minutes=59), set()),
        (timedelta(hours=4, minutes=1), {"spo2", "systolic_bp", "pulse", "temperature"}),
        (timedelta(hours=11, minutes=59), {"spo2", "systolic_bp", "pulse", "temperature"}),
        (timedelta(hours=12, minutes=1), set(news2.News2Result.PARAMETERS)),
    ],
)
def test_default_freshness_windows(age: timedelta, missing: set[str]) -> None:
    result = news2.fresh_score(_latest(age), now=NOW).one(0)
    gone = {p for p, s in zip(news2.News2Result.PARAMETERS, result.scores, strict=True) if s is None}
    assert gone == missing
    assert (result.total is None) == bool(missing)


def test_freshness_custom_window_and_never_measured() -> None:
    latest = _latest(timedelta(hours=2), pulse=131.0)
    short = FreshnessWindows(pulse=timedelta(hours=1))
    assert news2.fresh_score(latest, now=NOW).one(0).scores[INDEX["pulse"]] == 3
    assert news2.fresh_score(latest, now=NOW, windows=short).one(0).scores[INDEX["pulse"]] is None
    never = dataclasses.replace(latest, spo2=Timed(np.array([97.0]), np.array([np.nan])))
    assert news2.fresh_score(never, now=NOW).one(0).scores[INDEX["spo2"]] is None


# --- alert requests ---------------------------------------------------------------------------


def test_news2_requests_priorities_and_clears() -> None:
    ids = [uuid.uuid4() for _ in range(5)]
    r = score(
        [25, 16, 16, 21, np.nan],  # high (with the rest), low, low-medium, medium, incomplete
        [91, 97, 97, 92, 91],
        [90, 120, 120, 120, 90],
        [70, 70, 70, 91, 131],
        [37, 37, 37, 38.1, 37],
        np.array(["A", "A", "C", "A", "A"]),
        [0, 0, 0, 0, 0],
        [1, 1, 1, 1, 1],
    )
    requests, clears = news2.news2_requests(r, ids, now=NOW)
    by_patient = {req.patient_id: req for req in requests}
    assert by_patient[ids[0]].priority == Priority.HIGH
    assert by_patient[ids[0]].message == "NEWS2 9: hög risk"
    assert by_patient[ids[2]].priority == Priority.MEDIUM
    assert by_patient[ids[2]].threshold == 3.0
    assert by_patient[ids[3]].priority == Priority.MEDIUM
    assert by_patient[ids[3]].value == 6.0
    assert by_patient[ids[4]].priority == Priority.HIGH  # 3 + 3 + 3 present already: missing can only add
    assert "ofullständig" in by_patient[ids[4]].message
    assert {req.rule for req in requests} == {"news2"}
    assert [c.patient_id for c in clears] == [ids[1]]
    assert clears[0].observed_at == NOW


def test_incomplete_low_neither_raises_nor_clears() -> None:
    r = score([np.nan], [97], [120], [70], [37], np.array(["A"]), [0], [1])
    assert news2.news2_requests(r, [uuid.uuid4()], now=NOW) == ([], [])


# --- the vectorized kernel agrees with the scalar chart transcription ------------------------


def _value(low: int, high: int, tenths: bool = False) -> st.SearchStrategy[float]:
    step = 20 if tenths else 2  # half-way points (x.x5 or x.5) are where rounding bites
    return st.one_of(
        st.just(math.nan),
        st.integers(low * step, high * step).map(lambda k: k / step),
        st.floats(low - 5, high + 5, allow_nan=False),
    )


PATIENT = st.fixed_dictionaries(
    {
        "resp_rate": _value(0, 50),
        "spo2": _value(70, 100),
        "systolic_bp": _value(50, 260),
        "pulse": _value(20, 200),
        "temperature": _value(32, 43, tenths=True),
        "consciousness": st.sampled_from(["A", "C", "V", "P", "U", "", None]),
        "on_oxygen": st.sampled_from([True, False, None]),
        "spo2_scale": st.sampled_from([1, 2]),
    }
)


@settings(max_examples=150, deadline=None)
@given(st.lists(PATIENT, min_size=1, max_size=40))
def test_vectorized_agrees_with_scalar(patients: list[dict[str, object]]) -> None:
    def column(name: str) -> np.ndarray:
        return np.array([p[name] for p in patients], dtype=float)

    oxygen = np.array([math.nan if p["on_oxygen"] is None else float(p["on_oxygen"]) for p in patients])  # type: ignore[arg-type]
    letters = [p["consciousness"] for p in patients]
    for consciousness in (np.array(letters, dtype=object), np.array([c or "" for c in letters], dtype="U1")):
        result = score(
            column("resp_rate"), column("spo2"), column("systolic_bp"), column("pulse"),
            column("temperature"), consciousness, oxygen, np.array([p["spo2_scale"] for p in patients]),
        )  # fmt: skip
        for i, p in enumerate(patients):
            assert result.one(i) == score_one(**p)  # type: ignore[arg-type]
        assert np.all(result.total[~result.incomplete] <= 20)
        assert np.array_equal(result.risk_floor >= Risk.LOW, np.ones(len(patients), bool))
