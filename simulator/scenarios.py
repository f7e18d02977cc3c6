"""Simulated patients' physiology over scenario time, for the demo and for tests.

Pure and seeded: a scenario is a noiseless course (`course(hours)`) plus measurement noise
from its own `random.Random(seed)`, so the same seed gives the same readings. No clock, no
I/O, no numpy. Values come rounded to what a home device reports (whole % and /min, whole
mmHg, 0.1 °C, 0.1 kg).

The courses are illustrations for staff training and testing, not clinical models; the
bands they cross are those of the NEWS2 chart (RCP 2017) so the alert engine has something
to find: SpO2 <= 91 % and systolic <= 90 mmHg score 3, pulse >= 131 /min scores 3, >= 111
scores 2, temperature >= 39.1 °C scores 2.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from datetime import timedelta

from core.vitals import Vital

# Measurement noise (standard deviation) of home devices; truncated at +-2.5 SD so a simulated
# stable patient never produces a reading no real stable patient would.
_NOISE_SD: dict[Vital, float] = {
    Vital.SPO2: 0.7,
    Vital.PULSE_RATE: 2.5,
    Vital.SYSTOLIC_BP: 4.0,
    Vital.DIASTOLIC_BP: 3.0,
    Vital.BODY_TEMPERATURE: 0.1,
    Vital.BODY_WEIGHT: 0.15,
}
_DECIMALS: dict[Vital, int] = {
    Vital.SPO2: 0,
    Vital.PULSE_RATE: 0,
    Vital.SYSTOLIC_BP: 0,
    Vital.DIASTOLIC_BP: 0,
    Vital.MEAN_ARTERIAL_PRESSURE: 0,
    Vital.BODY_TEMPERATURE: 1,
    Vital.BODY_WEIGHT: 1,
}


@dataclass(frozen=True, slots=True)
class Baseline:
    """A patient's usual values, before the scenario's course is applied."""

    spo2: float = 97.0
    pulse: float = 72.0
    systolic: float = 128.0
    diastolic: float = 78.0
    temperature: float = 36.8
    weight: float = 76.0

    @classmethod
    def typical(cls, rng: random.Random) -> Baseline:
        """A plausible healthy-ish adult, varied per patient."""
        return cls(
            spo2=rng.uniform(96.5, 97.5),
            pulse=rng.uniform(62, 80),
            systolic=rng.uniform(118, 138),
            diastolic=rng.uniform(70, 84),
            temperature=rng.uniform(36.6, 36.9),
            weight=rng.uniform(58, 95),
        )


def _smoothstep(x: float) -> float:
    """0 before 0, 1 after 1, an S-curve between: a course that starts and settles gently."""
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


class Scenario:
    """A stable patient: baseline values, a little circadian swing, device noise."""

    name = "stable"
    description = "Stabil: normala värden med naturlig variation"

    def __init__(self, seed: int = 0, baseline: Baseline | None = None) -> None:
        self.seed = seed
        self.baseline = baseline or self.default_baseline(random.Random(f"baseline-{seed}"))
        self._rng = random.Random(seed)

    def default_baseline(self, rng: random.Random) -> Baseline:
        return Baseline.typical(rng)

    def course(self, hours: float) -> dict[Vital, float]:
        """The noiseless values `hours` into the scenario."""
        b = self.baseline
        # Temperature peaks in the evening and BP dips at night; the scenario starts at 08:00.
        day = math.sin(2 * math.pi * (hours + 8 - 11) / 24)
        return {
            Vital.SPO2: b.spo2,
            Vital.PULSE_RATE: b.pulse + 3 * day,
            Vital.SYSTOLIC_BP: b.systolic + 4 * day,
            Vital.DIASTOLIC_BP: b.diastolic + 2 * day,
            Vital.BODY_TEMPERATURE: b.temperature + 0.2 * day,
            Vital.BODY_WEIGHT: b.weight,
        }

    def vitals_at(self, elapsed: timedelta) -> dict[Vital, float]:
        """One set of readings `elapsed` into the scenario: the course plus device noise, rounded."""
        values = self.course(elapsed.total_seconds() / 3600)
        out: dict[Vital, float] = {}
        for vital, value in values.items():
            sd = _NOISE_SD.get(vital, 0.0)
            noisy = value + max(-2.5 * sd, min(2.5 * sd, self._rng.gauss(0.0, sd)))
            out[vital] = noisy
        out[Vital.SPO2] = min(out[Vital.SPO2], 100.0)
        out[Vital.DIASTOLIC_BP] = min(out[Vital.DIASTOLIC_BP], out[Vital.SYSTOLIC_BP] - 15)
        sys_, dia = round(out[Vital.SYSTOLIC_BP]), round(out[Vital.DIASTOLIC_BP])
        out[Vital.MEAN_ARTERIAL_PRESSURE] = dia + (sys_ - dia) / 3
        return {vital: round(value, _DECIMALS[vital]) for vital, value in out.items()}


class InfectionScenario(Scenario):
    """Sepsis-like deterioration over about 12 hours (e.g. pyelonephritis failing oral antibiotics)."""

    name = "infection"
    description = "Infektion som försämras: feber, takykardi, sjunkande saturation och blodtryck"
    onset_h = 1.0
    full_h = 12.0

    def course(self, hours: float) -> dict[Vital, float]:
        values = super().course(hours)
        b = self.baseline
        p = _smoothstep((hours - self.onset_h) / (self.full_h - self.onset_h))
        values[Vital.BODY_TEMPERATURE] += p * (39.5 - b.temperature)
        values[Vital.PULSE_RATE] += p * (125 - b.pulse)
        values[Vital.SPO2] += p * (89 - b.spo2)
        values[Vital.SYSTOLIC_BP] += p * (92 - b.systolic)
        values[Vital.DIASTOLIC_BP] += p * (56 - b.diastolic)
        return values


class HeartFailureScenario(Scenario):
    """Worsening heart failure: fluid retention of ~0.8 kg a day, slowly falling SpO2, rising pulse.

    The demo's story: Oskar, 83, whose ankles swell a little more each day before he is short of breath.
    """

    name = "heart_failure"
    description = "Hjärtsvikt som försämras: viktuppgång ~0,8 kg/dygn, stigande puls, sjunkande saturation"
    weight_gain_kg_per_day = 0.8
    max_gain_days = 10.0

    def default_baseline(self, rng: random.Random) -> Baseline:
        return replace(
            Baseline.typical(rng),
            spo2=rng.uniform(95.0, 96.0),
            pulse=rng.uniform(70, 76),
            weight=rng.uniform(78, 86),
        )

    def course(self, hours: float) -> dict[Vital, float]:
        values = super().course(hours)
        days = min(max(hours / 24, 0.0), self.max_gain_days)
        values[Vital.BODY_WEIGHT] += self.weight_gain_kg_per_day * days
        worse = _smoothstep(days / 6)  # most of the slide over the first six days
        values[Vital.SPO2] -= 4.5 * worse
        values[Vital.PULSE_RATE] += 20 * worse
        values[Vital.SYSTOLIC_BP] -= 8 * worse
        return values


class CopdScenario(Scenario):
    """Stable COPD with chronic hypoxaemia: SpO2 88-92 % is this patient's target (NEWS2 scale 2)."""

    name = "copd"
    description = "KOL: kroniskt låg saturation 88-92 %, i övrigt stabil"

    def default_baseline(self, rng: random.Random) -> Baseline:
        return replace(Baseline.typical(rng), spo2=rng.uniform(89.5, 90.5), pulse=rng.uniform(80, 88))

    def vitals_at(self, elapsed: timedelta) -> dict[Vital, float]:
        values = super().vitals_at(elapsed)
        values[Vital.SPO2] = min(max(values[Vital.SPO2], 88.0), 92.0)
        return values


SCENARIOS: dict[str, type[Scenario]] = {
    cls.name: cls for cls in (Scenario, InfectionScenario, HeartFailureScenario, CopdScenario)
}


def make_scenario(name: str, *, seed: int = 0, baseline: Baseline | None = None) -> Scenario:
    try:
        cls = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}") from None
    return cls(seed=seed, baseline=baseline)
