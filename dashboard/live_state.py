"""What the live hub keeps between rounds, and what it pushes: rendered card fragments, never data.

`Changes` adds up the typed events (core.events) that arrive between two flushes. The hub keeps each
watched ward as it last read it (`WardState`): every card, so that a delta can carry
the ward's order and header counts although it re-read only the touched patients, and the fragments
every ready websocket of a viewer has been sent, so that a card whose HTML did not change (a kit's
repeated "online" status, a re-read that finds nothing new) is not pushed again.

Messages (JSON text frames; `dashboard.js` swaps the HTML in and formats nothing):
- `{"type": "snapshot", "at", "cards": [html, ...in ward order], "parts": {element id: html}}`
- `{"type": "delta", "at", "cards": [html of changed cards], "removed": [patient id],
  "order"?: [patient id, ...the whole ward, when it changed], "parts": {...}}`
- `{"type": "heartbeat", "at"}` when the ward is quiet.
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
from dashboard.rendering import CardViewer, Renderer

__all__ = ["Changes", "DeltaRound", "Subscriber", "WardState", "dumps", "snapshot_message"]


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


def snapshot_message(renderer: Renderer, overview: WardOverview, viewer: CardViewer, now: datetime) -> str:
    return dumps(
        {
            "type": "snapshot",
            "at": now.isoformat(),
            "cards": [renderer.card(card, now, viewer) for card in overview.patients],
            "parts": renderer.ward_parts(overview, now),
        }
    )


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
    # Which fragments it is sent: the card actions its staff's role may take.
    viewer: CardViewer = field(init=False)

    def __post_init__(self) -> None:
        self.viewer = CardViewer.of(self.staff)

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
    sent: dict[CardViewer, dict[uuid.UUID, str]] = field(default_factory=dict)
    # The order the ward's pages show, as last sent in a delta; None after a snapshot, whose websockets
    # and the older ones may differ, so that the next delta sends it to all of them.
    order: list[str] | None = None

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
        self, renderer: Renderer, viewer: CardViewer, cards: Iterable[PatientCard], now: datetime
    ) -> list[str]:
        """The cards' fragments for `viewer` that differ from what was last sent; remembered as sent."""
        sent = self.sent.setdefault(viewer, {})
        changed = []
        for card in cards:
            html = renderer.card(card, now, viewer)
            if sent.get(card.id) != html:
                sent[card.id] = html
                changed.append(html)
        return changed


class DeltaRound:
    """One flush's deltas: each changed card rendered once per (ward, viewer) and each distinct message
    encoded once, however many websockets receive it."""

    def __init__(self, renderer: Renderer, wards: dict[str, WardState], now: datetime) -> None:
        self.renderer, self.wards, self.now = renderer, wards, now
        self._fragments: dict[tuple[str, CardViewer], list[str]] = {}
        self._heads: dict[str, tuple[list[str] | None, dict[str, str]]] = {}
        self._encoded: dict[tuple[str, CardViewer, tuple[str, ...]], str | None] = {}

    def message(
        self, ward_id: str, viewer: CardViewer, here: list[PatientCard], removed: set[uuid.UUID]
    ) -> str | None:
        """The delta for a websocket of `ward_id` and `viewer` whose page shows `removed` patients
        that left; None when nothing it shows has changed. `here` is the same for the whole ward."""
        gone = tuple(sorted(str(pid) for pid in removed))
        key = (ward_id, viewer, gone)
        if key in self._encoded:
            return self._encoded[key]
        state = self.wards[ward_id]
        if (ward_id, viewer) not in self._fragments:
            self._fragments[ward_id, viewer] = state.changed_fragments(self.renderer, viewer, here, self.now)
        changed = self._fragments[ward_id, viewer]
        if ward_id not in self._heads:
            overview = state.overview(self.now)
            ids = [str(card.id) for card in overview.patients]
            # The whole ward's order only when it moved (50 ids are most of a one-card delta); then
            # every websocket of the ward gets it, whether or not a card of its variant changed.
            moved = ids != state.order
            state.order = ids
            self._heads[ward_id] = (ids if moved else None, self.renderer.ward_parts(overview, self.now))
        order, parts = self._heads[ward_id]
        message = None
        if changed or gone or order is not None:
            body = {"type": "delta", "at": self.now.isoformat(), "cards": changed, "removed": list(gone)}
            message = dumps(body | ({"order": order} if order is not None else {}) | {"parts": parts})
        self._encoded[key] = message
        return message
