"""care.questionnaires: the data files, answers (checked, scored, flagged, stored once), schedules and
what is due today, and the symptoms kernel against its scalar twin."""

from __future__ import annotations

import copy
import json
import math
import uuid
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest
from fhir.resources.R4B.questionnaire import Questionnaire as FhirQuestionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import inputs as ai
from alerts.messages_sv import SYMPTOM_SV, render
from alerts.model import Priority
from alerts.symptoms import SYMPTOM_WINDOW, judge_symptoms, symptoms_one
from alerts.weight import BREATHLESS_FLAG, HF_CHECK, weight_gain
from care.acting import Origin, execute
from care.enrolment import EnrolledPatient
from care.questionnaires import (
    AnswerProblem,
    ByPatient,
    BySimulator,
    ByStaff,
    QuestionnaireError,
    SlotState,
    answer,
    catalogue,
    clear_schedule,
    questionnaire,
    set_schedule,
)
from care.questionnaires.definitions import load_directory, load_file
from care.questionnaires.schedules import slots_today
from care.refusals import RefusalCode, Refused
from tests.support.entry_points import hemma_cli
from tests.support.questionnaires import (
    HF,
    HF_MUCH_MORE_BREATHLESS,
    HF_USUAL,
    enrol_device,
    responses,
)
from tests.support.ward_seed import seed_two_wards

DATA = Path(__file__).resolve().parent.parent / "care" / "questionnaires" / "data"
STOCKHOLM = ZoneInfo("Europe/Stockholm")


# --- the data ----------------------------------------------------------------------------------------


def test_every_shipped_questionnaire_loads_and_is_valid_fhir() -> None:
    shipped = catalogue()
    assert set(shipped) == {"hemma-hf-daily", "hemma-copd-daily", "hemma-wellbeing"}
    assert {p.stem for p in DATA.glob("*.json")} == set(shipped)
    for q in shipped.values():
        FhirQuestionnaire.model_validate(q.resource)  # the stored resource itself
        assert q.url == f"https://hemma.se/fhir/Questionnaire/{q.id}" and q.version and q.title
        link_ids = [question.link_id for question in q.questions]
        assert len(set(link_ids)) == len(link_ids)
        for question in q.questions:
            assert question.text.endswith("?")
            if question.kind == "choice":
                assert question.options and all(o.display and o.ordinal >= 0 for o in question.options)
                assert all(o.flag is None or o.flag.code in SYMPTOM_SV for o in question.options)
            else:
                assert not question.required and question.hint  # free text is optional, with a hint


def test_the_heart_failure_check_asks_what_the_issue_names() -> None:
    q = questionnaire(HF)
    assert q is not None
    breathless = q.question("breathless")
    assert breathless is not None and breathless.required
    assert [o.display for o in breathless.options] == [
        "Som vanligt",
        "Lite mer andfådd",
        "Mycket mer andfådd",
    ]
    much_more = breathless.option("much-more")
    assert much_more is not None and much_more.flag is not None
    assert (much_more.flag.code, much_more.flag.priority) == (BREATHLESS_FLAG, Priority.MEDIUM)
    assert [x.link_id for x in q.questions] == ["breathless", "swelling", "pillows", "dizziness", "other"]
    fainted = q.question("dizziness").option("fainted")  # type: ignore[union-attr]
    assert fainted is not None and fainted.flag is not None and fainted.flag.priority is Priority.HIGH


def _broken(change: Any) -> dict[str, Any]:
    data = json.loads((DATA / "hemma-wellbeing.json").read_text(encoding="utf-8"))
    change(data)
    return data


def _options(data: dict[str, Any]) -> list[dict[str, Any]]:
    return data["item"][0]["answerOption"]


