"""The questionnaires through the real dashboard: the patient's form with a device cookie (answered,
refused and shown again with the answers kept, resent, a relative refused), today's list, and the staff
record (schedules set from a form, answers shown with scores and the patient's words escaped)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import psycopg
import pytest

from care.acting import execute
from care.enrolment import EnrolledPatient
from care.questionnaires import set_schedule
from core.settings import Settings
from dashboard.patient_realm import DEVICE_COOKIE
from tests.support.dashboard_server import csrf_token, logged_in, running_dashboard
from tests.support.questionnaires import HF, HF_MUCH_MORE_BREATHLESS, HF_USUAL, enrol_device, responses
from tests.support.ward_seed import PASSWORD, seed_two_wards

SECRET = "test-session-secret-questionnaires-0123"
FORM_TYPE = {"content-type": "application/x-www-form-urlencoded"}
FORM = f"/p/fragor/{HF}"


@dataclass
class Ward:
    anna: EnrolledPatient
    token: str  # Anna's own tablet
    relative_token: str  # her daughter's phone


@pytest.fixture
def ward(db: psycopg.Connection) -> Ward:
    anna, _, _, (nurse_id, *_) = seed_two_wards(
        db,
        [
            ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
            ("dr.syd", "Olle Öst", "physician", ["avd-syd"]),
        ],
    )
    token, _ = enrol_device(db, anna.patient_id, nurse_id)
    relative, _ = enrol_device(db, anna.patient_id, nurse_id, holder="relative")
    return Ward(anna, token, relative)


@pytest.fixture
def base_url(database_url: str, ward: Ward) -> Iterator[str]:
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield url


def device(base_url: str, token: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=10)
    client.cookies.set(DEVICE_COOKIE, token, path="/p")
    return client


def hidden(html: str, name: str) -> str:
    match = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)">', html)
    assert match, f"no hidden {name}"
    return match.group(1)


def post_answers(
    client: httpx.Client, form_html: str, answers: dict[str, str], **override: str
) -> httpx.Response:
    fields = {
        "csrf": hidden(form_html, "csrf"),
        "response_id": hidden(form_html, "response_id"),
        "version": hidden(form_html, "version"),
    } | {f"q-{k}": v for k, v in answers.items()}
    return client.post(FORM, data=fields | override)


def test_the_patient_answers_the_heart_failure_check_and_is_thanked_calmly(
    base_url: str, db: psycopg.Connection, ward: Ward
) -> None:
    with device(base_url, ward.token) as client:
        form = client.get(FORM)
        assert form.status_code == 200
        html = form.text
        assert "<h1>Frågor om hjärtat</h1>" in html
        assert html.count("<fieldset") == 5 and html.count("<legend>") == 5
        assert "<legend>Hur är din andning idag, jämfört med hur den brukar vara?</legend>" in html
        assert (
            'class="p-choice"><input type="radio" name="q-breathless" value="much-more"> Mycket mer andfådd'
            in html
        )
        assert '<textarea id="svar-other" name="q-other"' in html and 'for="svar-other"' in html
        uuid.UUID(hidden(html, "response_id"))
        assert hidden(html, "version") == "1.0" and hidden(html, "csrf")
        assert "poäng" not in html.lower()

        done = post_answers(client, html, HF_MUCH_MORE_BREATHLESS | {"other": "Svårt att gå i trappan"})
        assert done.status_code == 303
        thanks_url = done.headers["location"]
        assert thanks_url == f"/p/fragor/{HF}/tack/{hidden(html, 'response_id')}"
        thanks = client.get(thanks_url)
        assert thanks.status_code == 200
        assert "Dina svar är skickade till avdelningen." in thanks.text
        assert "Avdelningen ser dina svar" in thanks.text  # a flag fired; never which, never a score
        assert "Mottaget" in thanks.text
        assert "poäng" not in thanks.text.lower() and "andfådd" not in thanks.text

        again = post_answers(client, html, HF_USUAL)  # the same form sent twice: stored once
        assert again.status_code == 303
        assert responses(db, ward.anna.patient_id) == 1

        calm = client.get(FORM).text
        thanks = client.get(post_answers(client, calm, HF_USUAL).headers["location"])
        assert "Dina svar är skickade" in thanks.text and "Avdelningen ser" not in thanks.text
    stored = db.execute(
        "SELECT source, flags FROM questionnaire_responses WHERE patient_id = %s ORDER BY id",
        (ward.anna.patient_id,),
    ).fetchall()
    assert stored == [("app", ["breathless-worse"]), ("app", [])]
    logged = db.execute(
        "SELECT action, count(*) FROM access_log WHERE patient_device_id IS NOT NULL GROUP BY action"
    ).fetchall()
    assert logged == [("patient_answer_questionnaire", 7)]  # 2 forms, 3 answers (one resent), 2 thank-yous


def test_a_refused_answer_shows_the_form_again_with_the_answers_kept(
    base_url: str, db: psycopg.Connection, ward: Ward
) -> None:
    with device(base_url, ward.token) as client:
        html = client.get(FORM).text
        missing = {k: v for k, v in HF_MUCH_MORE_BREATHLESS.items() if k != "pillows"} | {
            "other": "Jag <b>vet</b> inte"
        }
        refused = post_answers(client, html, missing)
        assert refused.status_code == 422
        assert "Något svar saknas eller passar inte. Titta igenom frågorna igen." in refused.text
        assert 'id="fel-pillows">Välj ett svar på den här frågan.' in refused.text
        assert 'name="q-breathless" value="much-more" checked' in refused.text  # kept
        assert ">Jag &lt;b&gt;vet&lt;/b&gt; inte</textarea>" in refused.text  # kept, as text
        assert hidden(refused.text, "response_id") == hidden(html, "response_id")  # the same form, once

        for bad, mark in (
            ({"other": "x" * 501}, "Texten är för lång"),
            ({"other": "ont\u202ei bröstet"}, "Texten har tecken som inte går att skicka"),
            ({"breathless": "awful"}, "Välj ett av svaren här."),
        ):
            answered = post_answers(client, html, HF_USUAL | bad)
            assert answered.status_code == 422 and mark in answered.text, bad
        old = post_answers(client, html, HF_USUAL, version="0.9")
        assert old.status_code == 409 and "Frågorna har ändrats" in old.text
        body = urlencode(
            {"csrf": hidden(html, "csrf"), "version": "1.0"} | {f"q-{k}": v for k, v in HF_USUAL.items()}
        )
        for odd in ("not-a-uuid%ED%A0%80", "%00", "9" * 64):  # a lone surrogate's bytes, NUL, nonsense
            answered = client.post(FORM, content=f"{body}&response_id={odd}".encode(), headers=FORM_TYPE)
            assert answered.status_code == 422, odd
        key = hidden(html, "response_id")
        for odd in ("%00", "%E2%80%AE", "%C2%85"):  # NUL, a bidi override, a C1 control
            sent = f"{body}&response_id={key}&q-other=ont{odd}i".encode()
            answered = client.post(FORM, content=sent, headers=FORM_TYPE)
            assert answered.status_code == 422, odd
            assert "Texten har tecken som inte går att skicka" in answered.text, odd
        assert post_answers(client, html, HF_USUAL, csrf="forged").status_code == 403
        assert client.get("/p/fragor/hemma-nothing").status_code == 404
        assert client.get("/p/fragor/" + "x" * 300).status_code == 404
        assert responses(db, ward.anna.patient_id) == 0
        # Bytes that are no UTF-8 (a lone surrogate's) reach the app as U+FFFD: valid text, stored as such.
        sent = f"{body}&response_id={key}&q-other=ont%ED%A0%80".encode()
        assert client.post(FORM, content=sent, headers=FORM_TYPE).status_code == 303
    stored = db.execute(
        "SELECT response->'item'->4->'answer'->0->>'valueString' FROM questionnaire_responses"
    )
    assert stored.fetchall() == [("ont\ufffd\ufffd\ufffd",)]


def test_a_relative_sees_todays_list_but_does_not_answer(
    base_url: str, db: psycopg.Connection, ward: Ward
) -> None:
    execute(
        db,
        set_schedule(
            patient_id=ward.anna.patient_id,
            questionnaire=HF,
            times=["00:00", "23:59"],
            by="nurse.norr",
            origin=None,
        ),
    )
    with device(base_url, ward.relative_token) as client:
        form = client.get(FORM)
        assert form.status_code == 403 and "Den här delen visas bara för patienten själv." in form.text
        today = client.get("/p/fragment/dagens-fragor")
        assert today.status_code == 200
        assert "Frågor om hjärtat" in today.text and "Patienten svarar själv" in today.text
        assert 'href="/p/fragor/' not in today.text
    with device(base_url, ward.token) as client:
        today = client.get("/p/fragment/dagens-fragor").text
        assert '<h3 id="dagens-fragor">Dagens frågor</h3>' in today
        assert f'href="/p/fragor/{HF}"' in today and "Dags att svara" in today
        post_answers(client, client.get(FORM).text, HF_USUAL)
        today = client.get("/p/fragment/dagens-fragor").text
        assert "Klart" in today and "Dags att svara" not in today.split("00:00")[1].split("23:59")[0]
    assert responses(db, ward.anna.patient_id) == 1


def test_staff_schedule_from_the_record_and_read_the_answers_escaped(
    base_url: str, db: psycopg.Connection, ward: Ward
) -> None:
    words = "<script>document.title='pwned'</script> Ont i bröstet"
    with device(base_url, ward.token) as patient:
        post_answers(
            patient, patient.get(FORM).text, HF_MUCH_MORE_BREATHLESS | {"swelling": "much", "other": words}
        )
    record = f"/patients/{ward.anna.patient_id}"
    with logged_in(base_url, "nurse.norr", PASSWORD) as staff:
        csrf = csrf_token(staff, record)
        done = staff.post(
            f"{record}/questionnaires/{HF}/schedule", data={"csrf": csrf, "times": "18:00, 9:00"}
        )
        assert (done.status_code, done.headers["location"]) == (303, f"{record}#fragor")
        refused = staff.post(f"{record}/questionnaires/{HF}/schedule", data={"csrf": csrf, "times": "25:00"})
        assert refused.status_code == 422 and "Ange 1–6 klockslag som TT:MM" in refused.text
        assert (
            staff.post(
                f"{record}/questionnaires/{HF}/schedule", data={"csrf": "x", "times": "9:00"}
            ).status_code
            == 403
        )
        page = staff.get(record).text
        section = page[page.index('id="fragor"') :]
        section = section[: section.index("</section>")]
        assert '<td class="schedule-times">09:00, 18:00</td>' in section
        assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt; Ont i bröstet" in section
        assert "<script>document.title" not in page
        assert '<td class="num response-score">5</td>' in section  # much-more 3 + much 2
        assert "mycket mer andfådd, mer svullna anklar eller ben" in section and "(Medel)" in section
        assert "Mycket mer andfådd" in section and "patientens app" in section
        cleared = staff.post(f"{record}/questionnaires/{HF}/clear", data={"csrf": csrf})
        assert cleared.status_code == 303
        assert '<td class="schedule-times">Inget schema</td>' in staff.get(record).text
    with logged_in(base_url, "dr.syd", PASSWORD) as other:  # another ward's physician
        csrf = csrf_token(other, "/")
        refused = other.post(f"{record}/questionnaires/{HF}/schedule", data={"csrf": csrf, "times": "9:00"})
        assert refused.status_code == 403
    assert db.execute("SELECT count(*) FROM questionnaire_schedules").fetchone() == (0,)
