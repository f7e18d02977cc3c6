"""The ward's nursing shifts, for the handover summary (care.handover, issue 11).

Three shifts a day in the site's zone (HEMMA_SITE_TIMEZONE): dag 07-15, kväll 15-21, natt 21-07.
Swedish wards overlap their shifts by a quarter to half an hour (dag 07:00-15:30, kväll 15:00-21:30,
natt 21:15-07:15) because that overlap is when the report is given; the report is about the shift
that ends, so Hemma cuts the day at the start of each overlap. Shifts that do not overlap put every
change in exactly one summary, which is what a summary "since the shift began" needs.

The boundaries are local wall-clock times, so a shift is as long as the clock says: the natt over
the spring change (2026-03-29) is 9 hours, over the autumn change (2026-10-25) 11. No boundary falls
in the hour the clock skips or repeats (02:00-03:00), so every boundary is one unambiguous instant.

A shift is named by its start date and its word, `2026-12-06-natt` (the night from the 6th to the
7th), as `?skift=` on the page and `--shift` at the command line. Pure: no clock, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from care.refusals import RefusalCode, Refused

# (word, local start); each shift ends where the next begins.
SHIFT_STARTS: tuple[tuple[str, time], ...] = (("dag", time(7)), ("kvall", time(15)), ("natt", time(21)))
SHIFT_WORDS_SV = {"dag": "Dag", "kvall": "Kväll", "natt": "Natt"}
_NAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})-(dag|kvall|natt)")


@dataclass(frozen=True, slots=True)
class Shift:
    day: date  # the local date the shift starts on
    word: str  # 'dag' | 'kvall' | 'natt'
    starts_at: datetime  # UTC
    ends_at: datetime  # UTC

    @property
    def name(self) -> str:
        return f"{self.day.isoformat()}-{self.word}"

    def label_sv(self, zone: ZoneInfo) -> str:
        """Like "Natt 6/12 21:00-07:00" (with an en dash), in the site's zone."""
        start, end = self.starts_at.astimezone(zone), self.ends_at.astimezone(zone)
        return f"{SHIFT_WORDS_SV[self.word]} {start.day}/{start.month} {start:%H:%M}–{end:%H:%M}"


def shift_of(day: date, word: str, zone: ZoneInfo) -> Shift:
    index = [w for w, _ in SHIFT_STARTS].index(word)
    start = datetime.combine(day, SHIFT_STARTS[index][1], zone)
    if index + 1 < len(SHIFT_STARTS):
        end = datetime.combine(day, SHIFT_STARTS[index + 1][1], zone)
    else:
        end = datetime.combine(day + timedelta(days=1), SHIFT_STARTS[0][1], zone)
    return Shift(day, word, start.astimezone(UTC), end.astimezone(UTC))


def current_shift(now: datetime, zone: ZoneInfo) -> Shift:
    """The shift `now` falls in (before 07:00 local: the night that began the evening before)."""
    local = now.astimezone(zone)
    day, clock = local.date(), local.time()
    if clock < SHIFT_STARTS[0][1]:
        return shift_of(day - timedelta(days=1), SHIFT_STARTS[-1][0], zone)
    word = [w for w, start in SHIFT_STARTS if start <= clock][-1]
    return shift_of(day, word, zone)


def previous_shift(shift: Shift, zone: ZoneInfo) -> Shift:
    return current_shift(shift.starts_at - timedelta(seconds=1), zone)


def recent_shifts(now: datetime, zone: ZoneInfo, count: int) -> list[Shift]:
    """The current shift and the `count - 1` before it, newest first (the page's chooser)."""
    shifts = [current_shift(now, zone)]
    while len(shifts) < count:
        shifts.append(previous_shift(shifts[-1], zone))
    return shifts


def parse_shift(name: str, now: datetime, zone: ZoneInfo) -> Shift:
    """A shift by its name; refused when malformed, not a date, or not yet begun."""
    found = _NAME.fullmatch(name.strip())
    if found is None:
        raise Refused(RefusalCode.HANDOVER_SHIFT)
    try:
        day = date(int(found[1]), int(found[2]), int(found[3]))
        if not 2000 <= day.year <= 2999:  # far outside any ward's history (and datetime's range)
            raise ValueError(day.year)
    except ValueError:
        raise Refused(RefusalCode.HANDOVER_SHIFT) from None
    shift = shift_of(day, found[4], zone)
    if shift.starts_at > now:
        raise Refused(RefusalCode.HANDOVER_SHIFT)
    return shift