BROKEN = {
    "no score": (lambda d: _options(d)[1].pop("extension"), "'as-usual' has no http://hl7.org/fhir/"),
    "half a point": (
        lambda d: _options(d)[0]["extension"][0].update(valueDecimal=0.5),
        "'good': the score must be a whole",
    ),
    "unknown flag": (
        lambda d: _options(d)[2]["extension"][1]["extension"][0].update(valueCode="feeling-grumpy"),
        "flag 'feeling-grumpy' is not a known symptom",
    ),
    "bad priority": (
        lambda d: _options(d)[2]["extension"][1]["extension"][1].update(valueCode="urgent"),
        "flag priority must be low, medium or high",
    ),
    "same linkId twice": (
        lambda d: d["item"][1].update(
            linkId="feeling", type="choice", answerOption=copy.deepcopy(_options(d))
        ),
        "a linkId appears more than once",
    ),
    "same option code twice": (
        lambda d: _options(d)[1]["valueCoding"].update(code="good"),
        "an option code appears more than once",
    ),
    "not FHIR": (lambda d: d.update(colour="blue"), "not a valid FHIR Questionnaire at colour"),
    "no status": (lambda d: d.pop("status"), "not a valid FHIR Questionnaire at status"),
    "a draft": (lambda d: d.update(status="draft"), "`status` must be active"),
    "id is not the file": (lambda d: d.update(id="hemma-other"), "`id` must be the file's name"),
    "foreign url": (lambda d: d.update(url="https://example.com/q"), "`url` must be"),
    "a group": (lambda d: d["item"][1].update(type="group"), "type 'group' is not one the patient app shows"),
    "choice without options": (
        lambda d: d["item"][0].pop("answerOption"),
        "a choice item needs answerOption",
    ),
}


@pytest.mark.parametrize("kind", BROKEN)
def test_a_broken_file_fails_to_load_naming_the_file_and_the_fault(kind: str, tmp_path: Path) -> None:
    change, message = BROKEN[kind]
    path = tmp_path / "hemma-wellbeing.json"
    path.write_text(json.dumps(_broken(change), ensure_ascii=False), encoding="utf-8")
    with pytest.raises(QuestionnaireError) as failed:
        load_directory(tmp_path)
    assert str(failed.value).startswith("hemma-wellbeing.json: ")
    assert message in str(failed.value)


def test_a_file_that_is_not_json_fails_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "hemma-x.json"
    path.write_text('{"resourceType": "Questionnaire",', encoding="utf-8")
    with pytest.raises(QuestionnaireError, match=r"^hemma-x\.json: not readable JSON"):
        load_file(path)


# --- answers -----------------------------------------------------------------------------------------


@pytest.fixture
def ward(db: psycopg.Connection) -> tuple[EnrolledPatient, EnrolledPatient, list[int]]:
    anna, bertil, _, staff = seed_two_wards(
        db,
        [
            ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
            ("admin.it", "Ida IT", "admin", []),
            ("nurse.syd", "Olle Öst", "nurse", ["avd-syd"]),
        ],
    )
    return anna, bertil, staff


def _answer(patient_id: uuid.UUID, answers: dict[str, str], **kwargs: Any) -> Any:
    q = questionnaire(kwargs.pop("questionnaire_id", HF))
    assert q is not None
    return answer(
        patient_id=patient_id,
        questionnaire=q.id,
        version=kwargs.pop("version", q.version),
        answers=answers,
        response_id=kwargs.pop("response_id", uuid.uuid4()),
        source=kwargs.pop("source", BySimulator()),
        origin=kwargs.pop("origin", None),
        **kwargs,
    )


BAD_ANSWERS = {
    "unknown question": (HF_USUAL | {"mood": "good"}, "mood", AnswerProblem.NO_SUCH_QUESTION),
    "option not offered": (HF_USUAL | {"breathless": "terrible"}, "breathless", AnswerProblem.NOT_AN_OPTION),
    "required missing": (
        {k: v for k, v in HF_USUAL.items() if k != "pillows"},
        "pillows",
        AnswerProblem.REQUIRED_MISSING,
    ),
    "required left empty": (HF_USUAL | {"swelling": "  "}, "swelling", AnswerProblem.REQUIRED_MISSING),
    "text too long": (HF_USUAL | {"other": "å" * 501}, "other", AnswerProblem.TOO_LONG),
    "control character": (HF_USUAL | {"other": "ont\x00i bröstet"}, "other", AnswerProblem.CHARACTERS),
    "bidi override": (HF_USUAL | {"other": "ont \u202ei bröstet"}, "other", AnswerProblem.CHARACTERS),
    "a question id with data": (
        HF_USUAL | {"Anna Andersson 19480101": "x"},
        "?",
        AnswerProblem.NO_SUCH_QUESTION,
    ),
}


