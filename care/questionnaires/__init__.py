"""Questionnaires (issue 10): symptom check-ins as versioned data, their answers and their schedules.

* `definitions`: the questionnaires, FHIR Questionnaire JSON in `data/`, checked on load;
* `answers`: `answer`, the one command that checks, scores, flags and stores a response (the patient
  app, `hemma questionnaire answer`, the simulator), and what staff read back;
* `schedules`: who answers what at which times (`set_schedule`, `clear_schedule`) and what is due
  today (`due_today`).

The alert rule that judges the answers is alerts.symptoms (and alerts.weight for the combined rule).
"""

from care.questionnaires.answers import (
    Answered,
    AnswerProblem,
    ByPatient,
    BySimulator,
    ByStaff,
    StoredResponse,
    answer,
    recent_responses,
)
from care.questionnaires.definitions import Questionnaire, QuestionnaireError, catalogue, questionnaire
from care.questionnaires.schedules import (
    Schedule,
    Slot,
    SlotState,
    clear_schedule,
    due_today,
    schedules,
    set_schedule,
)

__all__ = [
    "AnswerProblem",
    "Answered",
    "ByPatient",
    "BySimulator",
    "ByStaff",
    "Questionnaire",
    "QuestionnaireError",
    "Schedule",
    "Slot",
    "SlotState",
    "StoredResponse",
    "answer",
    "catalogue",
    "clear_schedule",
    "due_today",
    "questionnaire",
    "recent_responses",
    "schedules",
    "set_schedule",
]
