"""`python -m benchmarks.alerts`: one alert-engine tick, vectorized against per-patient Python loops.

One tick is one minute of data, worst case: every (patient, vital) window receives a sample, slots
close as time passes, and then for every patient and vital: the least-squares slope of its window,
the persistence filter and hysteresis for one threshold, and NEWS2 on the latest values (freshness-
masked). Building AlertRequest objects for the few firing rows is left out: its cost follows the
number of alerts, not of patients.

Windows are `alerts.running.SlotWindows` (running sums over time slots, per vital). The scalar loops
run on a subset of patients over the same data and state and are extrapolated linearly to n: "same
algorithm" is `SlotWindowOne` (the same running sums per patient in plain Python); "scalar twins"
fits each window's points with `alerts.trends.slope_one`, O(window) per patient. Both use the NEWS2
and persistence scalar twins. The subset's slopes, alarm states and NEWS2 are cross-checked against
the vectorized tick; a mismatch is printed and makes `run` return 1.

A full pass over every ring on every tick instead of running sums is bound by memory bandwidth
(PERFORMANCE-NOTES: ~30 ms at 100k x 8 x 256 for the slope alone) and a per-patient ring costs a
random access per patient and sample (~20 ms per 800k on this machine), hence the slotted design.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import numpy as np

from alerts import allocator, news2
from alerts import persistence as ps
from alerts.news2 import News2Latest, Timed
from alerts.persistence import ABOVE, BELOW, BreachRuns, RunOne
from alerts.running import SlotWindowOne, SlotWindows
from alerts.trends import slope_one
from core.vitals import Vital

# One tick is one minute of data: every (patient, vital) window gets one sample (continuous streams
# decimated to one a minute; spot checks come far less often), and slots close as time passes.
INTERVAL = 60.0
MIN_SAMPLES = 3
# (vital, typical value, noise SD, window hours, alarm limit, direction). The first five feed NEWS2.
PROFILE = (
    (Vital.SPO2, 96.0, 1.0, 6, 92.0, BELOW),
    (Vital.PULSE_RATE, 75.0, 4.0, 24, 130.0, ABOVE),
    (Vital.SYSTOLIC_BP, 130.0, 8.0, 12, 91.0, BELOW),
    (Vital.BODY_TEMPERATURE, 37.0, 0.3, 12, 39.05, ABOVE),
    (Vital.RESPIRATORY_RATE, 16.0, 2.0, 12, 24.0, ABOVE),
    (Vital.DIASTOLIC_BP, 80.0, 5.0, 12, 40.0, BELOW),
    (Vital.BODY_WEIGHT, 80.0, 0.3, 72, 400.0, ABOVE),
    (Vital.HEART_RATE, 75.0, 4.0, 6, 130.0, ABOVE),
    (Vital.MEAN_ARTERIAL_PRESSURE, 95.0, 6.0, 12, 60.0, BELOW),
    (Vital.GLUCOSE, 6.0, 1.0, 24, 20.0, ABOVE),
)


@dataclass
class _World:
    """Synthetic patients: the history and every tick's new samples, shared by all engines."""

    patients: int
    vitals: int
    window: int
    t0: float
    history: np.ndarray  # [window, vitals, patients]: one sample per vital per INTERVAL
    ticks: list[tuple[np.ndarray, np.ndarray]]  # (value, doubtful), each [vitals, patients]
    window_h: list[float]
    limit: list[float]  # per vital: one threshold rule each
    sign: list[int]
    margin: list[float]
    readings: list[int]
    duration_s: list[float]
    consciousness: np.ndarray
    on_oxygen: np.ndarray
    manual_at: np.ndarray


def _world(patients: int, vitals: int, window: int, ticks: int, seed: int) -> _World:
    rng = np.random.default_rng(seed)
    profile = PROFILE[:vitals]
    base = np.array([p[1] for p in profile])[:, None]
    sd = np.array([p[2] for p in profile])[:, None]
    t0 = 1_750_000_000.0 - 1_750_000_000.0 % INTERVAL
    continuous = [p[0] in (Vital.SPO2, Vital.PULSE_RATE, Vital.HEART_RATE) for p in profile]
    return _World(
        patients, vitals, window, t0,
        history=base + sd * rng.standard_normal((window, vitals, patients)),
        ticks=[
            (base + sd * rng.standard_normal((vitals, patients)), rng.random((vitals, patients)) < 0.02)
            for _ in range(ticks)
        ],  # 2 % of readings carry a doubtful quality flag
        window_h=[p[3] for p in profile],
        limit=[p[4] for p in profile],
        sign=[p[5] for p in profile],
        margin=[ps.DEFAULT_MARGIN[p[0]] for p in profile],
        readings=[ps.CONTINUOUS.readings if c else 1 for c in continuous],
        duration_s=[ps.CONTINUOUS.duration_s if c else math.inf for c in continuous],
        consciousness=rng.choice(np.array(["A", "A", "A", "C"]), patients),
        on_oxygen=(rng.random(patients) < 0.1).astype(float),
        manual_at=t0 - rng.uniform(0, 14 * 3600, patients),  # some older than 12 h: stale, incomplete
    )  # fmt: skip