def test_an_answer_that_does_not_fit_is_refused_and_nothing_is_stored(
    db: psycopg.Connection, ward: Any
) -> None:
    anna = ward[0]
    for kind, (answers, link_id, problem) in BAD_ANSWERS.items():  # one database for all: seeding is slow
        with pytest.raises(Refused) as refused:
            execute(db, _answer(anna.patient_id, answers))
        assert refused.value.code is RefusalCode.ANSWER_INVALID, kind
        assert dict(refused.value.params) == {"link_id": link_id, "problem": problem}, kind
        assert responses(db, anna.patient_id) == 0, kind
        assert "bröstet" not in str(refused.value) and "Anna" not in str(refused.value)  # never the input


def test_an_unknown_questionnaire_and_an_old_version_are_refused(db: psycopg.Connection, ward: Any) -> None:
    anna = ward[0]
    with pytest.raises(Refused) as refused:
        execute(
            db,
            answer(
                patient_id=anna.patient_id,
                questionnaire="hemma-mood",
                version="1.0",
                answers=HF_USUAL,
                response_id=uuid.uuid4(),
                source=BySimulator(),
                origin=None,
            ),
        )
    assert refused.value.code is RefusalCode.UNKNOWN_QUESTIONNAIRE
    with pytest.raises(Refused) as refused:
        execute(db, _answer(anna.patient_id, HF_USUAL, version="0.9"))
    assert refused.value.code is RefusalCode.QUESTIONNAIRE_VERSION
    assert dict(refused.value.params) == {"questionnaire": HF, "current": "1.0", "given": "0.9"}
    assert responses(db, anna.patient_id) == 0


def test_the_answer_is_scored_flagged_and_stored_as_a_fhir_response(
    db: psycopg.Connection, ward: Any
) -> None:
    anna = ward[0]
    at = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
    key = uuid.uuid4()
    words = "Svullna fötter <script>alert(1)</script>\nsover dåligt"
    done = execute(
        db,
        _answer(
            anna.patient_id,
            {
                "breathless": "much-more",
                "swelling": "much",
                "pillows": "no",
                "dizziness": "dizzy",
                "other": f"  {words} ",
            },
            response_id=key,
            now=at,
        ),
    )
    # ordinals: much-more 3 + much 2 + no 0 + dizzy 1
    assert (done.score, done.flags, done.stored) == (6, ("breathless-worse", "swollen-legs", "dizzy"), True)
    assert done.flag_priorities == (Priority.MEDIUM, Priority.MEDIUM, Priority.LOW)
    row = db.execute(
        "SELECT response, score, flags, flag_priorities, source, authored_at, questionnaire_version"
        " FROM questionnaire_responses WHERE response_id = %s",
        (key,),
    ).fetchone()
    assert row is not None
    resource, score, flags, priorities, source, authored_at, version = row
    assert (score, flags, priorities, source, authored_at, version) == (
        6,
        ["breathless-worse", "swollen-legs", "dizzy"],
        ["medium", "medium", "low"],
        "simulator",
        at,
        "1.0",
    )
    response = QuestionnaireResponse.model_validate(resource)
    assert response.status == "completed"
    assert response.questionnaire == "https://hemma.se/fhir/Questionnaire/hemma-hf-daily|1.0"
    assert response.subject.reference == f"Patient/{anna.patient_id}"
    assert [i.linkId for i in response.item] == ["breathless", "swelling", "pillows", "dizziness", "other"]
    assert response.item[0].answer[0].valueCoding.code == "much-more"
    assert response.item[0].answer[0].valueCoding.display == "Mycket mer andfådd"
    assert response.item[4].answer[0].valueString == words  # stripped, otherwise as typed


