"""When a patient card's text changes with time alone, so that the live hub re-renders it then.

The card says how old each reading is ('nyss', '12 min sedan'), greys a reading out after a day, shows
clock times as '14:03' today but '3 jan 14:03' after midnight, mutes a snoozed alert until its
snooze ends, drops a questionnaire answer's flag a day after it was answered, and counts down to the
next review ("Granskning: om 3 h", then "Granska nu"). The page's script
formats nothing (one renderer, issue 9), so the server re-renders a card when any of that would read
differently. Times are rounded up to TEXT_REFRESH_S so that every
card of a ward falling due in the same half minute is re-read in one round (the page's script
refreshed its ages every 30 s before, so staff see them no later than they used to).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dashboard.model import REPORT_SHOWN_FOR, STALE_AFTER, PatientCard

__all__ = ["TEXT_REFRESH_S", "next_change"]

TEXT_REFRESH_S = 30
_MINUTE, _HOUR, _DAY = 60, 3600, 86400


def next_change(card: PatientCard, now: datetime, zone: ZoneInfo) -> datetime:
    """The first moment after `now` at which the card rendered then would read differently."""
    moments = [_next_local_midnight(now, zone)]  # clock times and the age in years
    for reading in card.vitals:
        moments.append(reading.time + _next_age_step(now - reading.time))
        if not reading.is_stale(now):
            moments.append(reading.time + STALE_AFTER)
    moments += [a.snoozed_until for a in card.alerts if a.snoozed(now) and a.snoozed_until is not None]
    if card.contact is not None:  # "Kontakta mig ... · 12 min sedan" ages like a reading
        moments.append(card.contact.received_at + _next_age_step(now - card.contact.received_at))
    if card.report is not None:  # "Rapporterar: mer andfådd" leaves the card a day after the answer
        moments.append(card.report.at + REPORT_SHOWN_FOR)
    review_text_changes = card.review(now).text_changes_at(now)  # "Granskning: om 3 h" → "Granska nu"
    if review_text_changes is not None:
        moments.append(review_text_changes)
    soonest = min(at for at in moments if at > now)
    return _round_up(soonest)


def _next_age_step(age: timedelta) -> timedelta:
    """How old a reading is when dashboard.formatting.format_age next writes something else."""
    seconds = max(0.0, age.total_seconds())
    if seconds < _MINUTE:
        return timedelta(seconds=_MINUTE)
    if seconds < _HOUR:
        return timedelta(minutes=seconds // _MINUTE + 1)
    if seconds < 48 * _HOUR:
        return timedelta(hours=seconds // _HOUR + 1)
    return timedelta(days=seconds // _DAY + 1)


def _next_local_midnight(now: datetime, zone: ZoneInfo) -> datetime:
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=zone)


def _round_up(at: datetime) -> datetime:
    epoch = at.timestamp()
    return datetime.fromtimestamp(math.ceil(epoch / TEXT_REFRESH_S) * TEXT_REFRESH_S, UTC)