def _loaded_windows(w: _World) -> list[SlotWindows]:
    """One SlotWindows per vital, filled with the history by the ordinary push path."""
    start = w.t0 - INTERVAL * w.window
    windows = [SlotWindows(w.patients, timedelta(hours=h), start=start, slots=w.window) for h in w.window_h]
    for j in range(w.window):
        at = start + INTERVAL * (j + 1)
        for v, sw in enumerate(windows):
            sw.push(None, w.history[j, v], np.full(w.patients, at), now=at)
    return windows


class _VectorEngine:
    def __init__(self, w: _World, windows: list[SlotWindows]) -> None:
        self.w, self.windows = w, windows
        self.runs = [BreachRuns.empty(w.patients) for _ in windows]  # one threshold rule per vital
        self.active = [np.zeros(w.patients, bool) for _ in windows]

    def tick(self, k: int) -> tuple[list[np.ndarray], news2.News2Result]:
        w, now = self.w, self.w.t0 + (k + 1) * INTERVAL
        value, doubtful = w.ticks[k]
        at = np.full(w.patients, now)
        slopes = []
        for v, sw in enumerate(self.windows):
            sw.push(None, value[v], at, now=now)
            slopes.append(sw.slope(MIN_SAMPLES).per_hour)
            limit, sign = w.limit[v], w.sign[v]  # one threshold rule per vital
            self.runs[v] = runs = ps.advance_runs(
                self.runs[v], value[v], doubtful[v], at, limit=limit, sign=sign
            )
            persistent = runs.persistent(w.readings[v], w.duration_s[v])
            self.active[v] = ps.alarm_state(
                self.active[v], persistent, value[v], doubtful[v], limit=limit, sign=sign, margin=w.margin[v]
            )
        spo2, pulse, systolic, temperature, resp = (
            Timed(sw.newest_y, sw.newest_t) for sw in self.windows[:5]
        )
        manual = Timed(w.consciousness, w.manual_at)
        score = news2.fresh_score(
            News2Latest(resp_rate=resp, spo2=spo2, systolic_bp=systolic, pulse=pulse, temperature=temperature,
                        consciousness=manual, on_oxygen=Timed(w.on_oxygen, w.manual_at)),
            now=_dt(now),
        )  # fmt: skip
        return slopes, score


_WINDOWS = news2.FreshnessWindows()
_FRESH = [getattr(_WINDOWS, name).total_seconds() for name in ("spo2", "pulse", "systolic_bp", "temperature",
                                                                  "resp_rate")] + [math.inf] * 5  # fmt: skip
_FRESH_MANUAL = _WINDOWS.consciousness.total_seconds()


class _ScalarEngine:
    """Per patient, per vital in plain Python: the same incremental algorithm, or the scalar twins."""

    def __init__(self, w: _World, windows: list[SlotWindows], patients: int, *, twins: bool) -> None:
        self.w, self.patients, self.twins = w, patients, twins
        self.rows = {
            (v, p): SlotWindowOne.copy_of(windows[v], p) for v in range(w.vitals) for p in range(patients)
        }
        self.runs = {key: RunOne() for key in self.rows}
        self.active = dict.fromkeys(self.rows, False)
        self.slopes = dict.fromkeys(self.rows, math.nan)
        self.scores: list[news2.News2One] = []

    def tick(self, k: int) -> None:
        w, now = self.w, self.w.t0 + (k + 1) * INTERVAL
        value, doubtful = w.ticks[k]
        self.scores = []
        for p in range(self.patients):
            latest: list[float | None] = []
            for v in range(w.vitals):
                key = (v, p)
                window, y, bad = self.rows[key], float(value[v, p]), bool(doubtful[v, p])
                window.push(y, now, now=now)
                if self.twins:
                    values, times = window.points()
                    self.slopes[key] = slope_one(values, times, now, math.inf, MIN_SAMPLES)[0]
                else:
                    self.slopes[key] = window.slope(MIN_SAMPLES)
                self.runs[key] = run = ps.advance_run_one(self.runs[key], y, bad, now, w.limit[v], w.sign[v])
                persistent = ps.persistent_one(run, w.readings[v], w.duration_s[v])
                self.active[key] = ps.alarm_state_one(
                    self.active[key], persistent, y, bad, w.limit[v], w.sign[v], w.margin[v]
                )
                latest.append(window.newest_y if now - window.newest_t <= _FRESH[v] else None)
            fresh = now - w.manual_at[p] <= _FRESH_MANUAL
            self.scores.append(
                news2.score_one(
                    latest[4], latest[0], latest[2], latest[1], latest[3],
                    str(w.consciousness[p]) if fresh else None, bool(w.on_oxygen[p]) if fresh else None,
                )
            )  # fmt: skip


def _ms(seconds: float) -> str:
    return "not run" if math.isnan(seconds) else f"{seconds * 1e3:.2f} ms"


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _time(tick: Callable[[int], object], ticks: range) -> tuple[float, object]:
    """Median seconds per tick, and the last tick's result."""
    spent, result = [], None
    for k in ticks:
        start = time.perf_counter()
        result = tick(k)
        spent.append(time.perf_counter() - start)
    return float(np.median(spent)), result