def test_a_resent_answer_is_stored_once(db: psycopg.Connection, ward: Any) -> None:
    anna, bertil = ward[0], ward[1]
    key = uuid.uuid4()
    first = execute(db, _answer(anna.patient_id, HF_MUCH_MORE_BREATHLESS, response_id=key))
    again = execute(db, _answer(anna.patient_id, HF_USUAL, response_id=key))  # a double tap, changed mind
    assert (first.stored, again.stored) == (True, False)
    assert (again.id, again.flags, again.score) == (first.id, first.flags, first.score)  # the first stands
    assert responses(db, anna.patient_id) == 1
    with pytest.raises(Refused) as refused:  # another patient's response id is never shown or overwritten
        execute(db, _answer(bertil.patient_id, HF_USUAL, response_id=key))
    assert refused.value.params["problem"] is AnswerProblem.RESPONSE_ID_USED
    assert responses(db, bertil.patient_id) == 0


def test_the_patients_device_answers_and_the_read_is_logged_a_relative_may_not(
    db: psycopg.Connection, ward: Any
) -> None:
    anna, bertil, (nurse_id, *_) = ward
    _, own = enrol_device(db, anna.patient_id, nurse_id)
    _, relative = enrol_device(db, anna.patient_id, nurse_id, holder="relative")
    done = execute(db, _answer(anna.patient_id, HF_USUAL, source=ByPatient(own, "10.0.0.7")))
    logged = db.execute(
        "SELECT username, action, context, entry_point, patient_device_id, client_address::text"
        " FROM access_log WHERE patient_id = %s",
        (anna.patient_id,),
    ).fetchall()
    assert logged == [
        (
            "(patient app)",
            "patient_answer_questionnaire",
            f"questionnaire:{HF} response:{done.response_id}",
            "patient_app",
            own.device_id,
            "10.0.0.7",
        )
    ]
    assert db.execute("SELECT source, patient_device_id FROM questionnaire_responses").fetchall() == [
        ("app", own.device_id)
    ]
    for source, patient in ((ByPatient(relative), anna), (ByPatient(own), bertil)):
        with pytest.raises(Refused) as refused:
            execute(db, _answer(patient.patient_id, HF_USUAL, source=source))
        assert refused.value.code is RefusalCode.PATIENT_REALM_ACTION
    assert responses(db, anna.patient_id) + responses(db, bertil.patient_id) == 1


def test_staff_enter_a_telephone_answer_for_their_own_ward_only(db: psycopg.Connection, ward: Any) -> None:
    anna, _, _ = ward
    origin = Origin("cli", os_user="sara@host")
    done = execute(db, _answer(anna.patient_id, HF_USUAL, source=ByStaff("nurse.norr"), origin=origin))
    row = db.execute(
        "SELECT r.source, s.username FROM questionnaire_responses r"
        " JOIN staff_users s ON s.id = r.staff_user_id"
    ).fetchone()
    assert row == ("staff", "nurse.norr")
    assert db.execute(
        "SELECT username, action, context FROM access_log WHERE patient_id = %s", (anna.patient_id,)
    ).fetchall() == [("nurse.norr", "record_observation", f"questionnaire:{HF} response:{done.response_id}")]
    for username, code in (("nurse.syd", RefusalCode.WARD_ACCESS), ("admin.it", RefusalCode.ROLE)):
        with pytest.raises(Refused) as refused:
            execute(db, _answer(anna.patient_id, HF_USUAL, source=ByStaff(username), origin=origin))
        assert refused.value.code is code
    assert responses(db, anna.patient_id) == 1


def test_a_discharged_patient_answers_nothing(db: psycopg.Connection, ward: Any) -> None:
    anna = ward[0]
    db.execute("UPDATE patients SET discharged_at = now() WHERE id = %s", (anna.patient_id,))
    with pytest.raises(Refused) as refused:
        execute(db, _answer(anna.patient_id, HF_USUAL))
    assert refused.value.code is RefusalCode.PATIENT_DISCHARGED
    assert responses(db, anna.patient_id) == 0


# --- schedules ---------------------------------------------------------------------------------------


