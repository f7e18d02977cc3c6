"""An answered questionnaire: checked against its version, scored, flagged, stored as a FHIR
QuestionnaireResponse, announced like a reading (issue 10).

`answer` is the one command every entry point runs: the patient app (the patient's own device, which
`care.patient_access.patient_acts` lets answer and logs), `hemma questionnaire answer` (staff entering
a telephone interview) and the simulator (the demo's patients). It

1. finds the questionnaire and refuses an answer to another version than the current one (the form
   was opened before the questionnaire changed: its questions may have changed too);
2. checks every answer (`check_answers`): a known linkId, an offered option code, every required
   question answered, free text at most 500 characters without control characters. Refusals name the
   linkId and the problem, never the text;
3. stores the response once per `response_id` (the form's key: a resent form stores nothing new and
   returns the stored one), with its score (the sum of the chosen options' ordinals) and flags, and
   the flags' priorities as this version says;
4. announces the patient's card (`VitalsChanged`). The alert engine's timer claims the response and
   judges it (alerts.symptoms, and alerts.weight for the combined rule), as it does manual
   observations: nothing clinical is decided in the patient's request.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from psycopg.types.json import Jsonb

from alerts.model import Priority
from care.acting import ActingStaff, CareSteps, Origin, audited, in_care, patient_ward, staff_for_patient
from care.patient_access import PatientViewer, patient_acts
from care.permissions import Action, PatientAction
from care.questionnaires.definitions import (
    MAX_FREE_TEXT,
    ItemKind,
    Question,
    Questionnaire,
    catalogue,
    questionnaire,
)
from care.refusals import RefusalCode, Refused
from core.events import VitalsChanged
from storage.steps import Notify, Sql, Steps

# Who may enter a patient's answers given on the telephone: whoever may record an observation.
ENTER_FOR_PATIENT = Action.RECORD_OBSERVATION
# C0 and C1 controls but tab, line feed and carriage return; bidi embeddings, overrides and isolates;
# lone surrogates (the same characters dashboard.inputs refuses in staff text).
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_PLAIN = re.compile(r"^[a-z0-9._-]{1,40}$")
_TRUE, _FALSE = ("true", "ja", "yes"), ("false", "nej", "no")


class AnswerProblem(StrEnum):
    """What is wrong with one answer (RefusalCode.ANSWER_INVALID's `problem`): a stable identifier
    entry points may look a text up by (the patient app marks the question with it)."""

    NO_SUCH_QUESTION = "no_such_question"
    NOT_TEXT = "not_text"
    REQUIRED_MISSING = "required_missing"
    NOT_AN_OPTION = "not_an_option"
    NOT_YES_OR_NO = "not_yes_or_no"
    TOO_LONG = "too_long"
    CHARACTERS = "characters_not_allowed"
    RESPONSE_ID_USED = "response_id_used"


@dataclass(frozen=True, slots=True)
class ByPatient:
    """The patient's own enrolled device (a relative's may not answer: care.permissions)."""

    viewer: PatientViewer
    client_address: str | None = None


@dataclass(frozen=True, slots=True)
class ByStaff:
    """A nurse or physician entering what the patient said on the telephone."""

    username: str


@dataclass(frozen=True, slots=True)
class BySimulator:
    """A simulated patient of `hemma demo` (no person, no access-log row)."""


Answerer = ByPatient | ByStaff | BySimulator
Source = Literal["app", "staff", "simulator"]


@dataclass(frozen=True, slots=True)
class CheckedAnswer:
    """One question's answer as stored: the option chosen, or the text, or the yes/no."""

    question: Question
    code: str | None = None
    text: str | None = None
    boolean: bool | None = None


@dataclass(frozen=True, slots=True)
class Answered:
    id: int
    response_id: uuid.UUID
    patient_id: uuid.UUID
    ward_id: str
    questionnaire: str
    version: str
    authored_at: datetime
    score: int
    flags: tuple[str, ...]
    flag_priorities: tuple[Priority, ...]
    stored: bool  # False: this response_id was stored before (a resent form); nothing changed

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


# --- checking ----------------------------------------------------------------------------------------


def find(questionnaire_id: str) -> Questionnaire:
    found = questionnaire(questionnaire_id) if isinstance(questionnaire_id, str) else None
    if found is None:
        raise Refused(RefusalCode.UNKNOWN_QUESTIONNAIRE, questionnaire=_shown(questionnaire_id))
    return found


def current_version(q: Questionnaire, version: str) -> None:
    if version != q.version:
        raise Refused(RefusalCode.QUESTIONNAIRE_VERSION, questionnaire=q.id, current=q.version,
                      given=_shown(version))  # fmt: skip


def _shown(value: object) -> str:
    """A value from the request, named in a refusal only when it cannot carry anything but an id."""
    text = str(value)
    return text if _PLAIN.fullmatch(text) else "?"


def _invalid(link_id: object, problem: AnswerProblem) -> Refused:
    return Refused(RefusalCode.ANSWER_INVALID, link_id=_shown(link_id), problem=problem)


