"""care.permissions: the one table of who may do which clinical action (security review, issue 8)."""

from __future__ import annotations

import pytest

from care import permissions
from care.permissions import Action, AdminAction, EquipmentAction, PartnerAction, PatientAction, Role

N, P, A, LR = "nurse", "physician", "admin", "log_reviewer"
# Written out in full so that a change to the table is a change to this test too.
EXPECTED = {
    Action.ACKNOWLEDGE_ALERT: {N, P},
    Action.SNOOZE_ALERT: {N, P},
    Action.RESOLVE_ALERT: {N, P},
    Action.RECORD_OBSERVATION: {N, P},
    Action.SET_MONITORING_PLAN: {N, P},
    Action.CLEAR_MONITORING_PLAN: {N, P},
    Action.SET_ALERT_LIMIT: {P},
    Action.REVOKE_ALERT_LIMIT: {P},
    Action.ORDER_SPO2_SCALE: {P},
    Action.BE_ON_CALL: {P},
    Action.TAKE_CONTACT_REQUEST: {N, P},
    Action.CLOSE_CONTACT_REQUEST: {N, P},
    Action.MANAGE_PATIENT_APP: {N, P},
    Action.SET_QUESTIONNAIRE_SCHEDULE: {N, P},
    Action.SET_SELF_CARE: {N, P},
    Action.SEND_PATIENT_MESSAGE: {N, P},
    Action.SET_CARE_LEVEL: {P},
    Action.REVIEW_PATIENT: {N, P},
    Action.DISCHARGE_PATIENT: {N, P},
    Action.ADMIT_PATIENT: {N, P},
    Action.SET_INCLUSION_CRITERIA: {P},
    Action.REPLAY_LIMIT: {N, P},  # a read: trying a limit; saving it is SET_ALERT_LIMIT's
    Action.SHARE_WITH_PARTNER: {N, P},
    Action.RECORD_PATIENT_BLOCK: {N, P},
    Action.SET_ESCALATION_LADDER: {P},
}
# The partner realm (issue 12): what a grant's purpose lets its partner do.
PARTNER_EXPECTED = {
    PartnerAction.VIEW_PATIENT: {"read", "read_contact", "home_visit"},
    PartnerAction.VIEW_STAY_SUMMARY: {"read", "read_contact", "home_visit"},
    PartnerAction.CONTACT_WARD: {"read_contact", "home_visit"},
    PartnerAction.ACKNOWLEDGE_VISIT: {"home_visit"},
}
# The patient realm (issue 10): what a device held by the patient or by a relative may do.
PATIENT_EXPECTED = {
    PatientAction.VIEW_TODAY: {"patient", "relative"},
    PatientAction.VIEW_VALUES: {"patient"},
    PatientAction.VIEW_ACCESS_LOG: {"patient"},
    PatientAction.ANSWER_QUESTIONNAIRE: {"patient"},
    PatientAction.REQUEST_CONTACT: {"patient", "relative"},
    PatientAction.READ_MESSAGES: {"patient", "relative"},
    PatientAction.SEND_MESSAGE: {"patient", "relative"},
}


@pytest.mark.parametrize("action", list(PatientAction))
@pytest.mark.parametrize("holder", ["patient", "relative", "nurse", "physician", "admin", ""])
def test_the_patient_realm_has_its_own_table_no_staff_role_holds_it(
    holder: str, action: PatientAction
) -> None:
    assert permissions.patient_may(holder, action) is (holder in PATIENT_EXPECTED[action])
    assert permissions.patient_may(holder, action.value) is (holder in PATIENT_EXPECTED[action])


@pytest.mark.parametrize("action", list(Action))
def test_no_staff_action_is_a_patient_action(action: Action) -> None:
    with pytest.raises(ValueError):
        permissions.patient_may("patient", action.value)


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("role", list(Role))
def test_clinical_actions_are_for_clinicians_and_medical_orders_for_physicians(
    role: Role, action: Action
) -> None:
    assert permissions.may(role, action) is (role in EXPECTED[action])
    assert permissions.may(role.value, action.value) is (role in EXPECTED[action])


def test_an_admin_may_do_no_clinical_action() -> None:
    assert permissions.permitted("admin") == ()
    assert not any(permissions.may("admin", a) for a in Action)


def test_permitted_lists_the_page_buttons_per_role() -> None:
    assert set(permissions.permitted("nurse")) == {a.value for a, roles in EXPECTED.items() if N in roles}
    assert set(permissions.permitted("physician")) == {a.value for a in Action}
    assert permissions.permitted("unknown-role") == ()