def _mismatch(
    vector: _VectorEngine, slopes: list[np.ndarray], score: news2.News2Result, scalar: _ScalarEngine
) -> str:
    for (v, p), slope in scalar.slopes.items():
        mine = slopes[v][p]
        if not (math.isnan(mine) and math.isnan(slope)) and not math.isclose(
            mine, slope, rel_tol=1e-6, abs_tol=1e-9
        ):
            return f"slope of vital {v}, patient {p}: {mine} vs {slope}"
        if bool(vector.active[v][p]) != scalar.active[(v, p)]:
            return f"alarm state of vital {v}, patient {p}"
    bad = [p for p, s in enumerate(scalar.scores) if score.one(p) != s]
    return f"NEWS2 of patient {bad[0]}" if bad else ""


def run(
    patients: Sequence[int] = (1_000, 10_000, 100_000),
    vitals: int = 8,
    window: int = 256,
    repeat: int = 5,
    *,
    scalar_patients: int = 1_000,
    twin_patients: int = 100,
    tune_malloc: bool = True,
    seed: int = 20250301,
    out: Callable[[str], object] = print,
) -> int:
    """Print the table; return 0, or 1 when the scalar loops and the vectorized tick disagree.

    `tune_malloc` changes this process's glibc malloc settings (`alerts.allocator`) to measure the tick
    with and without them; tests pass False.
    """
    if not 5 <= vitals <= len(PROFILE):
        raise ValueError(f"vitals must be 5..{len(PROFILE)}: the first five feed NEWS2")
    blas = os.environ.get("OPENBLAS_CORETYPE", "-")
    out(f"alert engine tick: {vitals} vitals x {window}-slot windows; one tick = one minute of data,")
    out("  every (patient, vital) window gets a sample (worst case)")
    out(f"numpy {np.__version__}, {os.cpu_count()} CPUs, one thread, OPENBLAS_CORETYPE={blas}")
    out(f"  median of {repeat} ticks after a warm-up tick")
    if tune_malloc:
        out("tick: glibc malloc keeps numpy temporaries in the heap (alerts.allocator, as the engine process")
        out("  should); heap not kept: glibc's 128 KB thresholds pinned, every larger temporary a fresh mmap")
    out(f"scalar loops: measured on min(n, {scalar_patients}) patients (twins: min(n, {twin_patients})),")
    out("  extrapolated linearly to n patients")
    header = (f"{'patients':>9} {'tick':>12} {'heap not kept':>14} {'scalar same-alg':>16} {'ratio':>7}"
              f" {'scalar twins':>13} {'ratio':>7}")  # fmt: skip
    out(header)
    out("-" * len(header))
    status = 0
    for n in patients:
        w = _world(n, vitals, window, repeat + 1, seed)
        windows = _loaded_windows(w)
        same = _ScalarEngine(w, windows, min(n, scalar_patients), twins=False)
        twins = _ScalarEngine(w, windows, min(n, twin_patients), twins=True)
        engine = _VectorEngine(w, windows)
        untuned_s = math.nan
        if tune_malloc:
            untuned = _VectorEngine(w, _loaded_windows(w))
            allocator.restore_glibc_defaults()
            _time(untuned.tick, range(1))
            untuned_s, _ = _time(untuned.tick, range(1, repeat + 1))
            del untuned
            tune_malloc = allocator.keep_numpy_temporaries_in_heap()
        # The scalar engines hold millions of small objects: keep the cyclic garbage collector from
        # scanning them inside a timed tick (it would charge whichever engine happens to be running).
        gc.collect()
        gc.freeze()
        try:
            _time(engine.tick, range(1))
            tick_s, last = _time(engine.tick, range(1, repeat + 1))
            same_s = _time(same.tick, range(repeat + 1))[0] * n / same.patients
            twins_s = _time(twins.tick, range(repeat + 1))[0] * n / twins.patients
        finally:
            gc.unfreeze()
        slopes, score = cast(tuple[list[np.ndarray], news2.News2Result], last)
        problem = _mismatch(engine, slopes, score, same) or _mismatch(engine, slopes, score, twins)
        out(
            f"{n:>9} {tick_s * 1e3:>9.2f} ms {_ms(untuned_s):>14} {same_s * 1e3:>13.0f} ms"
            f" {same_s / tick_s:>6.0f}x {twins_s * 1e3:>10.0f} ms {twins_s / tick_s:>6.0f}x"
            + (f"  MISMATCH: {problem}" if problem else "")
        )
        del engine, windows, w
        status |= bool(problem)
    out("ratio = scalar loop time (extrapolated) / vectorized tick time")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.alerts", description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--vitals", type=int, default=8)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scalar-patients", type=int, default=1_000)
    parser.add_argument("--no-malloc-tuning", action="store_true", help="leave glibc malloc as it is")
    args = parser.parse_args(argv)
    return run(
        args.patients, args.vitals, args.window, args.repeat,
        scalar_patients=args.scalar_patients, tune_malloc=not args.no_malloc_tuning,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