def check_answers(q: Questionnaire, answers: Mapping[str, str]) -> tuple[CheckedAnswer, ...]:
    """Every answer checked against `q`, in the questionnaire's order. An empty free text or an empty
    choice is no answer (refused only when the question is required)."""
    for link_id in answers:
        if not isinstance(link_id, str) or q.question(link_id) is None:
            raise _invalid(link_id, AnswerProblem.NO_SUCH_QUESTION)
    checked: list[CheckedAnswer] = []
    for question in q.questions:
        given = answers.get(question.link_id)
        if given is not None and not isinstance(given, str):
            raise _invalid(question.link_id, AnswerProblem.NOT_TEXT)
        value = (given or "").strip() if question.free_text else (given or "").strip().lower()
        if not value:
            if question.required:
                raise _invalid(question.link_id, AnswerProblem.REQUIRED_MISSING)
            continue
        checked.append(_checked(question, value))
    return tuple(checked)


def _checked(question: Question, value: str) -> CheckedAnswer:
    match question.kind:
        case ItemKind.CHOICE:
            if question.option(value) is None:
                raise _invalid(question.link_id, AnswerProblem.NOT_AN_OPTION)
            return CheckedAnswer(question, code=value)
        case ItemKind.BOOLEAN:
            if value.lower() not in _TRUE + _FALSE:
                raise _invalid(question.link_id, AnswerProblem.NOT_YES_OR_NO)
            return CheckedAnswer(question, boolean=value.lower() in _TRUE)
    if len(value) > min(question.max_length, MAX_FREE_TEXT):
        raise _invalid(question.link_id, AnswerProblem.TOO_LONG)
    if _FORBIDDEN.search(value) or (question.kind is ItemKind.STRING and "\n" in value):
        raise _invalid(question.link_id, AnswerProblem.CHARACTERS)
    return CheckedAnswer(question, text=value)


def score_and_flags(checked: tuple[CheckedAnswer, ...]) -> tuple[int, tuple[str, ...], tuple[Priority, ...]]:
    """The score (sum of the chosen options' ordinals) and the flags raised, in question order."""
    score, flags, priorities = 0, [], []
    for answer in checked:
        option = answer.question.option(answer.code) if answer.code is not None else None
        if option is None:
            continue
        score += option.ordinal
        if option.flag is not None and option.flag.code not in flags:
            flags.append(option.flag.code)
            priorities.append(option.flag.priority)
    return score, tuple(flags), tuple(priorities)


def fhir_response(
    q: Questionnaire,
    checked: tuple[CheckedAnswer, ...],
    *,
    response_id: uuid.UUID,
    patient_id: uuid.UUID,
    authored_at: datetime,
) -> dict[str, Any]:
    """The FHIR QuestionnaireResponse stored (validated with fhir.resources' R4B model)."""
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

    items = []
    for answer in checked:
        question = answer.question
        if answer.code is not None:
            option = question.option(answer.code)
            assert option is not None
            coding = {"code": option.code, "display": option.display}
            if option.system:
                coding = {"system": option.system, **coding}
            value: dict[str, Any] = {"valueCoding": coding}
        elif answer.boolean is not None:
            value = {"valueBoolean": answer.boolean}
        else:
            value = {"valueString": answer.text}
        items.append({"linkId": question.link_id, "text": question.text, "answer": [value]})
    resource = {
        "resourceType": "QuestionnaireResponse",
        "id": str(response_id),
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{response_id}"},
        "questionnaire": q.canonical,
        "status": "completed",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authored": authored_at.isoformat(),
        "item": items,
    }
    QuestionnaireResponse.model_validate(resource)  # a programming error if not: Hemma built it
    return resource


# --- the command -------------------------------------------------------------------------------------


