"""The ward's escalation ladder across care providers (issue 12): what it is, who sets it, which step is due.

A ward's physicians (care.permissions.Action.SET_ESCALATION_LADDER) may replace the ward's single
on-call chain with a ladder of ordered steps, each with the minutes it has before the next:

* `home_visit_partner`: every partner (a municipal home-care nurse) holding a grant in force with
  purpose `home_visit` for the patient (care.sharing.grant_in_force, the one decision), for a home
  visit within the step's minutes;
* `ward_physician`: a named physician of the ward, or every physician of the ward (the mobile team);
* `on_call`: today's on-call rota (paging.escalator), from the jourläkare upwards.

An open high alert that nobody on the ward acknowledges within the ward's escalation time (the care
level's, care.care_levels.escalate_after, as without a ladder) is handed to step 1; each step that is
not taken within its minutes hands on to the next. A step with nobody to receive it is skipped at
once, with an alert event saying why. The ladder stops when the ward acknowledges the alert or a
receiver takes the hand-off (care.escalation_handoffs). After the last step nothing more is sent.

`due_step` is that decision, pure (no I/O, no clock): the escalator hands in the ladder, when the
alert became an open high alert, the hand-offs since, and `now`. A ladder is never edited: setting it
writes a new one (migration 0021), so hand-offs keep naming the ladder they followed; a ladder with
no steps means "no ladder", and the ward escalates to the on-call rota exactly as before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from care.acting import Origin, acting_staff, audited, check_ward_access
from care.permissions import Action, Role
from care.refusals import RefusalCode, Refused
from storage.steps import Sql, Steps

MAX_STEPS = 6  # escalation_ladder_steps.position's CHECK
MAX_MINUTES = 240
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{4,22}$")  # escalation_ladders.ward_phone's CHECK


class Target(StrEnum):
    """escalation_ladder_steps.target: who a step hands the alert to."""

    HOME_VISIT_PARTNER = "home_visit_partner"
    WARD_PHYSICIAN = "ward_physician"
    ON_CALL = "on_call"


TARGETS_SV = {
    Target.HOME_VISIT_PARTNER: "Hembesök av kommunens sjuksköterska",
    Target.WARD_PHYSICIAN: "Avdelningens läkare",
    Target.ON_CALL: "Jourläkaren",
}


@dataclass(frozen=True, slots=True)
class LadderStep:
    position: int  # 1..MAX_STEPS
    target: Target
    minutes: int
    physician_id: int | None = None  # ward_physician: a named physician; None: the ward's physicians
    physician_name: str | None = None

    @property
    def label_sv(self) -> str:
        if self.target is Target.WARD_PHYSICIAN and self.physician_name:
            return f"Läkare: {self.physician_name}"
        return TARGETS_SV[self.target]


@dataclass(frozen=True, slots=True)
class Ladder:
    """The ladder in force on a ward (the newest one set); `steps` empty: none."""

    id: int
    ward_id: str
    steps: tuple[LadderStep, ...]
    ward_phone: str | None
    set_by: str  # display name
    set_at: datetime


@dataclass(frozen=True, slots=True)
class StepInput:
    """A step as a physician asks for it: the target, its minutes, and for `ward_physician` optionally a
    physician's username."""

    target: str
    minutes: int
    physician: str | None = None


# --- which step is due: pure -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepDone:
    """What happened at one step of this alert's walk (the hand-off rows of one position)."""

    position: int
    at: datetime  # when it was handed (or skipped)
    skipped: bool  # nobody could receive it
    taken: bool  # a receiver took it


@dataclass(frozen=True, slots=True)
class Due:
    step: LadderStep
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Waiting:
    until: datetime  # when the next step falls due


@dataclass(frozen=True, slots=True)
class Stopped:
    """A receiver took the hand-off at `position`: the ladder goes no further."""

    position: int


@dataclass(frozen=True, slots=True)
class Ended:
    """Every step has been handed or skipped."""


LadderDecision = Due | Waiting | Stopped | Ended


def due_step(
    steps: Sequence[LadderStep],
    *,
    since: datetime,
    first_after_minutes: int,
    done: Sequence[StepDone],
    now: datetime,
) -> LadderDecision:
    """Which step of the ladder is due for an alert at `now`.

    `since`: when the alert became an open high alert (opened, reprioritised to high, or back after a
    snooze); `first_after_minutes`: the ward's (care level's) time before step 1, as without a ladder;
    `done`: the steps handed or skipped since `since`. A skipped step gives the next one no wait.
    """
    for when in (since, now, *(d.at for d in done)):
        if when.tzinfo is None:
            raise ValueError("times must be aware datetimes")
    if not steps:
        raise ValueError("a ladder with no steps is no ladder")
    if first_after_minutes <= 0:
        raise ValueError(f"first_after_minutes must be positive, got {first_after_minutes}")
    taken = [d.position for d in done if d.taken]
    if taken:
        return Stopped(min(taken))
    if not done:
        due_at = since + timedelta(minutes=first_after_minutes)
        return Due(steps[0], due_at) if now >= due_at else Waiting(due_at)
    last = max(done, key=lambda d: (d.position, d.at))
    if last.position >= len(steps):
        return Ended()
    wait = timedelta(0) if last.skipped else timedelta(minutes=steps[last.position - 1].minutes)
    due_at = last.at + wait
    return Due(steps[last.position], due_at) if now >= due_at else Waiting(due_at)


