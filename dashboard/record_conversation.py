"""The patient record's conversation section (issue 10): the messages with the patient and relatives,
with a reply form, and the agreed self-care instructions with when the patient's app showed them.

Opening the record marks the patient's side's messages read by the ward (care.messages
.mark_read_by_staff), for a clinician who may answer them; an administrator reads the thread without
marking it. The record's read itself is logged by the page (dashboard.pages), as every record read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alerts.messages_sv import TREND_TEXT
from alerts.rule import RuleFamily
from alerts.thresholds import threshold_keys
from care import messages, self_care
from care.acting import execute_async
from care.permissions import Action
from care.refusals import Refused
from dashboard.model import StaffUser, threshold_label
from storage.steps import run_async

if TYPE_CHECKING:
    import psycopg

# The rules' names on the self-care form (care.self_care.rule_choices); thresholds are named by
# dashboard.model.threshold_label, trends by alerts.messages_sv. A rule not named here shows its key.
RULE_NAMES_SV = {
    RuleFamily.NEWS2.value: "NEWS2, förhöjd risk",
    RuleFamily.WEIGHT_GAIN.value: "Viktökning på 3 dygn",
    RuleFamily.WEIGHT_BASELINE.value: "Vikten över patientens baslinje",
    RuleFamily.TREND.value: "Någon trend (alla)",
    RuleFamily.MISSING.value: "En planerad mätning uteblir",
    RuleFamily.GATEWAY_OFFLINE.value: "Hemenheten offline",
    RuleFamily.RECEIPTS_OVERDUE.value: "Mätningar når inte fram",
    RuleFamily.DEVICE_SILENT.value: "En mätare hörs inte av",
    RuleFamily.BATTERY_LOW.value: "Lågt batteri i en mätare",
    RuleFamily.CLOCK_NOT_SET.value: "En mätares klocka är inte ställd",
    RuleFamily.CONFIG_NOT_APPLIED.value: "Hemenhetens inställningar är inte tillämpade",
}


def rule_name(rule: str) -> str:
    """A self-care rule as staff name it: "Syremättnad, låg", "Viktökning på 3 dygn"."""
    known = threshold_keys().get(rule)
    if known is not None:
        return threshold_label(known[0], known[1])
    return TREND_TEXT.get(rule) or RULE_NAMES_SV.get(rule) or rule


@dataclass(frozen=True, slots=True)
class InstructionRow:
    instruction: self_care.Instruction
    label: str
    shown: tuple[self_care.Notice, ...]  # the app's showings for alerts of this rule, newest first


@dataclass(frozen=True, slots=True)
class ConversationSection:
    thread: tuple[messages.Message, ...]
    marked_read: int  # the patient's side's messages this opening marked read
    may_write: bool
    message_id: uuid.UUID  # the reply form's key
    instructions: tuple[InstructionRow, ...]
    other_shown: tuple[self_care.Notice, ...]  # showings whose instruction has since been removed
    rule_choices: tuple[tuple[str, str], ...]  # (rule, Swedish name)
    may_set_self_care: bool
    max_body: int = messages.MAX_BODY_LENGTH
    max_text: int = self_care.MAX_TEXT_LENGTH


async def load(
    conn: psycopg.AsyncConnection[Any], staff: StaffUser, patient_id: uuid.UUID
) -> ConversationSection:
    """The section for `staff` (who may see the patient's ward: the page has checked)."""
    marked = 0
    if staff.may(Action.SEND_PATIENT_MESSAGE):
        try:
            marked = await execute_async(conn, messages.mark_read_by_staff(patient_id, staff.username))
        except Refused:
            marked = 0  # e.g. the account was disabled a moment ago: the thread is still shown
    thread = await run_async(conn, messages.thread(patient_id))
    instructions = await run_async(conn, self_care.instructions(patient_id))
    notices = await run_async(conn, self_care.notices(patient_id))
    rows, matched = [], set()
    for instruction in instructions:
        shown = tuple(n for n in notices if self_care.applies(instruction.rule, n.alert_rule))
        matched |= {n.alert_id for n in shown}
        rows.append(InstructionRow(instruction, rule_name(instruction.rule), shown))
    return ConversationSection(
        thread=tuple(thread),
        marked_read=marked,
        may_write=staff.may(Action.SEND_PATIENT_MESSAGE),
        message_id=uuid.uuid4(),
        instructions=tuple(rows),
        other_shown=tuple(n for n in notices if n.alert_id not in matched),
        rule_choices=tuple((rule, rule_name(rule)) for rule in self_care.rule_choices()),
        may_set_self_care=staff.may(Action.SET_SELF_CARE),
    )
