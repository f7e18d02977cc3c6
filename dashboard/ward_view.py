"""How a member of staff looks at the ward overview (issue 11, "Scan the ward"): as cards or as a list,
which patients (filters, search), and the one decision of whether a patient is shown.

The same `WardView` is read from the page's query parameters (`?vy=lista&visa=larm&sok=anna`, so that a
link can be shared and the page works without JavaScript), from the websocket's URL and from the
"view" message the page's script sends when staff change a filter (dashboard.live). `shows` decides
for one card; the page, the JSON and the live hub all ask it, so a patient who stops matching leaves
every page at once and one who starts matching appears.

The filters, combined with AND (each narrows):
- `mina` (Mina): patients this member of staff has taken on and not finished. Hemma assigns no nurse
  to a patient (the rota is per ward), so "mine" is what the user has acted on: a live alert they
  acknowledged or snoozed, a contact request they took that is still open, or a review ("granskad")
  they made within the last shift (`SHIFT`, queries' `attending_staff`). It empties as the work is
  done: an alert ends, a request is closed, the shift passes.
- `larm` (Med larm): a live physiological alert, open or acknowledged (technical alarms have theirs).
- `news2` (NEWS2 ≥ 5): a complete score of 5 or more, or an incomplete one whose present values
  already add up to 5 (a lower bound that can only rise: RCP's urgent-response threshold).
- `teknik` (Teknik): a live technical alarm, the home unit offline, or no home unit at all (nothing
  can be measured: as much a technical matter as a kit gone silent).
- `granska` (Att granska): due for review within dashboard.ward_round.DUE_SOON, the same patients as
  "Dagens rond" lists (care.care_levels decides when a review is due).

Search matches every word typed against the name (case, accents of width and compatibility forms
folded: NFKC), or, when the query is a personnummer's digits (with or without century, dash or plus),
against the patient's personnummer in any of those forms.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlencode

from dashboard.model import PatientCard
from dashboard.ward_round import DUE_SOON

__all__ = [
    "FILTERS",
    "MAX_SEARCH_LENGTH",
    "SHIFT",
    "ViewRefused",
    "WardView",
    "personal_number_forms",
]

Mode = Literal["cards", "list"]
# The query parameter's words (Swedish URLs staff may read and share) and the modes they name.
MODE_WORDS: dict[str, Mode] = {"kort": "cards", "lista": "list"}
# Filter key -> the label on its checkbox (ward.html), in the order shown.
FILTERS: dict[str, str] = {
    "mina": "Mina",
    "larm": "Med larm",
    "news2": "NEWS2 ≥ 5",
    "teknik": "Teknik",
    "granska": "Att granska",
}
NEWS2_THRESHOLD = 5
# How long a review keeps a patient on its reviewer's "Mina": one shift of three a day, as the red
# level's review interval (care.care_levels) counts them.
SHIFT = timedelta(hours=8)
MAX_SEARCH_LENGTH = 100
_PERSONAL_NUMBER_QUERY = re.compile(r"[0-9][0-9\s+-]*")


class ViewRefused(ValueError):
    """A view that cannot be read (an unknown filter, a search too long); the text is Swedish and
    never repeats the input."""


@dataclass(frozen=True, slots=True)
class WardView:
    mode: Mode = "cards"
    filters: frozenset[str] = frozenset()
    search: str = ""

    @classmethod
    def parse(
        cls, mode: str | None, filters: Iterable[str], search: str | None, default_mode: str = ""
    ) -> WardView:
        """From the query's words; `default_mode` is the browser's remembered choice (a cookie)."""
        chosen = MODE_WORDS.get(mode or default_mode, "cards")
        if mode and mode not in MODE_WORDS:
            raise ViewRefused("Okänd vy")
        keys = frozenset(filters)
        if not keys <= FILTERS.keys():
            raise ViewRefused("Okänt filter")
        text = " ".join((search or "").split())
        if len(text) > MAX_SEARCH_LENGTH:
            raise ViewRefused(f"Sökningen får vara högst {MAX_SEARCH_LENGTH} tecken")
        return cls(chosen, keys, text)

    @classmethod
    def from_message(cls, message: Mapping[str, object], mode: Mode) -> WardView:
        """The page script's {"type": "view", "filters": [...], "search": "..."} (mode stays the page's)."""
        filters, search = message.get("filters", []), message.get("search", "")
        if not isinstance(filters, list) or not all(isinstance(f, str) for f in filters):
            raise ViewRefused("Okänt filter")
        if not isinstance(search, str):
            raise ViewRefused("Ogiltig sökning")
        word = next(w for w, m in MODE_WORDS.items() if m == mode)
        return cls.parse(word, filters, search)

    @property
    def mode_word(self) -> str:
        return next(w for w, m in MODE_WORDS.items() if m == self.mode)

    @property
    def narrowed(self) -> bool:
        return bool(self.filters or self.search)

    def query(self, mode: Mode | None = None) -> str:
        """The query string of this view (another mode's, for the toggle's links)."""
        word = next(w for w, m in MODE_WORDS.items() if m == (mode or self.mode))
        params = [("vy", word)] + [("visa", f) for f in FILTERS if f in self.filters]
        if self.search:
            params.append(("sok", self.search))
        return urlencode(params)

    def shows(self, card: PatientCard, staff_id: int, now: datetime) -> bool:
        """Whether the overview shows `card` to staff `staff_id` in this view."""
        return all(_FILTER_TESTS[key](card, staff_id, now) for key in self.filters) and self._found(card)

    def _found(self, card: PatientCard) -> bool:
        if not self.search:
            return True
        if _PERSONAL_NUMBER_QUERY.fullmatch(self.search):
            digits = re.sub(r"\D", "", self.search)
            return _personal_number_matches(
                digits, personal_number_forms(card.personal_number, card.birth_year)
            )
        name = _folded(card.name)
        return all(word in name for word in _folded(self.search).split())


def _folded(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def personal_number_forms(stored: str | None, birth_year: int | None) -> tuple[str, ...]:
    """The digits a stored personnummer is searched by: YYYYMMDDNNNN when the century is known (stored
    with it, or from the birth year) and YYMMDDNNNN. Stored forms vary (enrolment keeps what was typed)."""
    digits = re.sub(r"\D", "", stored or "")
    if len(digits) == 12:
        return (digits, digits[2:])
    if len(digits) == 10 and birth_year is not None and f"{birth_year:04d}"[2:] == digits[:2]:
        return (f"{birth_year:04d}"[:2] + digits, digits)
    return (digits,) if digits else ()


def _personal_number_matches(query: str, forms: tuple[str, ...]) -> bool:
    if not query or not forms:
        return False
    if len(query) == 12 and not any(len(f) == 12 for f in forms):
        query = query[2:]  # the century is not known here: the rest must match
    return any(query in form for form in forms)


def _mine(card: PatientCard, staff_id: int, now: datetime) -> bool:
    return staff_id in card.attending_staff


def _alerts(card: PatientCard, staff_id: int, now: datetime) -> bool:
    return bool(card.physiological_alerts)


def _news2(card: PatientCard, staff_id: int, now: datetime) -> bool:
    return card.news2 is not None and card.news2.partial_total >= NEWS2_THRESHOLD


def _technical(card: PatientCard, staff_id: int, now: datetime) -> bool:
    return bool(card.technical_alerts) or card.gateway is None or card.gateway.status == "offline"


def _review(card: PatientCard, staff_id: int, now: datetime) -> bool:
    return card.review(now).due_at <= now + DUE_SOON


_FILTER_TESTS = {"mina": _mine, "larm": _alerts, "news2": _news2, "teknik": _technical, "granska": _review}
