"""Simulated patients answer their questionnaires (issue 10), so the demo shows the whole loop.

What a simulated patient answers is a pure function of their scenario and scenario time
(`morning_answers`): Oskar, the demo's heart-failure patient (simulator.scenarios.HeartFailureScenario,
~0.8 kg of fluid a day), says his ankles swell a little more from the first day and, once his weight
has climbed more than 2 kg in 3 days, that he is much more short of breath: the morning the weight rule
fires, the answer makes its alert high. The COPD patient answers the COPD diary as usual; everyone
else the "Hur mår du idag?" check-in.

`answer_morning` stores the answers through the one command (care.questionnaires.answer, source
'simulator'), keyed by patient, questionnaire and scenario day: calling it twice for the same simulated
morning stores one response.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.vitals import Vital
from simulator.scenarios import Scenario

if TYPE_CHECKING:
    import psycopg

    from care.questionnaires import Answered

HF_CHECK = "hemma-hf-daily"
COPD_DIARY = "hemma-copd-daily"
WELLBEING = "hemma-wellbeing"
_KEYS = uuid.UUID("6f1c1f8e-3a59-4c61-9a55-2b1a3c0e9d10")  # namespace of the simulated responses' ids


@dataclass(frozen=True, slots=True)
class MorningAnswers:
    questionnaire: str
    answers: dict[str, str]  # linkId -> option code


def questionnaire_for(scenario: Scenario) -> str:
    return {"heart_failure": HF_CHECK, "copd": COPD_DIARY}.get(scenario.name, WELLBEING)


def weight_gain_3d(scenario: Scenario, elapsed: timedelta) -> float:
    """The noiseless weight change over the 3 days before `elapsed` (what the patient feels)."""
    hours = elapsed.total_seconds() / 3600
    return (
        scenario.course(hours)[Vital.BODY_WEIGHT] - scenario.course(max(hours - 72, 0.0))[Vital.BODY_WEIGHT]
    )


def morning_answers(scenario: Scenario, elapsed: timedelta) -> MorningAnswers:
    """Pure: what the simulated patient answers `elapsed` into their scenario."""
    name = questionnaire_for(scenario)
    if name == HF_CHECK:
        gain = weight_gain_3d(scenario, elapsed)
        days = elapsed.total_seconds() / 86400
        return MorningAnswers(
            name,
            {
                "breathless": "much-more" if gain > 2.0 else "slightly-more" if gain > 1.0 else "as-usual",
                "swelling": "much" if gain > 2.0 else "a-little" if days >= 1 else "no",
                "pillows": "yes" if gain > 2.0 else "no",
                "dizziness": "no",
            },
        )
    if name == COPD_DIARY:
        usual = {"breathless": "as-usual", "cough": "as-usual", "sputum-amount": "as-usual"}
        return MorningAnswers(name, usual | {"sputum-colour": "no", "reliever": "no", "activities": "yes"})
    worse = scenario.name == "infection" and elapsed >= timedelta(hours=6)
    return MorningAnswers(name, {"feeling": "worse" if worse else "as-usual"})


def response_key(patient_id: uuid.UUID, questionnaire: str, elapsed: timedelta) -> uuid.UUID:
    """The response id of a simulated morning: the same day's answer is stored once."""
    return uuid.uuid5(_KEYS, f"{patient_id}:{questionnaire}:{elapsed // timedelta(days=1)}")


def answer_morning(
    conn: psycopg.Connection[Any],
    *,
    patient_id: uuid.UUID,
    scenario: Scenario,
    elapsed: timedelta,
    now: datetime | None = None,
) -> Answered:
    """Store this simulated morning's answers (care.questionnaires.answer, source 'simulator')."""
    from care.acting import execute
    from care.questionnaires import BySimulator, answer, questionnaire

    chosen = morning_answers(scenario, elapsed)
    q = questionnaire(chosen.questionnaire)
    assert q is not None, chosen.questionnaire  # shipped with Hemma
    return execute(conn, answer(
        patient_id=patient_id, questionnaire=q.id, version=q.version, answers=chosen.answers,
        response_id=response_key(patient_id, q.id, elapsed), source=BySimulator(), origin=None, now=now,
    ))  # fmt: skip


def answer_all_mornings(
    conn: psycopg.Connection[Any],
    patients: Iterable[tuple[uuid.UUID, Scenario]],
    *,
    elapsed: timedelta,
    now: datetime | None = None,
) -> list[Answered]:
    """Every simulated patient's answers for the morning `elapsed` into the scenario (`hemma demo`
    calls this once per simulated day; a repeat the same day stores nothing new)."""
    return [
        answer_morning(conn, patient_id=patient_id, scenario=scenario, elapsed=elapsed, now=now)
        for patient_id, scenario in patients
    ]
