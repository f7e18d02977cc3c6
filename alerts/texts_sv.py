"""The Swedish words staff read about alert priorities and lifecycle steps: one home for each text.

Staff screens, notifications and the alert history (alert_events.note) are Swedish, like the rest of
the ward's tools. Code looks texts up here by enum or code; nothing recovers meaning from a text.
"""

from __future__ import annotations

from datetime import timedelta

from alerts.model import Priority

__all__ = [
    "NOTE_CONDITION_ENDED",
    "NOTE_HOLD_ELAPSED",
    "NOTE_SNOOZE_EXPIRED",
    "NOTE_WITHDRAWN",
    "PRIORITY_PHRASE_SV",
    "PRIORITY_SV",
    "note_from_pending",
    "note_hold",
    "note_reprioritised",
    "priority_sv",
]

# A priority as a heading or a badge ("Hög"), on the dashboard and in a notification's subject.
PRIORITY_SV: dict[Priority, str] = {Priority.HIGH: "Hög", Priority.MEDIUM: "Medel", Priority.LOW: "Låg"}
# A priority inside a sentence ("Högsta snooze för medelprioritet är 4 h"); Swedish writes
# "medelprioritet" as one word, so this is not PRIORITY_SV + " prioritet".
PRIORITY_PHRASE_SV: dict[Priority, str] = {
    Priority.HIGH: "hög prioritet",
    Priority.MEDIUM: "medelprioritet",
    Priority.LOW: "låg prioritet",
}

# Notes of the engine's alert_events rows (read by staff in the alert history).
NOTE_HOLD_ELAPSED = "hålltiden passerade"
NOTE_SNOOZE_EXPIRED = "snooze slut, tillståndet kvarstår"
NOTE_WITHDRAWN = "tillståndet upphörde under hålltiden"
NOTE_CONDITION_ENDED = "tillståndet upphörde"


def priority_sv(priority: Priority) -> str:
    """The priority as a word inside a sentence: "hög", "medel", "låg"."""
    return PRIORITY_SV[priority].lower()


def note_hold(hold: timedelta) -> str:
    return f"hålltid {hold}"


def note_from_pending(was: Priority) -> str:
    return f"från väntande {priority_sv(was)}"


def note_reprioritised(was: Priority) -> str:
    return f"från {priority_sv(was)}"
