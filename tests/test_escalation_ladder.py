"""The ward's escalation ladder across care providers (issue 12): the pure decision, the command, and a real
escalator tick driven by an explicit clock against real PostgreSQL and a real in-process SMTP server.

The ladder: the municipality's nurse (home visit, 10 min) → the ward's physician (10 min) → the on-call
physician. The ward's own time before step 1 is its escalation time (5 min), as without a ladder.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from aiosmtpd.controller import Controller

from alerts import store
from alerts.lifecycle import Acknowledged, Staff
from care.acting import execute
from care.escalation_handoffs import take_visit
from care.escalation_ladder import (
    Due,
    Ended,
    LadderStep,
    StepDone,
    StepInput,
    Stopped,
    Target,
    Waiting,
    due_step,
    ladder,
    parse_step,
    set_ladder,
)
from care.handover import handover
from care.refusals import RefusalCode, Refused
from care.shifts import shift_of
from devservices.services import free_port
from paging.escalator import Escalation, Escalator
from paging.notify import Dispatcher, EmailChannel, RetryPolicy
from storage.steps import run
from tests.support.escalation import high_alert, tick_at
from tests.support.ladder_seed import (
    HOME_CARE_UNIT,
    MUNICIPALITY,
    NURSE,
    PHYSICIAN,
    WARD,
    seed_ladder_ward,
)
from tests.support.smtp import Mailbox

T0 = datetime(2025, 3, 4, 13, 5, tzinfo=UTC)
MIN = timedelta(minutes=1)
STEPS = (
    LadderStep(1, Target.HOME_VISIT_PARTNER, 10),
    LadderStep(2, Target.WARD_PHYSICIAN, 10),
    LadderStep(3, Target.ON_CALL, 10),
)
DASHBOARD = "https://hemma.region.example"


# --- the decision, pure ----------------------------------------------------------------------------------


def _due(done: list[StepDone], now: datetime) -> object:
    return due_step(STEPS, since=T0, first_after_minutes=5, done=done, now=now)


def test_step_one_falls_due_after_the_wards_own_time() -> None:
    assert _due([], T0 + 5 * MIN - timedelta(seconds=1)) == Waiting(T0 + 5 * MIN)
    assert _due([], T0 + 5 * MIN) == Due(STEPS[0], T0 + 5 * MIN)


def test_each_step_waits_its_minutes_and_the_last_ends_the_ladder() -> None:
    one = [StepDone(1, T0 + 5 * MIN, skipped=False, taken=False)]
    assert _due(one, T0 + 14 * MIN) == Waiting(T0 + 15 * MIN)
    assert _due(one, T0 + 15 * MIN) == Due(STEPS[1], T0 + 15 * MIN)
    three = [*one, StepDone(2, T0 + 15 * MIN, False, False), StepDone(3, T0 + 25 * MIN, False, False)]
    assert _due(three, T0 + 600 * MIN) == Ended()


def test_a_skipped_step_hands_on_at_once_and_a_taken_one_stops() -> None:
    skipped = [StepDone(1, T0 + 5 * MIN, skipped=True, taken=False)]
    assert _due(skipped, T0 + 5 * MIN) == Due(STEPS[1], T0 + 5 * MIN)
    taken = [StepDone(1, T0 + 5 * MIN, skipped=False, taken=True)]
    assert _due(taken, T0 + 60 * MIN) == Stopped(1)


def test_the_decision_refuses_naive_times_and_an_empty_ladder() -> None:
    with pytest.raises(ValueError, match="aware"):
        due_step(STEPS, since=T0.replace(tzinfo=None), first_after_minutes=5, done=[], now=T0)
    with pytest.raises(ValueError, match="no steps"):
        due_step((), since=T0, first_after_minutes=5, done=[], now=T0)


def test_the_cli_writes_a_step_as_target_physician_and_minutes() -> None:
    assert parse_step("ward_physician=karin.ek:10") == StepInput("ward_physician", 10, "karin.ek")
    assert parse_step("on_call:15") == StepInput("on_call", 15, None)
    with pytest.raises(Refused) as refused:
        parse_step("on_call")
    assert refused.value.code is RefusalCode.LADDER_STEPS


# --- the command -----------------------------------------------------------------------------------------


def test_only_a_physician_of_the_ward_sets_the_ladder_and_it_is_audited(db: psycopg.Connection) -> None:
    seed_ladder_ward(db, T0, ladder=False)
    with pytest.raises(Refused) as refused:
        execute(db, set_ladder(ward_id=WARD, steps=[StepInput("on_call", 10)], phone=None, by=NURSE,
                               origin=None))  # fmt: skip
    assert refused.value.code is RefusalCode.ROLE
    with pytest.raises(Refused) as refused:
        execute(db, set_ladder(ward_id=WARD, steps=[StepInput("ward_physician", 10, NURSE)], phone=None,
                               by=PHYSICIAN, origin=None))  # fmt: skip
    assert refused.value.code is RefusalCode.LADDER_PHYSICIAN
    for bad in ([StepInput("home_visit_partner", 0)], [StepInput("on_call", 10)] * 7):
        with pytest.raises(Refused) as refused:
            execute(db, set_ladder(ward_id=WARD, steps=bad, phone=None, by=PHYSICIAN, origin=None))
        assert refused.value.code is RefusalCode.LADDER_STEPS
    with pytest.raises(Refused) as refused:
        execute(db, set_ladder(ward_id=WARD, steps=[], phone="ring mig", by=PHYSICIAN, origin=None))
    assert refused.value.code is RefusalCode.LADDER_PHONE

    from care.acting import Origin

    steps = [StepInput("home_visit_partner", 10), StepInput("ward_physician", 10, PHYSICIAN)]
    done = execute(db, set_ladder(ward_id=WARD, steps=steps, phone=" 040-33  10 00 ", by=PHYSICIAN,
                                  origin=Origin("cli", os_user="ops@host")))  # fmt: skip
    assert [(s.position, s.target, s.minutes, s.physician_name) for s in done.steps] == [
        (1, Target.HOME_VISIT_PARTNER, 10, None),
        (2, Target.WARD_PHYSICIAN, 10, "Dr. Karin Ek"),
    ]
    assert (done.ward_phone, done.set_by) == ("040-33 10 00", "Dr. Karin Ek")
    log = db.execute(
        "SELECT username, patient_id, action, context, care_provider_id FROM access_log"
        " WHERE action = 'set_escalation_ladder'"
    ).fetchall()
    assert log == [(
        PHYSICIAN, None, "set_escalation_ladder",
        f"ward:{WARD} ladder:{done.id} steps:home_visit_partner/10,ward_physician={PHYSICIAN}/10", "region",
    )]  # fmt: skip
    # No steps: no ladder, and the ward escalates to the on-call rota as before.
    cleared = execute(db, set_ladder(ward_id=WARD, steps=[], phone=None, by=PHYSICIAN, origin=None))
    assert cleared.steps == () and run(db, ladder(WARD)) == cleared


# --- the escalator walking the ladder --------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.current = T0

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        pass


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def escalator(database_url: str, mailbox: tuple[Mailbox, int], clock: FakeClock) -> Iterator[Escalator]:
    channel = EmailChannel(
        "127.0.0.1", mailbox[1], sender="hemma@region.example", security="none", timeout_s=2
    )
    dispatcher = Dispatcher([channel], clock=clock, policy=RetryPolicy(max_attempts=1, base_delay_s=0))
    with Escalator(lambda: psycopg.connect(database_url, autocommit=True), dispatcher,
                   dashboard_url=DASHBOARD) as e:  # fmt: skip
        yield e


def _events(db: psycopg.Connection, alert_id: int, *kinds: str) -> list[tuple[str, str, dict[str, Any]]]:
    rows = db.execute(
        "SELECT kind, note, detail FROM alert_events WHERE alert_id = %s AND kind = ANY(%s) ORDER BY id",
        (alert_id, list(kinds)),
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def _handoff_log(db: psycopg.Connection, patient_id: uuid.UUID) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT staff_user_id, username, entry_point, care_provider_id, care_unit_id, partner_grant_id"
        " FROM access_log WHERE action = 'escalation_handoff' AND patient_id = %s ORDER BY id",
        (patient_id,),
    ).fetchall()


def _handoffs(db: psycopg.Connection, alert_id: int) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT position, staff_user_id, care_provider_id, skipped_reason, outcome FROM escalation_handoffs"
        " WHERE alert_id = %s ORDER BY id",
        (alert_id,),
    ).fetchall()


def test_unacknowledged_it_walks_nurse_physician_on_call_each_under_the_receivers_provider(
    db: psycopg.Connection, escalator: Escalator, clock: FakeClock, mailbox: tuple[Mailbox, int]
) -> None:
    ward = seed_ladder_ward(db, T0)
    alert_id = high_alert(db, ward.patient_id, WARD, opened_at=T0)
    box = mailbox[0]

    assert tick_at(escalator, clock, T0 + 5 * MIN - timedelta(seconds=1)) == []
    assert tick_at(escalator, clock, T0 + 5 * MIN) == [Escalation(alert_id, WARD, 1, ward.nurse, True, 1)]
    assert tick_at(escalator, clock, T0 + 15 * MIN - timedelta(seconds=1)) == []
    assert tick_at(escalator, clock, T0 + 15 * MIN) == [
        Escalation(alert_id, WARD, 2, ward.physician, True, 1)
    ]
    assert tick_at(escalator, clock, T0 + 25 * MIN) == [Escalation(alert_id, WARD, 3, ward.on_call, True, 1)]
    assert tick_at(escalator, clock, T0 + 120 * MIN) == []  # the ladder has ended

    mails = box.messages()
    assert [m["To"].addresses[0].addr_spec for m in mails] == [
        "sara.lind@malmo.example", "karin.ek@region.example", "asa.berg@region.example",
    ]  # fmt: skip
    assert f"{DASHBOARD}/partner/besok/{alert_id}" in mails[0].get_content()
    assert f"{DASHBOARD}/alerts/{alert_id}" in mails[1].get_content()
    assert f"{DASHBOARD}/alerts/{alert_id}" in mails[2].get_content()
    for mail in mails:
        assert "Oskar" not in mail.get_content() and str(ward.patient_id) not in mail.get_content()

    handed = _events(db, alert_id, "handed_off")
    assert [(d["step"], d["staff_user_id"], d["care_provider_id"]) for _, _, d in handed] == [
        (1, ward.nurse, MUNICIPALITY), (2, ward.physician, "region"), (3, ward.on_call, "region"),
    ]  # fmt: skip
    assert handed[0][1] == "Överlämnat till Hemsjukvården Malmö (kommun): Sara Lind (hembesök, steg 1)"
    assert handed[1][1] == "Överlämnat till Sjukhusvård i hemmet (region): Dr. Karin Ek (bedömning, steg 2)"
    assert len(_events(db, alert_id, "notified")) == 3
    assert _handoff_log(db, ward.patient_id) == [
        (ward.nurse, "(escalation)", "escalator", MUNICIPALITY, HOME_CARE_UNIT, ward.grant),
        (ward.physician, "(escalation)", "escalator", "region", "region-hemma", None),
        (ward.on_call, "(escalation)", "escalator", "region", "region-hemma", None),
    ]
    assert _handoffs(db, alert_id) == [
        (1, ward.nurse, MUNICIPALITY, None, "passed_on"),
        (2, ward.physician, "region", None, "passed_on"),
        (3, ward.on_call, "region", None, None),
    ]
    # The on-call chain of the ward without a ladder was not used: no 'escalated' event.
    assert _events(db, alert_id, "escalated") == []
    assert escalator.metrics["handed_off"] == 3

    # The handover of the day shift says it in words, under each receiver's care provider.
    summary = run(db, handover(WARD, shift_of(T0.date(), "dag", ZoneInfo("Europe/Stockholm")), T0 + 60 * MIN))
    [patient] = summary.patients
    assert [(e.at, e.text, e.by) for e in patient.events if "överlämnat" in e.text] == [
        (T0 + 5 * MIN, "Larm överlämnat till Hemsjukvården Malmö (kommun)", "Sara Lind"),
        (T0 + 15 * MIN, "Larm överlämnat till Sjukhusvård i hemmet (region)", "Dr. Karin Ek"),
        (T0 + 25 * MIN, "Larm överlämnat till Sjukhusvård i hemmet (region)", "Dr. Åsa Berg"),
    ]


def test_the_nurse_taking_the_visit_stops_the_ladder(
    db: psycopg.Connection, escalator: Escalator, clock: FakeClock, mailbox: tuple[Mailbox, int]
) -> None:
    ward = seed_ladder_ward(db, T0)
    alert_id = high_alert(db, ward.patient_id, WARD, opened_at=T0)
    assert [e.level for e in tick_at(escalator, clock, T0 + 5 * MIN)] == [1]
    execute(db, take_visit(alert_id=alert_id, staff_user_id=ward.nurse, username=NURSE, now=T0 + 9 * MIN,
                           client_address="127.0.0.1"))  # fmt: skip
    for minutes in (15, 25, 60):
        assert tick_at(escalator, clock, T0 + minutes * MIN) == []
    assert len(mailbox[0].envelopes) == 1
    [(_, note, detail)] = _events(db, alert_id, "handoff_taken")
    assert note == "Hembesök tagen av Sara Lind, Hemsjukvården Malmö (kommun)"
    assert detail["staff_user_id"] == ward.nurse
    assert _handoffs(db, alert_id) == [(1, ward.nurse, MUNICIPALITY, None, "taken")]
    state = db.execute("SELECT state FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert state == ("open",)  # the ward still sees it until someone there acknowledges
    taken_log = db.execute(
        "SELECT entry_point, care_provider_id, partner_grant_id FROM access_log"
        " WHERE action = 'partner_acknowledge_visit'"
    ).fetchall()
    assert taken_log == [("partner", MUNICIPALITY, ward.grant)]
    summary = run(db, handover(WARD, shift_of(T0.date(), "dag", ZoneInfo("Europe/Stockholm")), T0 + 60 * MIN))
    assert [(e.at, e.text, e.by) for e in summary.patients[0].events][-2:] == [
        (T0 + 5 * MIN, "Larm överlämnat till Hemsjukvården Malmö (kommun)", "Sara Lind"),
        (T0 + 9 * MIN, "Hembesök taget", "Sara Lind"),
    ]


def test_without_a_home_visit_grant_the_step_is_skipped_with_its_reason(
    db: psycopg.Connection, escalator: Escalator, clock: FakeClock, mailbox: tuple[Mailbox, int]
) -> None:
    ward = seed_ladder_ward(db, T0, grant=False)
    alert_id = high_alert(db, ward.patient_id, WARD, opened_at=T0)
    # Step 1 has nobody: skipped, and the ward's physician is handed the alert at once.
    assert tick_at(escalator, clock, T0 + 5 * MIN) == [Escalation(alert_id, WARD, 2, ward.physician, True, 1)]
    [(_, note, detail)] = _events(db, alert_id, "handoff_skipped")
    assert note == (
        "Steg 1 (hembesök av kommunens sjuksköterska) hoppades över:"
        " ingen har uppdrag för hembesök hos patienten"
    )
    assert detail == {"step": 1, "target": "home_visit_partner", "reason": "no_home_visit_grant"}
    assert _handoffs(db, alert_id) == [
        (1, None, None, "no_home_visit_grant", "skipped"),
        (2, ward.physician, "region", None, None),
    ]
    assert [r[0] for r in _handoff_log(db, ward.patient_id)] == [ward.physician]
    # The physician's 10 minutes count from their hand-off.
    assert tick_at(escalator, clock, T0 + 15 * MIN - timedelta(seconds=1)) == []
    assert [e.level for e in tick_at(escalator, clock, T0 + 15 * MIN)] == [3]


def test_a_ward_acknowledgement_stops_the_ladder(
    db: psycopg.Connection, escalator: Escalator, clock: FakeClock, mailbox: tuple[Mailbox, int]
) -> None:
    ward = seed_ladder_ward(db, T0)
    alert_id = high_alert(db, ward.patient_id, WARD, opened_at=T0)
    assert [e.level for e in tick_at(escalator, clock, T0 + 5 * MIN)] == [1]
    run(db, store.act(alert_id, Acknowledged(Staff(ward.physician, PHYSICIAN)), now=T0 + 7 * MIN))
    for minutes in (15, 25, 60):
        assert tick_at(escalator, clock, T0 + minutes * MIN) == []
    assert len(mailbox[0].envelopes) == 1
    # The nurse's hand-off is settled by the ward's acknowledgement (by someone else than her).
    assert _handoffs(db, alert_id) == [(1, ward.nurse, MUNICIPALITY, None, "acknowledged")]


def test_a_partner_without_a_way_to_be_reached_is_no_receiver(
    db: psycopg.Connection, escalator: Escalator, clock: FakeClock, mailbox: tuple[Mailbox, int]
) -> None:
    ward = seed_ladder_ward(db, T0)
    db.execute("DELETE FROM staff_contacts WHERE staff_user_id = %s", (ward.nurse,))
    alert_id = high_alert(db, ward.patient_id, WARD, opened_at=T0)
    assert [e.staff_user_id for e in tick_at(escalator, clock, T0 + 5 * MIN)] == [ward.physician]
    assert [d["reason"] for _, _, d in _events(db, alert_id, "handoff_skipped")] == ["no_contact"]


def test_with_no_ladder_the_ward_escalates_to_the_on_call_rota_as_before(
    db: psycopg.Connection, escalator: Escalator, clock: FakeClock, mailbox: tuple[Mailbox, int]
) -> None:
    ward = seed_ladder_ward(db, T0, ladder=False)
    alert_id = high_alert(db, ward.patient_id, WARD, opened_at=T0)
    assert tick_at(escalator, clock, T0 + 5 * MIN) == [Escalation(alert_id, WARD, 1, ward.on_call, True, 1)]
    assert [k for k, _, _ in _events(db, alert_id, "escalated", "handed_off")] == ["escalated"]
    assert _handoffs(db, alert_id) == [] and _handoff_log(db, ward.patient_id) == []
    # A ladder set and cleared again (no steps) is no ladder either.
    execute(db, set_ladder(ward_id=WARD, steps=[], phone=None, by=PHYSICIAN, origin=None))
    assert [e.level for e in tick_at(escalator, clock, T0 + 10 * MIN)] == [2]


def test_hemma_ward_ladder_show_and_set(db: psycopg.Connection, database_url: str) -> None:
    from tests.support.entry_points import hemma_cli

    seed_ladder_ward(db, T0, ladder=False)
    shown = hemma_cli(database_url, "ward", "ladder", "show", WARD)
    assert shown.returncode == 0 and shown.stdout.startswith("no ladder: high alerts escalate to the on-call")
    done = hemma_cli(database_url, "ward", "ladder", "set", WARD, "--step", "home_visit_partner:10",
                     "--step", f"ward_physician={PHYSICIAN}:10", "--step", "on_call:10", "--phone",
                     "040-33 10 00", "--by", PHYSICIAN)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:3] == [
        "1. home_visit_partner: 10 min", "2. ward_physician=Dr. Karin Ek: 10 min", "3. on_call: 10 min",
    ]  # fmt: skip
    refused = hemma_cli(
        database_url, "ward", "ladder", "set", WARD, "--step", "dentist:10", "--by", PHYSICIAN
    )
    assert refused.returncode != 0 and "unknown ladder step 'dentist'" in refused.stderr
    by_nurse = hemma_cli(database_url, "ward", "ladder", "set", WARD, "--by", NURSE)
    assert by_nurse.returncode != 0 and "only physicians set the escalation ladder" in by_nurse.stderr
    row = db.execute(
        "SELECT entry_point, os_user IS NOT NULL FROM access_log WHERE action = 'set_escalation_ladder'"
    ).fetchall()
    assert row == [("cli", True)]