def test_a_schedule_is_set_replaced_and_cleared_with_its_access_log_and_the_kits_reminders(
    db: psycopg.Connection, ward: Any
) -> None:
    anna = ward[0]
    db.execute(
        "INSERT INTO kit_configs (gateway_id, version, issued_at) VALUES (%s, 1, now())", (anna.gateway_id,)
    )
    origin = Origin("dashboard", client_address="10.0.0.9")
    done = execute(
        db,
        set_schedule(
            patient_id=anna.patient_id,
            questionnaire=HF,
            times=["18:00", "9:00", "09:00"],
            by="nurse.norr",
            origin=origin,
        ),
    )
    assert (done.times, done.kit_version) == (("09:00", "18:00"), 2)
    execute(
        db,
        set_schedule(
            patient_id=anna.patient_id,
            questionnaire="hemma-wellbeing",
            times=["07:30"],
            by="nurse.norr",
            origin=origin,
        ),
    )
    from care.kit import kit_config

    config = execute(db, kit_config(anna.gateway_id))
    assert config is not None and config.version == 3
    assert config.reminder_times == ("07:30", "09:00", "18:00")
    done = execute(
        db,
        set_schedule(
            patient_id=anna.patient_id, questionnaire=HF, times=["08:00"], by="nurse.norr", origin=origin
        ),
    )
    assert done.times == ("08:00",)
    execute(db, clear_schedule(patient_id=anna.patient_id, questionnaire=HF, by="nurse.norr", origin=origin))
    config = execute(db, kit_config(anna.gateway_id))
    assert config is not None and (config.version, config.reminder_times) == (5, ("07:30",))
    with pytest.raises(Refused) as refused:
        execute(
            db, clear_schedule(patient_id=anna.patient_id, questionnaire=HF, by="nurse.norr", origin=origin)
        )
    assert refused.value.code is RefusalCode.NO_SCHEDULE
    actions = db.execute(
        "SELECT action, context FROM access_log WHERE patient_id = %s ORDER BY id", (anna.patient_id,)
    ).fetchall()
    assert actions == [
        ("set_questionnaire_schedule", f"questionnaire_schedule:{HF}"),
        ("set_questionnaire_schedule", "questionnaire_schedule:hemma-wellbeing"),
        ("set_questionnaire_schedule", f"questionnaire_schedule:{HF}"),
        ("set_questionnaire_schedule", f"questionnaire_schedule:{HF} cleared"),
    ]


BAD_TIMES = [[], ["25:00"], ["9"], ["09:00", *(f"1{i}:00" for i in range(6))], ["09:00; 10:00"], ["⁹:00"]]


def test_schedule_times_must_be_1_to_6_times_of_day_and_who_may_schedule(
    db: psycopg.Connection, ward: Any
) -> None:
    anna = ward[0]
    for times in BAD_TIMES:
        with pytest.raises(Refused) as refused:
            execute(
                db,
                set_schedule(
                    patient_id=anna.patient_id, questionnaire=HF, times=times, by="nurse.norr", origin=None
                ),
            )
        assert refused.value.code is RefusalCode.SCHEDULE_TIMES, times
    assert db.execute("SELECT count(*) FROM questionnaire_schedules").fetchone() == (0,)
    for username, code in (("admin.it", RefusalCode.ROLE), ("nurse.syd", RefusalCode.WARD_ACCESS)):
        with pytest.raises(Refused) as refused:
            execute(
                db,
                set_schedule(
                    patient_id=anna.patient_id, questionnaire=HF, times=["09:00"], by=username, origin=None
                ),
            )
        assert refused.value.code is code
    with pytest.raises(Refused) as refused:
        execute(
            db,
            set_schedule(
                patient_id=anna.patient_id,
                questionnaire="hemma-x",
                times=["09:00"],
                by="nurse.norr",
                origin=None,
            ),
        )
    assert refused.value.code is RefusalCode.UNKNOWN_QUESTIONNAIRE


def _local(hour: int, minute: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=STOCKHOLM)


