"""What the live hub keeps between rounds, and what it pushes: rendered card fragments, never data.

`Changes` adds up the typed events (core.events) that arrive between two flushes. The hub keeps each
watched ward as it last read it (`WardState`): every card, so that a delta can carry
the ward's header counts although it re-read only the touched patients, and the fragments
every ready websocket of a viewer has been sent, so that a card whose HTML did not change (a kit's
repeated "online" status, a re-read that finds nothing new) is not pushed again.

Messages (JSON text frames; `dashboard.js` swaps the HTML in and formats nothing); "cards" are
`<article>` cards or, for a page in list mode, `<tr>` rows, of the patients the page's view shows:
- `{"type": "snapshot", "at", "cards": [html, ...in ward order], "parts": {element id: html}}`
- `{"type": "delta", "at", "cards": [html of changed cards], "removed": [patient id], "parts": {...}}`
Each fragment carries its place in the ward's order (`data-order`, PatientCard.order_key) and a digest
of itself (`data-v`, dashboard.rendering): the page puts a changed card in its place without being
sent the ward's order, and skips a fragment it already shows.
- `{"type": "heartbeat", "at"}` when the ward is quiet.
From the page: `{"type": "view", "filters": [...], "search": "..."}` when staff change the view.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.events import AlertsChanged, Event, GatewayChanged, SessionsChanged, VitalsChanged
from dashboard.model import PatientCard, StaffUser, Ward, WardOverview
from dashboard.rendering import CardViewer, Renderer, Variant
from dashboard.ward_view import ViewRefused, WardView

__all__ = [
    "Changes",
    "DeltaRound",
    "Outgoing",
    "Subscriber",
    "WardState",
    "dumps",
    "snapshot_message",
    "view_message",
]


@dataclass
class Changes:
    """What the events since the last flush touched."""

    patient_ids: set[uuid.UUID] = field(default_factory=set)
    alert_ids: set[int] = field(default_factory=set)
    gateway_ids: set[str] = field(default_factory=set)
    sessions: bool = False  # a session may have ended: re-check every websocket's

    def __bool__(self) -> bool:
        return bool(self.patient_ids or self.alert_ids or self.gateway_ids or self.sessions)

    def add(self, event: Event) -> str:
        """Take in one event; returns its kind (the metric's label)."""
        match event:
            case VitalsChanged(_, patient_ids):
                self.patient_ids.update(patient_ids)
                return "vitals"
            case AlertsChanged(_, alert_ids):
                self.alert_ids.update(alert_ids)
                return "alerts"
            case GatewayChanged(_, gateway_id, _):
                self.gateway_ids.add(gateway_id)
                return "gateway"
            case SessionsChanged():
                self.sessions = True
                return "sessions"
        raise TypeError(f"not an event: {type(event).__name__}")


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def snapshot_message(
    renderer: Renderer,
    overview: WardOverview,
    variant: Variant,
    now: datetime,
    shown: Iterable[PatientCard] | None = None,
    rendered: dict[uuid.UUID, str] | None = None,
) -> str:
    """The page's whole list: the `shown` cards (by default every patient) as cards or list rows; a
    card in `rendered` (the page's own fragments for `variant` at `now`) is not rendered again."""
    cards = overview.patients if shown is None else shown
    rendered = rendered or {}
    return dumps(
        {
            "type": "snapshot",
            "at": now.isoformat(),
            "cards": [rendered.get(card.id) or renderer.fragment(card, now, variant) for card in cards],
            "parts": renderer.ward_parts(overview, now),
        }
    )


# How long a ward page's own read may stand in for its websocket's first snapshot (PagePrimer).
PRIMER_TTL_S = 10.0


@dataclass(frozen=True, slots=True)
class PageMark:
    """Where the hub's event counters stood when a ward page began its read: the page's read can stand
    in for a snapshot only if no event that could touch the ward has arrived since."""

    ward: int  # events naming this ward
    unplaced: int  # events naming no ward
    listener: int  # LISTEN (re)connections: one between mark and use means events may have been lost


@dataclass(frozen=True, slots=True)
class PagePrimer:
    """A ward page's read and its rendered fragments, kept for a few seconds so that the websocket the
    page opens next is sent the very same snapshot instead of reading and rendering 500 patients again
    (the page then leaves every card alone, data-v). Used only while nothing could have changed: no
    event for the ward, or naming no ward, or for one of its patients, since the page began its read."""

    mark: PageMark
    made_at: float  # time.monotonic()
    overview: WardOverview
    now: datetime  # the time the fragments were rendered for
    variant: Variant
    fragments: dict[uuid.UUID, str]
    patient_ids: frozenset[uuid.UUID]


@dataclass(eq=False)
class Subscriber:
    """One websocket watching one ward."""

    ward_id: str
    staff: StaffUser
    session_id: int  # staff_sessions.id, never the cookie's secret
    client_address: str | None
    queue: asyncio.Queue[str | None]
    shown: set[uuid.UUID] = field(default_factory=set)  # patients the page shows now
    logged: set[uuid.UUID] = field(default_factory=set)  # patients access-logged in this session
    ready: bool = False  # its snapshot has been queued; deltas may follow
    close_code: int = 1000
    close_reason: str = ""
    closed: bool = False
    # Cards or the compact list, its filters and search (dashboard.ward_view): which patients it shows.
    view: WardView = field(default_factory=WardView)
    # Which fragments it is sent: the card actions its staff's role may take.
    viewer: CardViewer = field(init=False)

    def __post_init__(self) -> None:
        self.viewer = CardViewer.of(self.staff)

    @property
    def variant(self) -> Variant:
        """The fragments this page shows: cards for its viewer, or list rows (None, the same for all)."""
        return None if self.view.mode == "list" else self.viewer

    def close(self, code: int, reason: str) -> None:
        """Ask the sender to close; anything still queued is dropped (the client will resnapshot)."""
        if self.closed:
            return
        self.closed, self.close_code, self.close_reason = True, code, reason
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


@dataclass
class WardState:
    """One watched ward as the hub last read it."""

    ward: Ward
    cards: dict[uuid.UUID, PatientCard]
    # Per viewer: the fragment of each card that every ready websocket of that viewer was sent in a
    # delta. A snapshot starts a new state (its websockets saw other fragments), so nothing is skipped
    # that some page of the ward does not show.
    sent: dict[Variant, dict[uuid.UUID, str]] = field(default_factory=dict)
    # The header's parts as last sent in a delta (None after a snapshot): a page whose filter shows none
    # of the changed patients still gets the ward's new counts.
    parts: dict[str, str] | None = None

    @classmethod
    def from_overview(cls, overview: WardOverview) -> WardState:
        return cls(overview.ward, {card.id: card for card in overview.patients})

    def overview(self, now: datetime) -> WardOverview:
        return WardOverview(self.ward, tuple(sorted(self.cards.values(), key=PatientCard.sort_key)), now)

    def update(self, touched: Iterable[uuid.UUID], fetched: Iterable[PatientCard]) -> None:
        """Take in a re-read: the touched patients not fetched for this ward left it (discharged, moved)."""
        here = {card.id: card for card in fetched if card.ward_id == self.ward.id}
        for pid in touched:
            if pid in here:
                self.cards[pid] = here[pid]
            elif self.cards.pop(pid, None) is not None:
                for fragments in self.sent.values():
                    fragments.pop(pid, None)

    def changed_fragments(
        self, renderer: Renderer, variant: Variant, cards: Iterable[PatientCard], now: datetime
    ) -> dict[uuid.UUID, str]:
        """The cards' fragments for `variant` that differ from what was last sent; remembered as sent."""
        sent = self.sent.setdefault(variant, {})
        changed = {}
        for card in cards:
            html = renderer.fragment(card, now, variant)
            if sent.get(card.id) != html:
                sent[card.id] = html
                changed[card.id] = html
        return changed


class DeltaRound:
    """One flush's deltas: each changed patient rendered once per (ward, variant) and each distinct
    message encoded once, however many websockets receive it. Filters (dashboard.ward_view) choose
    which of the ward's changed patients a page is sent: one that starts matching enters (its fragment
    is sent even if unchanged), one that stops matching is removed. A card that moved in the ward's
    order is among the changed ones (its `data-order` changed), so the order itself is never sent."""

    def __init__(
        self,
        renderer: Renderer,
        wards: dict[str, WardState],
        here: dict[str, list[PatientCard]],
        now: datetime,
    ) -> None:
        self.renderer, self.wards, self.here, self.now = renderer, wards, here, now
        self._changed: dict[tuple[str, Variant], dict[uuid.UUID, str]] = {}
        self._rendered: dict[tuple[Variant, uuid.UUID], str] = {}
        self._heads: dict[str, tuple[dict[str, str], bool]] = {}
        self._encoded: dict[tuple[str, Variant, tuple[str, ...], tuple[str, ...]], str | None] = {}

    def message(
        self,
        ward_id: str,
        variant: Variant,
        shown: list[PatientCard],
        entering: set[uuid.UUID],
        removed: set[uuid.UUID],
    ) -> str | None:
        """The delta for a websocket of `ward_id` whose page shows the changed patients `shown` (in ward
        order; `entering` of them new to it) and must drop `removed`; None when nothing it shows changed."""
        if (ward_id, variant) not in self._changed:
            changed = self.wards[ward_id].changed_fragments(
                self.renderer, variant, self.here.get(ward_id, ()), self.now
            )
            self._changed[ward_id, variant] = changed
        changed = self._changed[ward_id, variant]
        sent = [card for card in shown if card.id in changed or card.id in entering]
        gone = tuple(sorted(str(pid) for pid in removed))
        key = (ward_id, variant, tuple(str(card.id) for card in sent), gone)
        if key in self._encoded:
            return self._encoded[key]
        parts, parts_changed = self._head(ward_id)
        message = None
        if sent or gone or parts_changed:
            fragments = [changed.get(card.id) or self._fragment(card, variant) for card in sent]
            body = {"type": "delta", "at": self.now.isoformat(), "cards": fragments, "removed": list(gone)}
            message = dumps(body | {"parts": parts})
        self._encoded[key] = message
        return message

    def _fragment(self, card: PatientCard, variant: Variant) -> str:
        if (variant, card.id) not in self._rendered:
            self._rendered[variant, card.id] = self.renderer.fragment(card, self.now, variant)
        return self._rendered[variant, card.id]

    def _head(self, ward_id: str) -> tuple[dict[str, str], bool]:
        """The ward's header parts and whether those changed since the last delta."""
        if ward_id not in self._heads:
            state = self.wards[ward_id]
            parts = self.renderer.ward_parts(state.overview(self.now), self.now)
            parts_changed = parts != state.parts
            state.parts = parts
            self._heads[ward_id] = (parts, parts_changed)
        return self._heads[ward_id]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One websocket's part of a delta round."""

    sub: Subscriber
    shown: list[PatientCard]  # the changed patients its view shows, in the ward's order
    entering: set[uuid.UUID]  # of those, the ones its page does not show yet
    removed: set[uuid.UUID]  # shown until now, no longer (discharged, or stopped matching)
    new: set[uuid.UUID]  # not yet in the access log for this websocket


# A page's "view" message is a few filter words and a search of at most MAX_SEARCH_LENGTH characters.
MAX_VIEW_MESSAGE = 2000


def view_message(text: str | None, current: WardView) -> WardView | None:
    """The view a page's `{"type": "view", "filters", "search"}` asks for; None for anything else."""
    if text is None or len(text) > MAX_VIEW_MESSAGE:
        return None
    try:
        message = json.loads(text)
        if not isinstance(message, dict) or message.get("type") != "view":
            return None
        return WardView.from_message(message, current.mode)
    except (ValueError, ViewRefused):
        return None
