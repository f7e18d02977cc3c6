"""Alarm `symptoms:<questionnaire>`: what the patient reported in a questionnaire (issue 10).

A questionnaire's answer options may carry a flag with a priority (care/questionnaires/data, the Hemma
extension `alert-flag`: "Mycket mer andfådd" is `breathless-worse`, medium; "Ja, jag har svimmat" is
`fainted`, high). Per patient and questionnaire, the newest response within `SYMPTOM_WINDOW` (36 h: a
daily check, and half a day's grace for a late one) decides:

* it fires at the highest priority among the flags of that response, worded "Patienten rapporterar:
  mycket mer andfådd, yrsel" (alerts.messages_sv);
* it clears when the newest response carries no flag, or when there is none within the window.

Through the same lifecycle and store as every device alert (alerts.store): a high symptom latches
until acknowledged and escalates like any high alert; a low one waits its hold.

The combined rule (alerts.weight.weight_gain_with_breathlessness, the one decision): while the weight
rule is met and the heart-failure check reported more breathlessness, that answer (with its other
flags: swollen ankles, sleeping propped up, the same story of fluid) is the high `weight_gain_3d`
alert's fact, and this rule raises nothing for it. Other questionnaires' flags still count.

Two registry entries share this kernel: `SymptomsRule` with each batch (new answers, claimed by the
engine's timer like manual observations, and new weights, which can make a flag part of the weight
alert or, when the gain is gone, its own again), and `SymptomsExpiryRule` on the timer, which only ends
alerts (a response aged out of the window). The timer never raises one: an alert staff resolved is not
raised again from the same answer every tick.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from alerts.facts import SymptomsReported
from alerts.inputs import Patients, SymptomReports, SymptomReportsRequest
from alerts.model import Priority, RuleOutput
from alerts.requests import output_from_masks
from alerts.rule import OnTheTimer, RuleFamily, Scope, WithEachBatch
from alerts.weight import (
    BREATHLESS_FLAG,
    HF_CHECK,
    WEIGHT_WINDOW,
    WEIGHT_WINDOW_SLACK,
    weight_gain,
    weight_gain_with_breathlessness,
    weight_gain_with_breathlessness_one,
)
from core.contract import MAX_CLOCK_SKEW
from core.vitals import Vital

SYMPTOM_WINDOW = timedelta(hours=36)
_WEIGHT_WINDOW = WEIGHT_WINDOW + WEIGHT_WINDOW_SLACK


@dataclass(frozen=True, slots=True)
class Judged:
    """Per row of SymptomReports: the priority to raise (0: none) and the flags that count."""

    priority: np.ndarray  # int Priority value per row, 0 = clear
    counted: np.ndarray  # [rows, flags] bool: the flags this rule raises (not the weight alert's)


def judge_symptoms(reports: SymptomReports, *, now: datetime) -> Judged:
    """The vectorised kernel: every row's priority from its newest response's flags."""
    rows = len(reports.patients)
    if rows == 0:
        return Judged(np.zeros(0, np.int64), np.zeros((0, 0), bool))
    recent = reports.authored_at >= now.timestamp() - SYMPTOM_WINDOW.total_seconds()  # NaN: False
    present = (reports.flag >= 0) & recent[:, None]
    breathless_code = reports.codes.index(BREATHLESS_FLAG) if BREATHLESS_FLAG in reports.codes else -2
    hf = np.array([q == HF_CHECK for q in reports.questionnaires], bool)
    reports_breathless = hf & (present & (reports.flag == breathless_code)).any(axis=1)
    wg = weight_gain(reports.weights.values, reports.weights.times, now=now + MAX_CLOCK_SKEW)
    both = weight_gain_with_breathlessness(
        wg.gain[reports.weight_row],
        wg.newest_at[reports.weight_row],
        np.where(reports_breathless, reports.authored_at, np.nan),
    )
    counted = present & ~both[:, None]  # the answer is the weight alert's fact: all of it
    priority = np.where(counted, reports.priority, 0).max(axis=1, initial=0)
    return Judged(priority.astype(np.int64), counted)


def symptoms_output(reports: SymptomReports, *, now: datetime, raise_alerts: bool = True) -> RuleOutput:
    """Requests for rows with a counted flag (unless `raise_alerts` is False: the timer only ends
    alerts), clears for the others. A clear is stamped `now`, newer than the answer it ends."""
    judged = judge_symptoms(reports, now=now)
    fire = judged.priority > 0
    known = ~fire if not raise_alerts else np.ones(fire.shape, bool)
    if not raise_alerts:
        fire = np.zeros(fire.shape, bool)
    observed_at = np.where(fire, reports.authored_at, now.timestamp())

    def facts(i: int) -> SymptomsReported:
        codes = tuple(
            reports.codes[c] for c, on in zip(reports.flag[i], judged.counted[i], strict=True) if on
        )
        return SymptomsReported(reports.questionnaires[i], codes)

    requests, clears = [], []
    for questionnaire in sorted(set(reports.questionnaires)):  # one rule key per questionnaire
        rows = np.array([q == questionnaire for q in reports.questionnaires], bool)
        got, gone = output_from_masks(
            patient_ids=reports.patients, rule=RuleFamily.SYMPTOMS.key(questionnaire), vital=None,
            priority=np.maximum(judged.priority, int(Priority.LOW)), fire=fire & rows, known=known & rows,
            value=np.full(fire.shape, np.nan), threshold=np.nan, observed_at=observed_at, facts=facts,
            now=now,
        )  # fmt: skip
        requests += got
        clears += gone
    return requests, clears


def _weighed_or_answered(scope: Scope) -> Patients:
    return tuple(sorted(scope.answering() | set(scope.touched.get(Vital.BODY_WEIGHT, ()))))


@dataclass(frozen=True, slots=True)
class SymptomsRule(WithEachBatch):
    """The patients who just answered a questionnaire or sent a weight (the combined rule)."""

    family: RuleFamily = RuleFamily.SYMPTOMS

    def request(self, scope: Scope) -> SymptomReportsRequest | None:
        patients = _weighed_or_answered(scope)
        return SymptomReportsRequest(patients, SYMPTOM_WINDOW, _WEIGHT_WINDOW) if patients else None

    def evaluate(self, inputs: SymptomReports, now: datetime) -> RuleOutput:
        return symptoms_output(inputs, now=now)


@dataclass(frozen=True, slots=True)
class SymptomsExpiryRule(OnTheTimer):
    """Every live symptoms alert, each tick: ended when its newest response aged out of the window."""

    family: RuleFamily = RuleFamily.SYMPTOMS

    def request(self, scope: Scope) -> SymptomReportsRequest | None:
        return SymptomReportsRequest(None, SYMPTOM_WINDOW, _WEIGHT_WINDOW) if scope.in_care else None

    def evaluate(self, inputs: SymptomReports, now: datetime) -> RuleOutput:
        return symptoms_output(inputs, now=now, raise_alerts=False)


# --- scalar twin, used only in tests: "clear" or the priority to raise -----------------------------------


def symptoms_one(
    questionnaire: str,
    authored_at: float | None,
    flags: Sequence[tuple[str, Priority]],
    *,
    weight_gain_kg: float | None,
    weighed_at: float,
    now_s: float,
) -> tuple[Priority | str, tuple[str, ...]]:
    """One row: ("clear", ()) or (the priority, the flags that count)."""
    if authored_at is None or math.isnan(authored_at) or authored_at < now_s - SYMPTOM_WINDOW.total_seconds():
        return "clear", ()
    breathless = questionnaire == HF_CHECK and any(code == BREATHLESS_FLAG for code, _ in flags)
    both = weight_gain_with_breathlessness_one(
        weight_gain_kg, weighed_at, authored_at if breathless else None
    )
    counted = [] if both else list(flags)
    if not counted:
        return "clear", ()
    return max(p for _, p in counted), tuple(code for code, _ in counted)
