"""The agreed self-care plan, carried out by the same rule (issue 10).

The team writes the action agreed with the patient for one of the patient's alert rules ("Om vikten
ökat mer än 2 kg på 3 dagar: ta en extra vätskedrivande tablett och ring oss"). While an alert of that
rule is live (open or acknowledged: what the ward sees, never the engine's pending hold), the patient's
app shows the instruction: at the same moment as the nurse's alert, because it is the same alert.

`live_instructions` is the one decision of which instruction applies to which live alert, and it
records the first showing of each (`self_care_notices`: the alert, the text shown, the device). That
row and the alert's own events are the one audit trail: staff read on the record when the patient was
shown what, beside the alert.

The text shown for an alert is the one first shown for it (the notice's snapshot): an instruction
edited while the alert is live applies from the next alert, so the patient is never shown one thing
and the record another.

An instruction names either an alert key (`weight_gain_3d`, `spo2_low`, `missing:body_weight`) or a
keyed family as a whole (`missing`: any planned measurement left undone). Keys and families are the
alert engine's own (alerts.rule.family_of), less those that are never the patient's to act on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from alerts.rule import RuleFamily, family_of
from care.acting import CareSteps, Origin, audited, staff_for_patient
from care.messages import clean_text
from care.permissions import Action
from care.refusals import RefusalCode, Refused
from storage.steps import Sql, Steps

MAX_TEXT_LENGTH = 500
# Alarms no patient acts on: the ward's own paging channels, and the alarm that the ward has not
# answered the patient (the patient is the one waiting).
NOT_THE_PATIENTS = frozenset({RuleFamily.NOTIFICATION_FAILING, RuleFamily.CONTACT_REQUEST_OPEN})
LIVE_STATES = ("open", "acknowledged")


def check_rule(rule: str) -> str:
    """An alert key or a keyed family a patient's alert can have; SELF_CARE_RULE otherwise."""
    name = rule.strip()
    try:
        family = RuleFamily(name)
    except ValueError:
        family = None
    if family is not None and not family.keyed and family is not RuleFamily.THRESHOLD:
        family = None  # a family with one key: the key is the name, checked below
    if family is None:
        try:
            family = family_of(name)
        except ValueError:
            raise Refused(RefusalCode.SELF_CARE_RULE, rule=name[:80]) from None
    if family in NOT_THE_PATIENTS or len(name) > 80:
        raise Refused(RefusalCode.SELF_CARE_RULE, rule=name[:80])
    return name


def rule_choices() -> tuple[str, ...]:
    """The rules a record's form offers, in a fixed order: every threshold key, every other family's
    key, and the keyed families as a whole (the trend keys the engine knows by name, too). A family
    added to the engine is offered without a change here."""
    from alerts.messages_sv import TREND_TEXT
    from alerts.thresholds import threshold_keys

    choices: list[str] = list(threshold_keys())
    for family in RuleFamily:
        if family in NOT_THE_PATIENTS or family is RuleFamily.THRESHOLD:
            continue
        if family is RuleFamily.TREND:
            choices += sorted(TREND_TEXT)
        choices.append(family.value)
    return tuple(choices)


def applies(rule: str, alert_key: str) -> bool:
    """Whether an instruction for `rule` (a key or a family) applies to an alert of `alert_key`."""
    if rule == alert_key:
        return True
    try:
        return family_of(alert_key).value == rule
    except ValueError:
        return False


def check_text(text: str) -> str:
    checked = clean_text(
        text,
        maximum=MAX_TEXT_LENGTH,
        empty=RefusalCode.SELF_CARE_TEXT_EMPTY,
        too_long=RefusalCode.SELF_CARE_TEXT_TOO_LONG,
    )
    assert checked is not None
    return checked


@dataclass(frozen=True, slots=True)
class Instruction:
    rule: str
    text: str
    set_by: str  # display name
    set_at: datetime


@dataclass(frozen=True, slots=True)
class InstructionSet:
    patient_id: uuid.UUID
    rule: str
    set_at: datetime


@dataclass(frozen=True, slots=True)
class LiveInstruction:
    """An instruction the patient's app shows now, for the live alert it applies to."""

    alert_id: int
    rule: str  # the instruction's rule
    text: str  # as first shown for this alert
    opened_at: datetime  # the alert's
    shown_at: datetime  # first shown to the patient


def _context(rule: str, what: str) -> str:
    return f"self_care:{rule} {what}"