def test_todays_slots_count_an_answer_from_two_hours_before_and_say_due_later_missed() -> None:
    times = {HF: [time(9), time(18)], "hemma-wellbeing": [time(12)]}

    def states(now: datetime, answered: dict[str, list[datetime]]) -> list[tuple[str, str, str]]:
        return [
            (s.questionnaire, f"{s.at:%H:%M}", s.state.value)
            for s in slots_today(times, answered, now=now, zone=STOCKHOLM)
        ]

    assert states(_local(6), {}) == [
        (HF, "09:00", "later"),
        ("hemma-wellbeing", "12:00", "later"),
        (HF, "18:00", "later"),
    ]
    assert states(_local(7, 5), {})[0] == (HF, "09:00", "due")  # from 2 h before
    early = {HF: [_local(7, 30)]}
    assert states(_local(7, 45), early)[0] == (HF, "09:00", "answered")
    assert states(_local(16, 30), early)[2] == (HF, "18:00", "due")  # the morning's answer is the morning's
    too_early = {HF: [_local(6, 59)], "hemma-wellbeing": [_local(11, 0, day=1)]}  # yesterday's is not today's
    assert states(_local(16, 0), too_early) == [  # a once-a-day check stays due all day
        (HF, "09:00", "missed"),
        ("hemma-wellbeing", "12:00", "due"),
        (HF, "18:00", "due"),
    ]
    answered_late = slots_today(times, {HF: [_local(17)]}, now=_local(20), zone=STOCKHOLM)
    assert [(s.state, s.answered_at) for s in answered_late if s.questionnaire == HF] == [
        (SlotState.MISSED, None),
        (SlotState.ANSWERED, _local(17)),
    ]


def test_slots_close_together_share_the_grace_fairly() -> None:
    slots = slots_today({HF: [time(9), time(10)]}, {HF: [_local(8, 30)]}, now=_local(9, 30), zone=STOCKHOLM)
    assert [s.state for s in slots] == [SlotState.ANSWERED, SlotState.DUE]


# --- the symptoms kernel against its scalar twin ------------------------------------------------------

NOW = datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
NOW_S = NOW.timestamp()
CODES = ("breathless-worse", "swollen-legs", "dizzy", "fainted", "feeling-worse")
PRIORITY_OF = {"breathless-worse": 2, "swollen-legs": 2, "dizzy": 1, "fainted": 3, "feeling-worse": 2}

row_strategy = st.tuples(
    st.sampled_from([HF_CHECK, "hemma-wellbeing"]),
    st.one_of(st.none(), st.floats(min_value=0, max_value=60 * 3600)),  # answered this long ago
    st.lists(st.sampled_from(CODES), unique=True, max_size=3),
    st.lists(st.floats(min_value=70, max_value=76, allow_nan=False), min_size=0, max_size=5),  # weights
    st.floats(min_value=-30 * 3600, max_value=30 * 3600),  # newest weight's time relative to the answer
)


@settings(max_examples=200, deadline=None)
@given(st.lists(row_strategy, min_size=1, max_size=6))
def test_the_symptoms_kernel_agrees_with_its_scalar_twin(rows: list[Any]) -> None:
    n = len(rows)
    patients = tuple(uuid.UUID(int=i + 1) for i in range(n))
    width = max(1, max(len(r[2]) for r in rows))
    flag = np.full((n, width), -1)
    priority = np.zeros((n, width), np.int64)
    authored = np.full(n, np.nan)
    k = max(1, max(len(r[3]) for r in rows))
    values, times = np.full((n, k), np.nan), np.full((n, k), np.nan)
    for i, (_, ago, flags, weights, offset) in enumerate(rows):
        authored[i] = np.nan if ago is None else NOW_S - ago
        for j, code in enumerate(flags):
            flag[i, j], priority[i, j] = CODES.index(code), PRIORITY_OF[code]
        newest = min(NOW_S, (NOW_S if ago is None else NOW_S - ago) + offset)
        for j, w in enumerate(weights):  # one a day before the newest
            values[i, j], times[i, j] = w, newest - (len(weights) - 1 - j) * 86400
    reports = ai.SymptomReports(
        patients,
        tuple(r[0] for r in rows),
        authored,
        CODES,
        flag,
        priority,
        ai.Series(patients, values, times),
        np.arange(n),
    )
    judged = judge_symptoms(reports, now=NOW)
    wg = weight_gain(values, times, now=NOW)
    for i, (questionnaire_id, _, flags, _, _) in enumerate(rows):
        gain = None if math.isnan(wg.gain[i]) else float(wg.gain[i])
        expected, counted = symptoms_one(
            questionnaire_id,
            float(authored[i]),
            [(c, Priority(PRIORITY_OF[c])) for c in flags],
            weight_gain_kg=gain,
            weighed_at=float(wg.newest_at[i]),
            now_s=NOW_S,
        )
        got = int(judged.priority[i])
        assert (got if got else "clear") == expected
        assert tuple(CODES[c] for c, on in zip(flag[i], judged.counted[i], strict=True) if on) == counted


