"""The dashboard's one renderer: the Jinja environment that the pages and the live hub share.

A patient card is HTML rendered here and nowhere else (issue 9): the ward page renders its cards with
`_cards.html`'s macros, and the live hub renders a changed card with the very same macro and pushes the
fragment over the websocket, which `dashboard.js` only swaps in. Formatting (clock times in the site's
zone, relative ages, Swedish words) therefore lives in Python alone.

The buttons a card offers depend on the viewer's role (care.permissions): a card asks its viewer only
about `CARD_ACTIONS`, so every websocket whose staff may take the same of those actions is sent the
same fragment, rendered once per change (`CardViewer`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from care.permissions import Action
from dashboard.client_texts import CLIENT_TEXTS
from dashboard.formatting import format_age, format_clock, format_date_time, format_minutes
from dashboard.model import CALL_WITHIN_CHOICES
from dashboard.ward_list import KIT_WORDS, compact_time, compact_values, kit_state

if TYPE_CHECKING:
    from dashboard.model import PatientCard, StaffUser, WardOverview

__all__ = ["CARD_ACTIONS", "CardViewer", "Renderer", "Variant"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
# The only questions `_cards.html` may ask its viewer (`staff.may(...)`).
CARD_ACTIONS = frozenset(
    {
        Action.ACKNOWLEDGE_ALERT,
        Action.SNOOZE_ALERT,
        Action.RESOLVE_ALERT,
        Action.TAKE_CONTACT_REQUEST,
        Action.CLOSE_CONTACT_REQUEST,
    }
)


@dataclass(frozen=True, slots=True)
class CardViewer:
    """What a card's markup depends on about who looks at it: which of CARD_ACTIONS they may take."""

    actions: frozenset[str]

    @classmethod
    def of(cls, staff: StaffUser) -> CardViewer:
        return cls(frozenset(str(action) for action in CARD_ACTIONS if staff.may(action)))

    def may(self, action: str) -> bool:
        # A card asking about any other action would make one fragment wrong for some of the
        # websockets it is shared with: refuse loudly rather than render it.
        if action not in CARD_ACTIONS:
            raise LookupError(f"a patient card asked about {action!r}: add it to rendering.CARD_ACTIONS")
        return action in self.actions


# What one patient's fragment depends on: a card, on the viewer's actions; a row of the compact list
# (None), on nobody's (it carries no actions), so every list-mode websocket shares one rendering.
Variant = CardViewer | None


class Renderer:
    """Templates bound to the site's time zone (HEMMA_SITE_TIMEZONE)."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        env = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True
        )
        env.globals["clock"] = lambda at, ref=None: format_clock(at, ref or _now(), zone)
        env.globals["age_text"] = lambda at, ref=None: format_age(at, ref or _now())
        env.globals["date_time"] = lambda at: format_date_time(at, zone)
        env.globals["minutes_text"] = format_minutes
        env.globals["client_texts"] = CLIENT_TEXTS
        env.globals["call_within_choices"] = CALL_WITHIN_CHOICES
        env.globals["compact_values"] = compact_values
        env.globals["kit_state"] = kit_state
        env.globals["iso"] = compact_time
        env.globals["kit_words"] = KIT_WORDS
        self.env = env
        self._cards: Any = env.get_template("_cards.html").module
        self._list: Any = env.get_template("_list.html").module

    def templates(self) -> Jinja2Templates:
        """The same environment for the HTML pages (FastAPI's TemplateResponse)."""
        return Jinja2Templates(env=self.env)

    def card(self, card: PatientCard, now: datetime, viewer: CardViewer | StaffUser) -> str:
        """One patient's `<article class="patient">`, exactly as the ward page renders it."""
        return _versioned(str(self._cards.patient_card(card, now, viewer)).strip())

    def row(self, card: PatientCard, now: datetime) -> str:
        """One patient's `<tr>` of the compact list, exactly as the ward page renders it."""
        return _versioned(str(self._list.patient_row(card, now)).strip())

    def fragment(self, card: PatientCard, now: datetime, variant: Variant) -> str:
        """A card for a viewer's variant, or the list's row (variant None)."""
        return self.row(card, now) if variant is None else self.card(card, now, variant)

    def ward_parts(self, overview: WardOverview, now: datetime) -> dict[str, str]:
        """The ward page's other live parts, by element id: the counts in the header and the time of
        the newest update (the contents that replace those elements' children)."""
        return {
            "ward-summary": str(self._cards.ward_summary(overview)).strip(),
            "updated-at": format_clock(overview.at, now, self.zone),
            "total-n": str(len(overview.patients)),  # "Visar 12 av 500": the ward's whole count
        }


def _versioned(html: str) -> str:
    """The fragment with `data-v`, a digest of its own HTML, in its first tag: a page sent a fragment it
    already shows (the websocket's first snapshot, just after the page's own render, or after a
    reconnect) sees that without parsing it, and leaves the card alone."""
    digest = hashlib.blake2b(html.encode(), digest_size=8).hexdigest()
    head, marker, rest = html.partition(" data-patient-id=")
    if not marker:
        raise ValueError("a patient fragment without data-patient-id")
    return f'{head} data-v="{digest}"{marker}{rest}'


def _now() -> datetime:
    return datetime.now(UTC)