def answer(
    *,
    patient_id: uuid.UUID,
    questionnaire: str,
    version: str,
    answers: Mapping[str, str],
    response_id: uuid.UUID,
    source: Answerer,
    origin: Origin | None,
    now: datetime | None = None,
) -> CareSteps[Answered]:
    """Store the patient's answers to `questionnaire` (see the module's docstring)."""
    q = find(questionnaire)
    current_version(q, version)
    checked = check_answers(q, answers)
    context = f"questionnaire:{q.id} response:{response_id}"
    staff: ActingStaff | None = None
    device_id: int | None = None
    if isinstance(source, ByStaff):
        staff, ward_id = yield from staff_for_patient(source.username, ENTER_FOR_PATIENT, patient_id)
    else:
        if isinstance(source, ByPatient):
            if source.viewer.patient_id != patient_id:
                raise Refused(RefusalCode.PATIENT_REALM_ACTION, action=PatientAction.ANSWER_QUESTIONNAIRE)
            yield from patient_acts(source.viewer, PatientAction.ANSWER_QUESTIONNAIRE, context=context,
                                    client_address=source.client_address)  # fmt: skip
            device_id = source.viewer.device_id
        ward_id, discharged_at = yield from patient_ward(patient_id)
        in_care(patient_id, discharged_at)
    if now is None:
        now = (yield Sql("SELECT now()", fetch="one"))[0]
    authored_at: datetime = now
    score, flags, priorities = score_and_flags(checked)
    resource = fhir_response(
        q, checked, response_id=response_id, patient_id=patient_id, authored_at=authored_at
    )
    row = yield Sql(
        "INSERT INTO questionnaire_responses (response_id, patient_id, questionnaire, questionnaire_version,"
        " authored_at, source, patient_device_id, staff_user_id, response, score, flags, flag_priorities)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (response_id) DO NOTHING"
        " RETURNING id",
        (response_id, patient_id, q.id, q.version, authored_at, _source(source), device_id,
         staff.id if staff else None, Jsonb(resource), score, list(flags), [p.label for p in priorities]),
        fetch="one",
    )  # fmt: skip
    if row is None:
        return (yield from _stored_before(response_id, patient_id, ward_id, q.id))
    if staff is not None:
        yield from audited(origin, staff=staff, username=staff.username, patient_id=patient_id,
                           action=ENTER_FOR_PATIENT, context=context)  # fmt: skip
    yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return Answered(int(row[0]), response_id, patient_id, ward_id, q.id, q.version, authored_at, score, flags,
                    priorities, stored=True)  # fmt: skip


def _source(source: Answerer) -> Source:
    if isinstance(source, ByPatient):
        return "app"
    return "staff" if isinstance(source, ByStaff) else "simulator"


def _stored_before(
    response_id: uuid.UUID, patient_id: uuid.UUID, ward_id: str, questionnaire_id: str
) -> Steps[Answered]:
    """The response stored under this id before: the same patient's and questionnaire's, or a refusal
    (a response id is the form's; one of another patient's is never shown or overwritten)."""
    row = yield Sql(
        "SELECT id, patient_id, questionnaire, questionnaire_version, authored_at, score, flags,"
        " flag_priorities FROM questionnaire_responses WHERE response_id = %s",
        (response_id,),
        fetch="one",
    )
    if row is None or row[1] != patient_id or row[2] != questionnaire_id:
        raise _invalid("response_id", AnswerProblem.RESPONSE_ID_USED)
    return Answered(int(row[0]), response_id, patient_id, ward_id, row[2], row[3], row[4], int(row[5]),
                    tuple(row[6]), tuple(Priority.parse(p) for p in row[7]), stored=False)  # fmt: skip


# --- what staff read ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    question: str
    answer: str  # the option's display text, "Ja"/"Nej", or the patient's own words
    free_text: bool


@dataclass(frozen=True, slots=True)
class StoredResponse:
    response_id: uuid.UUID
    questionnaire: str
    title: str
    version: str
    authored_at: datetime
    source: str
    entered_by: str | None  # the staff username, for a telephone interview
    score: int
    flags: tuple[str, ...]
    flag_priorities: tuple[Priority, ...]
    answers: tuple[StoredAnswer, ...]

    @property
    def highest(self) -> Priority | None:
        return max(self.flag_priorities, default=None)


def recent_responses(
    patient_id: uuid.UUID, *, days: int = 14, now: datetime | None = None
) -> Steps[list[StoredResponse]]:
    """The patient's responses of the last `days`, newest first (the record's section reads them in
    the record's own logged read)."""
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    rows = yield Sql(
        "SELECT r.response_id, r.questionnaire, r.questionnaire_version, r.authored_at, r.source, s.username,"
        " r.score, r.flags, r.flag_priorities, r.response FROM questionnaire_responses r"
        " LEFT JOIN staff_users s ON s.id = r.staff_user_id WHERE r.patient_id = %s AND r.authored_at >= %s"
        " ORDER BY r.authored_at DESC, r.id DESC LIMIT 200",
        (patient_id, since),
        fetch="all",
    )
    titles = {q.id: q.title for q in catalogue().values()}
    return [
        StoredResponse(
            response_id=rid,
            questionnaire=qid,
            title=titles.get(qid, qid),
            version=version,
            authored_at=at,
            source=source,
            entered_by=username,
            score=int(score),
            flags=tuple(flags),
            flag_priorities=tuple(Priority.parse(p) for p in priorities),
            answers=_stored_answers(response),
        )
        for rid, qid, version, at, source, username, score, flags, priorities, response in rows
    ]


def _stored_answers(response: Mapping[str, Any]) -> tuple[StoredAnswer, ...]:
    out = []
    for item in response.get("item") or ():
        question = item.get("text", item["linkId"])
        for value in item.get("answer") or ():
            if "valueCoding" in value:
                out.append(StoredAnswer(question, value["valueCoding"]["display"], False))
            elif "valueBoolean" in value:
                out.append(StoredAnswer(question, "Ja" if value["valueBoolean"] else "Nej", False))
            else:
                out.append(StoredAnswer(question, str(value.get("valueString", "")), True))
    return tuple(out)
