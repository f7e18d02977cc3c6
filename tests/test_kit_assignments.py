"""The kit's state machine (pure) and the commands that lend, take back and stock kits (issue 11),
on a real PostgreSQL: roles, ward access, overlapping assignments, the access log, the history."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest

from care import texts_en, texts_sv
from care.access_log import CLI
from care.acting import Origin, execute
from care.enrolment import discharge_patient, enrol_patient, ensure_ward
from care.kit_assignments import (
    LIST_KITS,
    available_kits,
    back_in_stock,
    lend,
    list_kits,
    mark_cleaned,
    register_kit,
    take_back,
)
from care.kit_states import LENDABLE, TRANSITIONS, KitEvent, KitState, events_allowed, next_state
from care.refusals import RefusalCode as C
from care.refusals import Refused
from care.staff import create_staff_user

PASSWORD = "ett långt lösenord"
ORIGIN = Origin(CLI, os_user="test@host")


# --- the state machine, every pair -------------------------------------------------------------------


EXPECTED = {
    (KitState.IN_STOCK, KitEvent.LEND): KitState.ASSIGNED,
    (KitState.CLEANED, KitEvent.LEND): KitState.ASSIGNED,
    (KitState.ASSIGNED, KitEvent.TAKE_BACK): KitState.RETURNED,
    (KitState.RETURNED, KitEvent.CLEANED): KitState.CLEANED,
    (KitState.CLEANED, KitEvent.TO_STOCK): KitState.IN_STOCK,
}


@pytest.mark.parametrize(("state", "event"), list(itertools.product(KitState, KitEvent)))
def test_every_transition_is_allowed_or_refused_with_the_state(state: KitState, event: KitEvent) -> None:
    if (state, event) in EXPECTED:
        assert next_state(state, event) is EXPECTED[(state, event)]
        return
    with pytest.raises(Refused) as refused:
        next_state(state, event)
    assert refused.value.code is C.KIT_STATE
    assert refused.value.params == {"state": state.value, "event": event.value}
    # Both languages say it without a KeyError (every state and event has its words).
    assert "Hemlådan kan inte" in texts_sv.text(refused.value)
    assert state.value in texts_en.text(refused.value)


def test_the_machine_is_the_table_and_a_returned_kit_is_never_lent_uncleaned() -> None:
    assert TRANSITIONS == EXPECTED
    assert {KitState.IN_STOCK, KitState.CLEANED} == LENDABLE
    assert events_allowed(KitState.RETURNED) == (KitEvent.CLEANED,)
    assert events_allowed(KitState.CLEANED) == (KitEvent.LEND, KitEvent.TO_STOCK)


# --- the commands ----------------------------------------------------------------------------------


class Ward:
    def __init__(self, db: Any, unique_id: str) -> None:
        self.db = db
        self.ward = f"ward-{unique_id}"
        self.other_ward = f"other-{unique_id}"
        ensure_ward(db, self.ward, "Hemsjukvård")
        ensure_ward(db, self.other_ward, "Annan avdelning")
        self.nurse, self.admin, self.stranger = (f"{p}{unique_id}"[:20] for p in ("n", "a", "s"))
        create_staff_user(db, username=self.nurse, display_name="Sara", role="nurse", password=PASSWORD,
                          ward_ids=[self.ward])  # fmt: skip
        create_staff_user(
            db, username=self.admin, display_name="Ida", role="admin", password=PASSWORD, ward_ids=[]
        )
        create_staff_user(db, username=self.stranger, display_name="Per", role="nurse", password=PASSWORD,
                          ward_ids=[self.other_ward])  # fmt: skip
        self.kit = f"gw-ka-{unique_id}"
        self.anna = enrol_patient(
            db, ward_id=self.ward, display_name="Anna A", gateway_id=self.kit
        ).patient_id
        self.bertil = enrol_patient(db, ward_id=self.ward, display_name="Bertil B",
                                    gateway_id=f"gw-kb-{unique_id}").patient_id  # fmt: skip
        self.spare = f"gw-kc-{unique_id}"

    def run(self, steps: Any) -> Any:
        return execute(self.db, steps)

    def refused(self, steps: Any) -> Refused:
        with pytest.raises(Refused) as caught:
            self.run(steps)
        return caught.value

    def state(self, kit: str) -> tuple[str, Any]:
        return self.db.execute("SELECT kit_state, patient_id FROM gateways WHERE id = %s", (kit,)).fetchone()


@pytest.fixture
def ward(db: Any, unique_id: str) -> Ward:
    return Ward(db, unique_id)


def test_a_kit_goes_round_lent_taken_back_cleaned_stocked_and_lent_again(ward: Ward) -> None:
    ward.run(register_kit(gateway_id=ward.spare, by=ward.admin))
    assert ward.state(ward.spare) == ("in_stock", None)
    assert ward.spare in ward.run(available_kits()) and ward.kit not in ward.run(available_kits())
    back = ward.run(take_back(by=ward.nurse, origin=ORIGIN, patient_id=ward.anna))
    assert (back.gateway_id, back.patient_id) == (ward.kit, ward.anna)
    assert ward.state(ward.kit) == ("returned", None)
    assert ward.kit not in ward.run(available_kits())  # not before it is cleaned
    assert (
        ward.refused(lend(gateway_id=ward.kit, patient_id=ward.anna, by=ward.nurse, origin=ORIGIN)).code
        is C.KIT_STATE
    )
    ward.run(mark_cleaned(gateway_id=ward.kit, by=ward.admin))
    assert ward.state(ward.kit) == ("cleaned", None) and ward.kit in ward.run(available_kits())
    ward.run(back_in_stock(gateway_id=ward.kit, by=ward.nurse))
    assert ward.state(ward.kit) == ("in_stock", None)
    lent = ward.run(lend(gateway_id=ward.kit, patient_id=ward.anna, by=ward.nurse, origin=ORIGIN))
    assert ward.state(ward.kit) == ("assigned", ward.anna)
    assert lent.starts_at == back.ends_at  # the clock leeway stops at the previous end
    rows = ward.db.execute(
        "SELECT patient_id, end_reason, ends_at IS NULL FROM kit_assignments WHERE gateway_id = %s"
        " ORDER BY starts_at",
        (ward.kit,),
    ).fetchall()
    assert rows == [(ward.anna, "taken_back", False), (ward.anna, None, True)]
    logged = ward.db.execute(
        "SELECT username, action, context FROM access_log WHERE patient_id = %s ORDER BY id", (ward.anna,)
    ).fetchall()
    assert logged == [
        (ward.nurse, "assign_kit", f"take back kit:{ward.kit}"),
        (ward.nurse, "assign_kit", f"lend kit:{ward.kit}"),
    ]


def test_an_overlapping_assignment_is_refused_by_the_table(ward: Ward) -> None:
    back = ward.run(take_back(by=ward.nurse, origin=None, gateway_id=ward.kit))
    ward.run(mark_cleaned(gateway_id=ward.kit, by=ward.nurse))
    ward.run(take_back(by=ward.nurse, origin=None, patient_id=ward.bertil))
    # Bertil's lend recorded late, "since before Anna's kit came back": it would overlap hers.
    early = back.ends_at - timedelta(minutes=30)
    refused = ward.refused(
        lend(gateway_id=ward.kit, patient_id=ward.bertil, by=ward.nurse, origin=None, starts_at=early)
    )
    assert refused.code is C.KIT_ASSIGNMENT_OVERLAP
    assert ward.state(ward.kit) == ("cleaned", None)
    # Straight SQL meets the constraint too.
    import psycopg

    with pytest.raises(psycopg.errors.ExclusionViolation):
        ward.db.execute(
            "INSERT INTO kit_assignments (gateway_id, patient_id, ward_id, starts_at, ends_at, end_reason)"
            " VALUES (%s, %s, %s, %s, %s, 'taken_back')",
            (ward.kit, ward.bertil, ward.ward, early, back.ends_at - timedelta(minutes=1)),
        )
    with pytest.raises(psycopg.errors.RaiseException):  # an ended assignment is history
        ward.db.execute(
            "UPDATE kit_assignments SET ends_at = now() - interval '1 day' WHERE ends_at IS NOT NULL"
        )
    # A lend dated too far back or in the future is refused before the table sees it.
    far = ward.refused(lend(gateway_id=ward.kit, patient_id=ward.bertil, by=ward.nurse, origin=None,
                            starts_at=back.ends_at - timedelta(days=8)))  # fmt: skip
    assert far.code is C.KIT_LEND_START


def test_roles_and_wards(ward: Ward) -> None:
    ward.run(take_back(by=ward.nurse, origin=None, patient_id=ward.bertil))
    bertils_kit = ward.db.execute(
        "SELECT gateway_id FROM kit_assignments WHERE patient_id = %s", (ward.bertil,)
    ).fetchone()[0]
    ward.run(mark_cleaned(gateway_id=bertils_kit, by=ward.nurse))
    # An admin handles stock but never lends a kit to a patient (a clinical act).
    refused = ward.refused(lend(gateway_id=bertils_kit, patient_id=ward.bertil, by=ward.admin, origin=ORIGIN))
    assert (refused.code, refused.params["role"]) == (C.ROLE, "admin")
    assert ward.refused(take_back(by=ward.admin, origin=ORIGIN, gateway_id=ward.kit)).code is C.ROLE
    # A nurse of another ward may not lend to nor take back from this ward's patients.
    assert (
        ward.refused(
            lend(gateway_id=bertils_kit, patient_id=ward.bertil, by=ward.stranger, origin=ORIGIN)
        ).code
        is C.WARD_ACCESS
    )
    assert ward.refused(take_back(by=ward.stranger, origin=ORIGIN, gateway_id=ward.kit)).code is C.WARD_ACCESS
    # A patient holds one kit; a lent kit is not lent again.
    assert (
        ward.refused(lend(gateway_id=bertils_kit, patient_id=ward.anna, by=ward.nurse, origin=ORIGIN)).code
        is C.PATIENT_HAS_KIT
    )
    assert (
        ward.refused(lend(gateway_id=ward.kit, patient_id=ward.bertil, by=ward.nurse, origin=ORIGIN)).code
        is C.KIT_STATE
    )
    assert (
        ward.refused(take_back(by=ward.nurse, origin=ORIGIN, gateway_id=bertils_kit)).code is C.KIT_NOT_LENT
    )
    assert ward.refused(register_kit(gateway_id=ward.kit, by=ward.nurse)).code is C.KIT_EXISTS
    assert ward.refused(register_kit(gateway_id="Bad Id!", by=ward.nurse)).code is C.KIT_ID_FORM
    # The nurse of the ward may.
    ward.run(lend(gateway_id=bertils_kit, patient_id=ward.bertil, by=ward.nurse, origin=ORIGIN))
    assert ward.state(bertils_kit) == ("assigned", ward.bertil)
    assert (
        ward.db.execute("SELECT count(*) FROM access_log WHERE username = %s", (ward.admin,)).fetchone()[0]
        == 0
    )


def test_discharge_ends_the_assignment_and_returns_the_kit(ward: Ward) -> None:
    discharge_patient(ward.db, patient_id=ward.anna, by=ward.nurse, origin=ORIGIN)
    assert ward.state(ward.kit) == ("returned", None)
    row = ward.db.execute(
        "SELECT a.end_reason, a.ends_at = p.discharged_at FROM kit_assignments a"
        " JOIN patients p ON p.id = a.patient_id WHERE a.patient_id = %s",
        (ward.anna,),
    ).fetchone()
    assert row == ("discharged", True)


def test_the_kit_list_names_patients_only_for_the_readers_wards_and_logs_each(ward: Ward) -> None:
    ward.run(register_kit(gateway_id=ward.spare, by=None))
    kits = {k.gateway_id: k for k in ward.run(list_kits(by=ward.nurse, origin=ORIGIN))}
    assert kits[ward.kit].holder is not None and kits[ward.kit].holder.patient_name == "Anna A"
    assert kits[ward.spare].state is KitState.IN_STOCK and kits[ward.spare].holder is None
    logged = ward.db.execute("SELECT patient_id FROM access_log WHERE action = %s AND username = %s",
                             (LIST_KITS, ward.nurse)).fetchall()  # fmt: skip
    assert sorted(str(r[0]) for r in logged) == sorted([str(ward.anna), str(ward.bertil)])
    # Staff of another ward see the kits that can be lent, not this ward's lent ones nor their patients.
    theirs = {k.gateway_id for k in ward.run(list_kits(by=ward.stranger, origin=ORIGIN))}
    assert ward.spare in theirs and ward.kit not in theirs
    assert (
        ward.db.execute("SELECT count(*) FROM access_log WHERE username = %s", (ward.stranger,)).fetchone()[0]
        == 0
    )


def test_the_command_line_lends_takes_back_and_refuses_by_code(ward: Ward, database_url: str) -> None:
    from tests.support.entry_points import hemma_cli

    back = hemma_cli(database_url, "kit", "take-back", ward.kit, "--by", ward.nurse)
    assert back.returncode == 0 and back.stdout.startswith(
        f"kit {ward.kit} taken back from patient {ward.anna}"
    )
    lend_early = hemma_cli(
        database_url, "kit", "lend", ward.kit, "--patient", str(ward.anna), "--by", ward.nurse
    )
    assert (lend_early.returncode, lend_early.stderr.strip()) == (
        2, "hemma: a kit that is returned cannot be changed by 'lend'"
    )  # fmt: skip
    admin = hemma_cli(database_url, "kit", "cleaned", ward.kit, "--by", ward.admin)
    assert (admin.returncode, admin.stdout.strip()) == (0, f"kit {ward.kit}: cleaned")
    refused = hemma_cli(
        database_url, "kit", "lend", ward.kit, "--patient", str(ward.anna), "--by", ward.admin
    )
    assert refused.returncode == 2 and "admin" in refused.stderr
    naive = hemma_cli(database_url, "kit", "lend", ward.kit, "--patient", str(ward.anna), "--by", ward.nurse,
                      "--since", "2026-03-02T08:00")  # fmt: skip
    assert naive.returncode == 2 and "offset" in naive.stderr
    lent = hemma_cli(database_url, "kit", "lend", ward.kit, "--patient", str(ward.anna), "--by", ward.nurse)
    assert lent.returncode == 0, lent.stderr
    listed = hemma_cli(database_url, "kit", "list", "--by", ward.nurse)
    assert f"{ward.kit}\tassigned\t" in listed.stdout and str(ward.anna) in listed.stdout
    assert "Anna" not in listed.stdout  # ids only on a terminal
    assert ward.state(ward.kit) == ("assigned", ward.anna)
