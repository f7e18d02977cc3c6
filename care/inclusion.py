"""A ward's inclusion criteria (inklusionskriterier) and the one decision of whether a checklist admits.

The ward configures the checklist (migration 0017: ordered items, the common five seeded for every new
ward); physicians replace it (care.permissions.Action.SET_INCLUSION_CRITERIA) on the ward's settings
page or with `hemma ward criteria`. Everyone with access to the ward reads it.

At admission (care.admission) every item must be confirmed. A physician may admit over an item that is
not confirmed, with a reason that the admission keeps beside the items left open (a patient who
cannot consent today but whose relative and physician judge home care right, a patient just outside
the team's area): the physician answers for the medical judgement, and the record shows it. A nurse
cannot override; she asks the physician.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from care.acting import ActingStaff, acting_staff, check_ward_access
from care.messages import clean_text
from care.permissions import Action, Role
from care.refusals import RefusalCode, Refused
from storage.steps import Sql, Steps

MAX_CRITERIA = 20  # ward_inclusion_criteria.position's CHECK
MIN_ITEM_LENGTH, MAX_ITEM_LENGTH = 3, 200
MIN_OVERRIDE_REASON, MAX_OVERRIDE_REASON = 3, 300


@dataclass(frozen=True, slots=True)
class Checklist:
    """What an admission records: the items confirmed, those not, and the override's reason."""

    confirmed: tuple[str, ...]
    not_confirmed: tuple[str, ...]
    override_reason: str | None


def criteria(ward_id: str) -> Steps[list[str]]:
    """The ward's checklist, in order (not patient data: no access-log row)."""
    rows = yield Sql(
        "SELECT item FROM ward_inclusion_criteria WHERE ward_id = %s ORDER BY position",
        (ward_id,),
        fetch="all",
    )
    return [str(r[0]) for r in rows]


def check_items(items: Sequence[str]) -> tuple[str, ...]:
    """The checklist as stored: 1 to MAX_CRITERIA items, each 3-200 characters once cleaned, distinct;
    empty lines are dropped (the settings form is one item per line)."""
    cleaned = []
    for item in items:
        text = clean_text(item, maximum=MAX_ITEM_LENGTH, empty=None, too_long=RefusalCode.INCLUSION_ITEMS)
        if text is None:
            continue
        if len(text) < MIN_ITEM_LENGTH or "\n" in text:
            raise Refused(RefusalCode.INCLUSION_ITEMS, maximum=MAX_ITEM_LENGTH)
        cleaned.append(text)
    if not 1 <= len(cleaned) <= MAX_CRITERIA:
        raise Refused(RefusalCode.INCLUSION_ITEMS, maximum=MAX_ITEM_LENGTH)
    if len(set(cleaned)) != len(cleaned):
        raise Refused(RefusalCode.INCLUSION_ITEMS, maximum=MAX_ITEM_LENGTH)
    return tuple(cleaned)


def set_criteria(*, ward_id: str, items: Sequence[str], by: str) -> Steps[tuple[str, ...]]:
    """Replace the ward's checklist (physicians of the ward). Admissions keep the words they confirmed,
    so an edit never rewrites what an earlier admission said."""
    checked = check_items(items)
    staff = yield from acting_staff(by, Action.SET_INCLUSION_CRITERIA)
    ward = yield Sql("SELECT 1 FROM wards WHERE id = %s FOR UPDATE", (ward_id,), fetch="one")
    if ward is None:
        raise Refused(RefusalCode.NO_WARD, ward_id=ward_id)
    yield from check_ward_access(staff, ward_id, Action.SET_INCLUSION_CRITERIA)
    yield Sql("DELETE FROM ward_inclusion_criteria WHERE ward_id = %s", (ward_id,))
    for position, item in enumerate(checked, start=1):
        yield Sql(
            "INSERT INTO ward_inclusion_criteria (ward_id, position, item, set_by) VALUES (%s, %s, %s, %s)",
            (ward_id, position, item, staff.id),
        )
    return checked


def decide_checklist(
    items: Sequence[str], confirmed: Sequence[str], override_reason: str | None, staff: ActingStaff
) -> Checklist:
    """Pure: does this checklist admit? `items` is the ward's list now, `confirmed` the items ticked (by
    their words: a list edited since the form was shown is refused, never matched by position)."""
    ticked = set(confirmed)
    if not ticked <= set(items):
        raise Refused(RefusalCode.INCLUSION_CHANGED)
    open_items = tuple(i for i in items if i not in ticked)
    done = tuple(i for i in items if i in ticked)
    reason = None
    if override_reason is not None:
        # The length is this refusal's, with both its bounds (clean_text's would name only the maximum).
        reason = clean_text(override_reason, maximum=len(override_reason), empty=None,
                            too_long=RefusalCode.INCLUSION_OVERRIDE_REASON)  # fmt: skip
        if reason is not None and len(reason) > MAX_OVERRIDE_REASON:
            raise Refused(RefusalCode.INCLUSION_OVERRIDE_REASON, minimum=MIN_OVERRIDE_REASON,
                          maximum=MAX_OVERRIDE_REASON)  # fmt: skip
    if not open_items:
        return Checklist(done, (), None)  # nothing to override: a reason given anyway is not kept
    if staff.role != Role.PHYSICIAN:  # the override is a medical judgement
        raise Refused(RefusalCode.INCLUSION_NOT_CONFIRMED, missing=len(open_items))
    if reason is None or len(reason) < MIN_OVERRIDE_REASON:
        raise Refused(
            RefusalCode.INCLUSION_OVERRIDE_REASON, minimum=MIN_OVERRIDE_REASON, maximum=MAX_OVERRIDE_REASON
        )
    return Checklist(done, open_items, reason)