def check_steps(steps: Sequence[StepInput]) -> tuple[StepInput, ...]:
    """The steps as stored: 0 (no ladder) to MAX_STEPS, each a known target with 1-MAX_MINUTES minutes,
    a physician named only on a `ward_physician` step."""
    if len(steps) > MAX_STEPS:
        raise Refused(RefusalCode.LADDER_STEPS, maximum=MAX_STEPS, max_minutes=MAX_MINUTES)
    checked = []
    for step in steps:
        if step.target not in Target._value2member_map_:
            raise Refused(RefusalCode.LADDER_TARGET, target=step.target[:40])
        if not 1 <= step.minutes <= MAX_MINUTES:
            raise Refused(RefusalCode.LADDER_STEPS, maximum=MAX_STEPS, max_minutes=MAX_MINUTES)
        physician = (step.physician or "").strip() or None
        if physician is not None and step.target != Target.WARD_PHYSICIAN:
            raise Refused(RefusalCode.LADDER_TARGET, target=step.target)
        checked.append(StepInput(step.target, step.minutes, physician))
    return tuple(checked)


def check_phone(phone: str | None) -> str | None:
    text = " ".join((phone or "").split())
    if not text:
        return None
    if not _PHONE.match(text):
        raise Refused(RefusalCode.LADDER_PHONE)
    return text


# --- the commands ----------------------------------------------------------------------------------------

_LADDER = (
    "SELECT l.id, l.ward_phone, s.display_name, l.set_at FROM escalation_ladders l"
    " JOIN staff_users s ON s.id = l.set_by WHERE l.ward_id = %s ORDER BY l.set_at DESC, l.id DESC LIMIT 1"
)
_STEPS = (
    "SELECT t.position, t.target, t.minutes, t.physician_id, p.display_name FROM escalation_ladder_steps t"
    " LEFT JOIN staff_users p ON p.id = t.physician_id WHERE t.ladder_id = %s ORDER BY t.position"
)


def ladder(ward_id: str) -> Steps[Ladder | None]:
    """The ladder in force on the ward, or None when none was ever set (not patient data: no log row)."""
    row = yield Sql(_LADDER, (ward_id,), fetch="one")
    if row is None:
        return None
    rows = yield Sql(_STEPS, (row[0],), fetch="all")
    steps = tuple(LadderStep(int(r[0]), Target(r[1]), int(r[2]), r[3], r[4]) for r in rows)
    return Ladder(int(row[0]), ward_id, steps, row[1], str(row[2]), row[3])


def ward_physicians(ward_id: str) -> Steps[list[tuple[int, str, str]]]:
    """(id, username, display name) of the enabled physicians with access to the ward, by name."""
    rows = yield Sql(
        "SELECT s.id, s.username, s.display_name FROM staff_users s JOIN staff_ward_access a"
        " ON a.staff_user_id = s.id WHERE a.ward_id = %s AND s.role = %s AND NOT s.disabled"
        " ORDER BY s.display_name, s.id",
        (ward_id, Role.PHYSICIAN.value),
        fetch="all",
    )
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def set_ladder(
    *, ward_id: str, steps: Sequence[StepInput], phone: str | None, by: str, origin: Origin | None
) -> Steps[Ladder]:
    """Replace the ward's ladder (physicians of the ward; no steps: back to the on-call rota alone).
    Audited: an access-log row with no patient, as an admin's work on the rota is."""
    checked = check_steps(steps)
    ward_phone = check_phone(phone)
    staff = yield from acting_staff(by, Action.SET_ESCALATION_LADDER)
    ward = yield Sql("SELECT 1 FROM wards WHERE id = %s FOR UPDATE", (ward_id,), fetch="one")
    if ward is None:
        raise Refused(RefusalCode.NO_WARD, ward_id=ward_id)
    yield from check_ward_access(staff, ward_id, Action.SET_ESCALATION_LADDER)
    physicians = {username: pid for pid, username, _ in (yield from ward_physicians(ward_id))}
    for step in checked:
        if step.physician is not None and step.physician not in physicians:
            raise Refused(RefusalCode.LADDER_PHYSICIAN, physician=step.physician[:64], ward_id=ward_id)
    (ladder_id,) = yield Sql(
        "INSERT INTO escalation_ladders (ward_id, ward_phone, set_by) VALUES (%s, %s, %s) RETURNING id",
        (ward_id, ward_phone, staff.id),
        fetch="one",
    )
    for position, step in enumerate(checked, start=1):
        yield Sql(
            "INSERT INTO escalation_ladder_steps (ladder_id, position, target, physician_id, minutes)"
            " VALUES (%s, %s, %s, %s, %s)",
            (ladder_id, position, step.target, physicians.get(step.physician or ""), step.minutes),
        )
    words = ",".join(f"{s.target}{'=' + s.physician if s.physician else ''}/{s.minutes}" for s in checked)
    yield from audited(origin, staff=staff, username=staff.username, patient_id=None,
                       action=Action.SET_ESCALATION_LADDER,
                       context=f"ward:{ward_id} ladder:{ladder_id} steps:{words or 'none'}")  # fmt: skip
    done = yield from ladder(ward_id)
    assert done is not None
    return done


def parse_step(text: str) -> StepInput:
    """A step as the CLI writes it: TARGET[=USERNAME]:MINUTES, e.g. ward_physician=asa.berg:10."""
    head, sep, minutes = text.rpartition(":")
    if not sep or not minutes.strip().isdigit() or len(minutes.strip()) > 4:
        raise Refused(RefusalCode.LADDER_STEPS, maximum=MAX_STEPS, max_minutes=MAX_MINUTES)
    target, _, physician = head.partition("=")
    return StepInput(target.strip(), int(minutes), physician.strip() or None)