def test_an_unknown_action_is_a_programming_error_not_a_refusal() -> None:
    with pytest.raises(ValueError):
        permissions.may("physician", "acknowledge_alerts")


def test_ward_access_admin_sees_every_ward_others_their_own() -> None:
    assert permissions.may_see_ward("admin", [], "avd-syd")
    assert permissions.may_see_ward("nurse", ["avd-norr"], "avd-norr")
    assert not permissions.may_see_ward("nurse", ["avd-norr"], "avd-syd")
    assert not permissions.may_see_ward("physician", [], "avd-norr")


def test_every_refusal_has_a_swedish_text_looked_up_by_the_action() -> None:
    assert set(permissions.REFUSALS_SV) == set(Action)
    assert (
        permissions.refusal_sv(Action.ACKNOWLEDGE_ALERT)
        == "Endast sjuksköterskor och läkare får kvittera larm"
    )
    assert permissions.refusal_sv("set_alert_limit") == "Endast läkare får ändra larmgränser"
    for action in Action:
        text = permissions.refusal_sv(action)
        assert text.startswith("Endast ") and not any(w in text.split() for w in ("only", "the", "may"))


def test_the_operators_refusal_names_who_their_role_and_who_may() -> None:
    assert permissions.refusal_en("it.admin", "admin", Action.SET_ALERT_LIMIT) == (
        "it.admin is an admin; only physicians set limits"
    )
    assert permissions.refusal_en("sara", "nurse", Action.ORDER_SPO2_SCALE) == (
        "sara is a nurse; only physicians order the SpO2 scale"
    )
    assert permissions.refusal_en("it.admin", "admin", Action.RESOLVE_ALERT) == (
        "it.admin is an admin; only nurses and physicians end alerts"
    )


EQUIPMENT_EXPECTED = {
    EquipmentAction.MANAGE_KIT_DEVICES: {N, P, A},
    EquipmentAction.ASSIGN_KIT: {N, P},
    EquipmentAction.MANAGE_KIT_STOCK: {N, P, A},
}
ADMIN_EXPECTED = {
    AdminAction.MANAGE_STAFF: {A},
    AdminAction.MANAGE_ROTA: {A},
    AdminAction.MANAGE_ORGANISATIONS: {A},
    AdminAction.MANAGE_SYSTEM_CLIENTS: {A},
    AdminAction.REVIEW_ACCESS_LOG: {LR},  # who runs the system does not audit its use
}


@pytest.mark.parametrize("role", list(Role))
def test_equipment_and_admin_actions_follow_their_tables(role: Role) -> None:
    assert set(EQUIPMENT_EXPECTED) == set(EquipmentAction)
    assert set(ADMIN_EXPECTED) == set(AdminAction)
    for action, roles in {**EQUIPMENT_EXPECTED, **ADMIN_EXPECTED}.items():
        assert permissions.may(role, action) is (role in roles)
        assert permissions.may(role.value, action.value) is (role in roles)
        assert permissions.refusal_sv(action).startswith("Endast ")
    assert set(permissions.permitted_admin(role)) == {a.value for a, r in ADMIN_EXPECTED.items() if role in r}


@pytest.mark.parametrize("action", list(PartnerAction))
@pytest.mark.parametrize("purpose", ["read", "read_contact", "home_visit", "", "admin"])
def test_a_partner_may_what_the_grants_purpose_allows(purpose: str, action: PartnerAction) -> None:
    assert permissions.partner_may(purpose, action) is (purpose in PARTNER_EXPECTED[action])
    assert set(PARTNER_EXPECTED) == set(PartnerAction)


@pytest.mark.parametrize("role", ["partner", "log_reviewer"])
def test_partners_and_log_reviewers_see_no_ward_and_do_no_clinical_action(role: str) -> None:
    assert permissions.permitted(role) == ()
    assert permissions.permitted_equipment(role) == ()
    assert not permissions.may_see_ward(role, ["avd-norr"], "avd-norr")
    assert not permissions.may_see_ward(role, [], "avd-norr")


def test_no_two_kinds_of_action_share_a_value() -> None:
    kinds = (Action, EquipmentAction, AdminAction, PatientAction, PartnerAction)
    values = [a.value for kind in kinds for a in kind]
    assert len(values) == len(set(values))