def test_the_symptoms_text_and_the_combined_weight_text() -> None:
    from alerts.facts import SymptomsReported, WeightGain3d

    assert render(SymptomsReported(HF, ("breathless-worse", "swollen-legs"))) == (
        "Patienten rapporterar: mycket mer andfådd, mer svullna anklar eller ben"
    )
    assert render(WeightGain3d(2.1, 2.0, ("breathless-worse",))) == (
        "Viktökning 2,1 kg på 3 dygn (gräns 2 kg); patienten rapporterar: mycket mer andfådd"
    )
    assert timedelta(hours=36) == SYMPTOM_WINDOW


# --- the command line ---------------------------------------------------------------------------------


def test_the_cli_schedules_and_enters_a_telephone_answer(
    database_url: str, db: psycopg.Connection, ward: Any
) -> None:
    anna = ward[0]
    pid = str(anna.patient_id)
    listed = hemma_cli(database_url, "questionnaire", "list")
    assert listed.returncode == 0 and "hemma-hf-daily  version 1.0" in listed.stdout
    assert "much-more [breathless-worse]" in listed.stdout
    done = hemma_cli(
        database_url,
        "questionnaire",
        "schedule",
        pid,
        HF,
        "--at",
        "09:00",
        "--at",
        "18:00",
        "--as",
        "nurse.norr",
    )
    assert (done.returncode, done.stdout.strip()) == (0, "hemma-hf-daily scheduled at 09:00, 18:00"), (
        done.stderr
    )
    args = [f"--answer={k}={v}" for k, v in HF_MUCH_MORE_BREATHLESS.items()]
    done = hemma_cli(database_url, "questionnaire", "answer", pid, HF, *args, "--as", "nurse.norr")
    assert done.returncode == 0, done.stderr
    assert "score 3; flags breathless-worse" in done.stdout
    refused = hemma_cli(
        database_url, "questionnaire", "answer", pid, HF, "--answer", "breathless=awful", "--as", "nurse.norr"
    )
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "hemma: answer to 'breathless' does not fit the questionnaire: not_an_option"
    )
    refused = hemma_cli(
        database_url, "questionnaire", "schedule", pid, HF, "--at", "25:00", "--as", "nurse.norr"
    )
    assert (refused.returncode, refused.stderr.strip()) == (2, "hemma: give 1 to 6 times of day as HH:MM")
    assert responses(db, anna.patient_id) == 1
    assert db.execute(
        "SELECT entry_point FROM access_log WHERE action = 'record_observation'"
    ).fetchall() == [("cli",)]


def test_the_simulator_answers_each_patients_questionnaire_once_a_morning(
    db: psycopg.Connection, ward: Any
) -> None:
    from simulator.questionnaires import answer_all_mornings
    from simulator.scenarios import make_scenario

    anna, bertil, _ = ward
    patients = [(anna.patient_id, make_scenario("heart_failure")), (bertil.patient_id, make_scenario("copd"))]
    first = answer_all_mornings(db, patients, elapsed=timedelta(days=4, minutes=20))
    assert [(a.questionnaire, a.flags, a.stored) for a in first] == [
        (HF, ("breathless-worse", "swollen-legs", "orthopnoea"), True),  # 3.2 kg in 3 days by now
        ("hemma-copd-daily", (), True),
    ]
    again = answer_all_mornings(db, patients, elapsed=timedelta(days=4, hours=2))  # the same morning
    assert [a.stored for a in again] == [False, False]
    day_one = answer_all_mornings(db, patients[:1], elapsed=timedelta(days=1, minutes=20))
    assert day_one[0].flags == () and day_one[0].score == 1  # 0.8 kg up: ankles a little, breathing as usual
