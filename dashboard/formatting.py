"""How the dashboard writes values, times and names for Swedish staff.

Pure text from values: the view models (dashboard.model, dashboard.patient_record) and the renderer's
Jinja filters (dashboard.rendering) call these, so a time or a value reads the same on every screen.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from care.texts_sv import minutes_sv
from core.settings import get_settings

_MONTHS = ("jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec")
# Sorting names the Swedish way: å, ä, ö come after z.
_SWEDISH_ORDER = str.maketrans({"å": "{", "ä": "|", "ö": "}", "æ": "|", "ø": "}"})


def display_zone() -> ZoneInfo:
    """The site's zone (HEMMA_SITE_TIMEZONE, core.settings) for callers not handed one: a form's time
    without an offset, a patient's age. The app's renderer is given its own Settings' zone."""
    return get_settings().site_zone()


def swedish_sort_key(name: str) -> str:
    return name.casefold().translate(_SWEDISH_ORDER)


def format_value(value: float, decimals: int) -> str:
    """97 or 37,2: fixed decimals from core.vitals and the Swedish decimal comma."""
    return f"{value:.{decimals}f}".replace(".", ",")


def format_clock(at: datetime | None, now: datetime, zone: ZoneInfo | None = None) -> str:
    """'14:03' today, '12 nov 14:03' another day, in the site's local time."""
    if at is None:
        return ""
    zone = zone or display_zone()
    local, today = at.astimezone(zone), now.astimezone(zone)
    clock = f"{local.hour:02d}:{local.minute:02d}"
    if local.date() == today.date():
        return clock
    return f"{local.day} {_MONTHS[local.month - 1]} {clock}"


def format_date_time(at: datetime | None, zone: ZoneInfo | None = None) -> str:
    """'23 nov 2026 14:03' in the site's local time, for dates on the patient record."""
    if at is None:
        return ""
    local = at.astimezone(zone or display_zone())
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year} {local.hour:02d}:{local.minute:02d}"


def format_age(at: datetime | None, now: datetime) -> str:
    """How long ago: 'nyss', '5 min sedan', '3 tim sedan', '4 d sedan' (dashboard.card_times says when
    the text next changes, so the live hub re-renders a card then)."""
    if at is None:
        return ""
    seconds = (now - at).total_seconds()
    if seconds < 60:
        return "nyss"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min sedan"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} tim sedan"
    return f"{hours // 24} d sedan"


# Lengths of time as staff say them: care's words, the same in a refusal and on a card.
format_minutes = minutes_sv