def set_instruction(
    *, patient_id: uuid.UUID, rule: str, text: str, by: str, origin: Origin | None
) -> CareSteps[InstructionSet]:
    """Write (or rewrite) the agreed action for `rule`."""
    key = check_rule(rule)
    body = check_text(text)
    staff, _ = yield from staff_for_patient(by, Action.SET_SELF_CARE, patient_id)
    row = yield Sql(
        "INSERT INTO self_care_instructions (patient_id, rule, text, set_by) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (patient_id, rule) DO UPDATE SET text = EXCLUDED.text, set_by = EXCLUDED.set_by,"
        " set_at = now() RETURNING set_at",
        (patient_id, key, body, staff.id),
        fetch="one",
    )
    yield from audited(origin, staff=staff, username=by, patient_id=patient_id,
                       action=Action.SET_SELF_CARE, context=_context(key, "set"))  # fmt: skip
    return InstructionSet(patient_id, key, row[0])


def clear_instruction(
    *, patient_id: uuid.UUID, rule: str, by: str, origin: Origin | None
) -> CareSteps[InstructionSet]:
    """Remove the instruction for `rule` (NO_SELF_CARE when there is none). Notices already shown stay."""
    staff, _ = yield from staff_for_patient(by, Action.SET_SELF_CARE, patient_id, must_be_in_care=False)
    row = yield Sql(
        "DELETE FROM self_care_instructions WHERE patient_id = %s AND rule = %s RETURNING now()",
        (patient_id, rule),
        fetch="one",
    )
    if row is None:
        raise Refused(RefusalCode.NO_SELF_CARE, patient_id=patient_id, rule=rule[:80])
    yield from audited(origin, staff=staff, username=by, patient_id=patient_id,
                       action=Action.SET_SELF_CARE, context=_context(rule, "cleared"))  # fmt: skip
    return InstructionSet(patient_id, rule, row[0])


def instructions(patient_id: uuid.UUID) -> Steps[list[Instruction]]:
    """The patient's instructions, by rule. The caller has logged the read."""
    rows = yield Sql(
        "SELECT i.rule, i.text, s.display_name, i.set_at FROM self_care_instructions i"
        " JOIN staff_users s ON s.id = i.set_by WHERE i.patient_id = %s ORDER BY i.rule",
        (patient_id,),
        fetch="all",
    )
    return [Instruction(*r) for r in rows]


def _pick(rules: list[str], alert_key: str) -> str | None:
    """The instruction for an alert: its own key's before its family's."""
    if alert_key in rules:
        return alert_key
    return next((rule for rule in rules if applies(rule, alert_key)), None)


def live_instructions(
    patient_id: uuid.UUID, *, device_id: int | None, now: datetime | None = None
) -> Steps[list[LiveInstruction]]:
    """The instructions that apply to the patient's live alerts now, each once (the oldest alert's),
    recording the first showing of each alert's (`self_care_notices`, with `device_id`). Run in the
    transaction of the app's logged read (Idag)."""
    found = yield Sql(
        "SELECT rule, text FROM self_care_instructions WHERE patient_id = %s ORDER BY rule",
        (patient_id,),
        fetch="all",
    )
    if not found:
        return []
    texts = {r[0]: r[1] for r in found}
    alerts = yield Sql(
        "SELECT id, rule, opened_at FROM alerts WHERE patient_id = %s AND state = ANY(%s)"
        " ORDER BY opened_at, id",
        (patient_id, list(LIVE_STATES)),
        fetch="all",
    )
    shown: dict[str, LiveInstruction] = {}
    for alert_id, alert_key, opened_at in alerts:
        rule = _pick(list(texts), alert_key)
        if rule is None:
            continue
        yield Sql(
            "INSERT INTO self_care_notices (alert_id, patient_id, text, shown_at, patient_device_id)"
            " VALUES (%s, %s, %s, coalesce(%s, now()), %s) ON CONFLICT (alert_id) DO NOTHING",
            (alert_id, patient_id, texts[rule], now, device_id),
        )
        notice = yield Sql(
            "SELECT text, shown_at FROM self_care_notices WHERE alert_id = %s", (alert_id,), fetch="one"
        )
        if rule not in shown:
            shown[rule] = LiveInstruction(int(alert_id), rule, notice[0], opened_at, notice[1])
    return list(shown.values())


@dataclass(frozen=True, slots=True)
class Notice:
    """A showing on the staff record: which alert, what text, when the patient's app first showed it."""

    alert_id: int
    alert_rule: str
    alert_message: str
    alert_state: str
    text: str
    shown_at: datetime


def notices(patient_id: uuid.UUID, limit: int = 20) -> Steps[list[Notice]]:
    """The patient's newest showings, for the record. The caller has logged the read."""
    rows = yield Sql(
        "SELECT n.alert_id, a.rule, a.message, a.state, n.text, n.shown_at FROM self_care_notices n"
        " JOIN alerts a ON a.id = n.alert_id WHERE n.patient_id = %s ORDER BY n.shown_at DESC LIMIT %s",
        (patient_id, limit),
        fetch="all",
    )
    return [Notice(*r) for r in rows]
