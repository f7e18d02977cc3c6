"""Live ward updates: one LISTEN connection, coalesced re-queries, a bounded queue per websocket.

Flow: ingest commits and calls pg_notify('hemma_events', core.events.encode(event)). The listener
task only parses (core.events.parse: typed events) and records what changed (never queries), so it
keeps up with any burst. The flush task wakes (at once after a quiet spell, else no sooner than
`coalesce_s` after its last round, gathering the burst), re-reads the touched patients once, and
offers each websocket of the ward a delta. Snapshots for newly connected
websockets are made by the same task, so every client sees snapshot then deltas in the order the
database state was read.

What is pushed is HTML: each changed card rendered once per variant (dashboard.rendering, the page's
own macros: a card per viewer's actions, or the compact list's row) and shared by every websocket of
that variant. Each websocket has its page's view (dashboard.ward_view: cards or list, filters, search,
from its URL and from the page's "view" messages): it is sent the patients its view shows, a patient
who stops matching is removed, one who starts matching enters; a changed view gets a fresh snapshot
from the ward as the hub keeps it.

A client whose queue is full is closed (1013), never sent a thinned-out stream: it
reconnects and gets a complete snapshot. Patient data is never lost, only re-read.

A websocket lives no longer than its session: its session and account are re-checked with every
delta, at once when any session is revoked (migration 0006's trigger announces it as a "sessions"
event), and at least every SESSION_RECHECK_S seconds in any case; a revoked or expired session or a
disabled account closes it with 4401, removed ward access with 4403.

A card also changes with no event at all: its NEWS2 when a value it counts grows too old for its
freshness window (`News2Summary.fresh_until`), and its text when time passes ("12 min sedan", a
snooze running out: dashboard.card_times). The hub remembers when that happens for every card it has
sent and re-reads the patient then, so a chip never stays "complete" on stale values and an age never
stays "nyss". Every websocket is told which patients it is shown, and the access log has each of
them (once per websocket) before anything is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql
from starlette.websockets import WebSocket, WebSocketDisconnect

from core.events import Event, EventRejected, SessionsChanged, VitalsChanged, parse
from core.redact import summary
from core.settings import get_settings
from dashboard.access_log import WARD_OVERVIEW, AccessEntry, entries_for, write_access_log
from dashboard.card_times import next_change
from dashboard.live_state import (
    PRIMER_TTL_S,
    Changes,
    DeltaRound,
    Outgoing,
    PageMark,
    PagePrimer,
    Subscriber,
    WardState,
    dumps,
    snapshot_message,
    view_message,
)
from dashboard.metrics import DashboardMetrics
from dashboard.model import PatientCard, StaffUser, WardOverview
from dashboard.queries import (
    fetch_patient_cards,
    fetch_ward,
    fetch_ward_overview,
    patients_touched,
)
from dashboard.rendering import CardViewer, Renderer, Variant
from dashboard.sessions import ActiveSession, live_sessions
from dashboard.ward_view import WardView
from storage.db import NOTIFY_CHANNEL

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 10.0
# A card is re-read this long after its NEWS2 values' window ends (and never sooner than
# NEWS2_REREAD_MIN_S from now, should the database's clock lag this process's).
NEWS2_REREAD_MARGIN_S = 1.0
NEWS2_REREAD_MIN_S = 2.0
# The longest a websocket outlives its session's revocation when no "sessions" event reaches us.
SESSION_RECHECK_S = 30.0
# Close codes (4000-4999 are ours; the page's JavaScript knows them).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_UNKNOWN_WARD = 4404
CLOSE_BAD_VIEW = 4400  # the websocket's URL names a filter or view that does not exist
CLOSE_TOO_SLOW = 1013  # "try again later": reconnect for a fresh snapshot
CLOSE_SERVER_ERROR = 1011
CLOSE_GOING_AWAY = 1001


class LiveHub:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        metrics: DashboardMetrics,
        *,
        coalesce_s: float = 0.1,
        queue_size: int = 64,
        heartbeat_s: float = 15.0,
        session_recheck_s: float = SESSION_RECHECK_S,
        renderer: Renderer | None = None,
    ) -> None:
        self.pool = pool
        self.renderer = renderer or Renderer(get_settings().site_zone())
        self.metrics = metrics
        self.coalesce_s = coalesce_s
        self.queue_size = queue_size
        self.heartbeat_s = heartbeat_s
        self.session_recheck_s = session_recheck_s
        self._next_recheck = time.time() + session_recheck_s
        self.listening = asyncio.Event()
        self._by_ward: dict[str, set[Subscriber]] = defaultdict(set)
        self._changes = Changes()
        self._awaiting_snapshot: list[Subscriber] = []
        self._wards: dict[str, WardState] = {}  # the watched wards as last read
        # patient id -> when (epoch s) its card changes by time alone and must be re-read.
        self._due: dict[uuid.UUID, float] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Event counters (per ward; events naming no ward; LISTEN connections) and the ward pages' reads
        # waiting for their websockets (PagePrimer).
        self._ward_events: dict[str, int] = defaultdict(int)
        self._unplaced_events = 0
        self._listener_epoch = 0
        self._primers: dict[str, PagePrimer] = {}

    # --- lifetime ----------------------------------------------------------------------------

    async def start(self, database_url: str, ready_timeout: float = 15.0) -> None:
        self._tasks = [
            asyncio.create_task(self._listen_forever(database_url), name="hemma-dashboard-listen"),
            asyncio.create_task(self._flush_forever(), name="hemma-dashboard-flush"),
        ]
        await asyncio.wait_for(self.listening.wait(), ready_timeout)

    async def stop(self) -> None:
        self._close_all(CLOSE_GOING_AWAY, "Servern startar om")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def _subscribers(self) -> list[Subscriber]:
        return [sub for subs in self._by_ward.values() for sub in subs]

    def _close_all(self, code: int, reason: str) -> None:
        for sub in self._subscribers():
            self._remove(sub)
            sub.close(code, reason)

    def _remove(self, sub: Subscriber) -> None:
        subs = self._by_ward.get(sub.ward_id)
        if subs is not None and sub in subs:
            subs.discard(sub)
            if not subs:
                del self._by_ward[sub.ward_id]
                self._wards.pop(sub.ward_id, None)
            self.metrics.websocket_clients -= 1
        with contextlib.suppress(ValueError):
            self._awaiting_snapshot.remove(sub)

    # --- events in ---------------------------------------------------------------------------

    def note_event(self, payload: str) -> None:
        try:
            event = parse(payload)
        except EventRejected as exc:
            self.metrics.events_rejected += 1
            log.warning("ignored malformed %s notification: %s", NOTIFY_CHANNEL, exc)
            return
        self.metrics.events_received[self._changes.add(event)] += 1
        self._count_event(event)
        self._wake.set()

    def _count_event(self, event: Event) -> None:
        if isinstance(event, SessionsChanged):
            return  # changes who may watch, never what a ward shows
        if event.ward_id is None:
            self._unplaced_events += 1
        else:
            self._ward_events[event.ward_id] += 1
        if isinstance(event, VitalsChanged) and self._primers:
            # A patient moved to another ward is named with that ward: drop any page read holding them.
            moved = set(event.patient_ids)
            for ward_id in [w for w, p in self._primers.items() if moved & p.patient_ids]:
                del self._primers[ward_id]

    # --- a ward page's read, lent to its websocket --------------------------------------------

    def page_mark(self, ward_id: str) -> PageMark | None:
        """Taken by a ward page before it reads the ward; None while the hub is not listening."""
        if not self.listening.is_set():
            return None
        return PageMark(self._ward_events[ward_id], self._unplaced_events, self._listener_epoch)

    def prime(
        self,
        ward_id: str,
        mark: PageMark | None,
        overview: WardOverview,
        now: datetime,
        variant: Variant,
        fragments: dict[uuid.UUID, str],
    ) -> None:
        """Keep a ward page's read and fragments for the websocket it opens next (PagePrimer)."""
        if mark is None or mark != self.page_mark(ward_id):
            return  # something arrived during the page's read: its websocket reads afresh
        self._primers[ward_id] = PagePrimer(
            mark, time.monotonic(), overview, now, variant, fragments,
            frozenset(card.id for card in overview.patients),
        )  # fmt: skip

    def _primer(self, ward_id: str) -> PagePrimer | None:
        """The page read that may stand in for a read of `ward_id` now, taken (used once)."""
        primer = self._primers.pop(ward_id, None)
        if primer is None or time.monotonic() - primer.made_at > PRIMER_TTL_S:
            return None
        if primer.mark != self.page_mark(ward_id):
            return None
        return primer

    async def _listen_forever(self, database_url: str) -> None:
        backoff, connected_before = 0.5, False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(NOTIFY_CHANNEL)))
                    if connected_before:
                        self.metrics.listener_reconnects += 1
                        log.info("LISTEN %s re-established", NOTIFY_CHANNEL)
                    connected_before, backoff = True, 0.5
                    self._listener_epoch += 1
                    self._primers.clear()
                    self.listening.set()
                    async for notify in conn.notifies():
                        self.note_event(notify.payload)
            except psycopg.Error as exc:
                log.warning("LISTEN connection failed (%s); retrying in %.1f s", type(exc).__name__, backoff)
            except Exception as exc:
                # Never let the listener die quietly: pages would look live while nothing arrives.
                log.error("LISTEN loop failed (%s); retrying in %.1f s", summary(exc), backoff)
            if self.listening.is_set():
                # Events may have been missed: every page must reload its snapshot.
                self.listening.clear()
                self._primers.clear()
                self._close_all(CLOSE_SERVER_ERROR, "Förbindelsen till databasen bröts")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    # --- updates out -------------------------------------------------------------------------

    async def _flush_forever(self) -> None:
        last_flush = 0.0
        while True:
            await self._wait_for_work()
            # At most one round per `coalesce_s`: the first change after a quiet spell goes out at once
            # (one change reaches the pages in milliseconds), the rest of a burst waits for the window.
            wait = last_flush + self.coalesce_s - time.monotonic()
            if wait > 0 and not self._awaiting_snapshot:
                await asyncio.sleep(wait)
            last_flush = time.monotonic()
            self._wake.clear()
            self._collect_due()
            self._collect_recheck_due()
            try:
                await self.flush_once()
            except Exception as exc:
                log.error(
                    "live update round failed (%s); closing websockets so they resynchronise", summary(exc)
                )
                self._close_all(CLOSE_SERVER_ERROR, "Tillfälligt fel")

    async def _wait_for_work(self) -> None:
        """Until an event or a new websocket wakes us, the next card changes by time alone, or the
        websockets' sessions are due for their re-check."""
        due = list(self._due.values()) + ([self._next_recheck] if self._by_ward else [])
        if not due:
            await self._wake.wait()
            return
        delay = max(0.0, min(due) - time.time())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()

    def _collect_due(self) -> None:
        now = time.time()
        due = [pid for pid, at in self._due.items() if at <= now]
        for pid in due:
            del self._due[pid]
        self._changes.patient_ids.update(due)

    def _collect_recheck_due(self) -> None:
        now = time.time()
        if not self._by_ward:
            self._next_recheck = now + self.session_recheck_s
        elif now >= self._next_recheck:
            self._changes.sessions = True
            self._next_recheck = now + self.session_recheck_s

    def _schedule_due(self, cards: list[PatientCard] | tuple[PatientCard, ...], now: datetime) -> None:
        """Remember when each card sent to a watched ward changes by time alone and must be re-read:
        its NEWS2 exactly when a value leaves its window, its text (dashboard.card_times) then."""
        soonest = time.time() + NEWS2_REREAD_MIN_S
        for card in cards:
            if card.ward_id not in self._by_ward:
                self._due.pop(card.id, None)
                continue
            at = next_change(card, now, self.renderer.zone).timestamp()
            until = card.news2.fresh_until if card.news2 is not None else None
            if until is not None:
                at = min(at, until.timestamp())
            self._due[card.id] = max(at + NEWS2_REREAD_MARGIN_S, soonest)

    async def flush_once(self) -> None:
        changes, self._changes = self._changes, Changes()
        waiting, self._awaiting_snapshot = self._awaiting_snapshot, []
        if not self._by_ward or not (changes or waiting):
            return
        self.metrics.flushes += 1
        async with self.pool.connection() as conn:
            if waiting:
                await self._send_snapshots(conn, waiting)
            if changes:
                await self._send_deltas(conn, changes)

    def _offer(self, sub: Subscriber, message: str) -> None:
        if sub.closed:
            return
        try:
            sub.queue.put_nowait(message)
        except asyncio.QueueFull:
            log.warning(
                "websocket of staff %s on ward %s cannot keep up; closing it", sub.staff.id, sub.ward_id
            )
            self.metrics.websocket_clients_dropped += 1
            self._remove(sub)
            sub.close(CLOSE_TOO_SLOW, "För långsam anslutning")

    async def _send_snapshots(self, conn: psycopg.AsyncConnection, waiting: list[Subscriber]) -> None:
        by_ward: dict[str, list[Subscriber]] = defaultdict(list)
        for sub in waiting:
            by_ward[sub.ward_id].append(sub)
        for ward_id, subs in by_ward.items():
            now = datetime.now(UTC)
            state = self._wards.get(ward_id)
            primer = self._primer(ward_id) if state is None else None
            if state is not None and all(sub.ready for sub in subs):
                # Only pages that changed their filter: the ward as the hub keeps it is current (every
                # change since it was read has been applied), so no re-read is needed.
                overview = state.overview(now)
            elif primer is not None:
                # Nobody watched the ward, and its page's read a moment ago is still the ward: sent as
                # the page rendered it, scheduled from the time it was rendered for.
                now, overview = primer.now, primer.overview
                self.metrics.snapshots_from_page += 1
                self._wards[ward_id] = WardState.from_overview(overview)
            else:
                ward = await fetch_ward(conn, ward_id)
                if ward is None:
                    for sub in subs:
                        self._remove(sub)
                        sub.close(CLOSE_UNKNOWN_WARD, "Okänd avdelning")
                    continue
                overview = await fetch_ward_overview(conn, ward)
                if ward_id not in self._by_ward:
                    continue  # every websocket of the ward went away meanwhile
                self._wards[ward_id] = WardState.from_overview(overview)
            shown = {
                sub: [c for c in overview.patients if sub.view.shows(c, sub.staff.id, now)] for sub in subs
            }
            entries: list[AccessEntry] = []
            for sub in subs:
                unlogged = [card.id for card in shown[sub] if card.id not in sub.logged]
                entries += entries_for(
                    sub.staff, unlogged, WARD_OVERVIEW, f"ward:{ward_id} websocket", sub.client_address
                )
            self.metrics.access_log_rows += await write_access_log(conn, entries)
            # Rendered once per (variant, view), not per websocket ("Mina" is each member of staff's own).
            messages: dict[tuple[object, ...], str] = {}
            for sub in subs:
                key = (sub.variant, sub.view, sub.staff.id if "mina" in sub.view.filters else None)
                if key not in messages:
                    lent = primer.fragments if primer is not None and primer.variant == sub.variant else None
                    messages[key] = snapshot_message(
                        self.renderer, overview, sub.variant, now, shown[sub], lent
                    )
                ids = {card.id for card in shown[sub]}
                sub.shown, sub.logged, sub.ready = ids, sub.logged | ids, True
                self._offer(sub, messages[key])
            self._schedule_due(overview.patients, now)

    async def _send_deltas(self, conn: psycopg.AsyncConnection, changes: Changes) -> None:
        touched: set[uuid.UUID] = set()
        if changes.patient_ids or changes.alert_ids or changes.gateway_ids:
            touched = await patients_touched(
                conn,
                patient_ids=changes.patient_ids,
                alert_ids=changes.alert_ids,
                gateway_ids=changes.gateway_ids,
            )
        if not touched and not changes.sessions:
            return
        watchers = await self._current_watchers(conn)
        if not touched:
            return
        cards: dict[str, list[PatientCard]] = defaultdict(list)
        fetched = await fetch_patient_cards(conn, patient_ids=touched)
        for card in fetched:
            cards[card.ward_id].append(card)
        for gone in touched - {card.id for card in fetched}:
            self._due.pop(gone, None)  # discharged
        for state in self._wards.values():
            state.update(touched, fetched)
        now = datetime.now(UTC)
        entries: list[AccessEntry] = []
        outgoing: list[Outgoing] = []
        for sub, staff in watchers.items():
            here = cards.get(sub.ward_id, [])
            matching = [card for card in here if sub.view.shows(card, staff.id, now)]
            matching_ids = {card.id for card in matching}
            removed = (touched & sub.shown) - matching_ids
            if not here and not removed:
                continue
            new = matching_ids - sub.logged
            entries += entries_for(
                staff, sorted(new), WARD_OVERVIEW, f"ward:{sub.ward_id} websocket", sub.client_address
            )
            outgoing.append(Outgoing(sub, matching, matching_ids - sub.shown, removed, new))
        # Logged before anything is shown.
        self.metrics.access_log_rows += await write_access_log(conn, entries)
        self._offer_deltas(outgoing, cards, now)
        self._schedule_due(fetched, now)

    def _offer_deltas(
        self, outgoing: list[Outgoing], here: dict[str, list[PatientCard]], now: datetime
    ) -> None:
        deltas = DeltaRound(self.renderer, self._wards, here, now)
        for out in outgoing:
            sub = out.sub
            sub.shown = (sub.shown | {card.id for card in out.shown}) - out.removed
            sub.logged |= out.new
            message = deltas.message(sub.ward_id, sub.variant, out.shown, out.entering, out.removed)
            if message is not None:  # None: nothing this page shows has changed
                self._offer(sub, message)

    async def _current_watchers(self, conn: psycopg.AsyncConnection) -> dict[Subscriber, StaffUser]:
        """Ready websockets whose session is live and whose staff may still see the ward, with the
        account as it is now; the others are closed. One query for all of them."""
        subscribers = [sub for sub in self._subscribers() if sub.ready]
        if not subscribers:
            return {}
        current = await live_sessions(conn, {sub.session_id for sub in subscribers})
        watchers: dict[Subscriber, StaffUser] = {}
        for sub in subscribers:
            staff = current.get(sub.session_id)
            if staff is None:  # logged out, revoked, expired, or the account disabled
                self._remove(sub)
                sub.close(CLOSE_UNAUTHENTICATED, "Sessionen har upphört")
            elif not staff.can_see(sub.ward_id):  # ward access removed since the websocket opened
                self._remove(sub)
                sub.close(CLOSE_FORBIDDEN, "Behörighet saknas")
            elif CardViewer.of(staff) != sub.viewer:
                # The role changed: the page's buttons are another variant's. A fresh snapshot.
                self._remove(sub)
                sub.close(CLOSE_TOO_SLOW, "Behörigheten har ändrats")
            else:
                watchers[sub] = staff
        return watchers

    # --- one websocket -----------------------------------------------------------------------

    async def serve(
        self, websocket: WebSocket, session: ActiveSession, ward_id: str, view: WardView | None = None
    ) -> None:
        """Stream snapshot and deltas to an accepted websocket until it closes or the session ends."""
        sub = self.subscribe(ward_id, session, websocket.client.host if websocket.client else None, view)
        sender = asyncio.create_task(self._send_loop(websocket, sub))
        receiver = asyncio.create_task(self._receive_loop(websocket, sub))
        try:
            done, pending = await asyncio.wait(
                {sender, receiver},
                timeout=max(0.0, session.expires_at - time.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if not done:
                await _close_quietly(websocket, CLOSE_UNAUTHENTICATED, "Sessionen har gått ut")
            elif sender in done and sender.exception() is not None:
                log.info("websocket of staff %s closed: %s", sub.staff.id, type(sender.exception()).__name__)
                await _close_quietly(websocket, CLOSE_TOO_SLOW, "Sändningen misslyckades")
        finally:
            self.unsubscribe(sub)

    def subscribe(
        self, ward_id: str, session: ActiveSession, client_address: str | None, view: WardView | None = None
    ) -> Subscriber:
        """Register a subscriber; its queue gets a snapshot first, then deltas (or None when closed)."""
        sub = Subscriber(
            ward_id, session.staff, session.id, client_address, asyncio.Queue(self.queue_size),
            view=view or WardView(),
        )  # fmt: skip
        self._by_ward[ward_id].add(sub)
        self.metrics.websocket_clients += 1
        self._awaiting_snapshot.append(sub)
        self._wake.set()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._remove(sub)

    def change_view(self, sub: Subscriber, view: WardView) -> None:
        """Staff changed a filter or the search: the page gets a fresh snapshot of what it now shows,
        from the ward as the hub keeps it (no re-read)."""
        if sub.closed or view == sub.view:
            return
        sub.view = view
        if sub not in self._awaiting_snapshot:
            self._awaiting_snapshot.append(sub)
        self._wake.set()

    async def _receive_loop(self, websocket: WebSocket, sub: Subscriber) -> None:
        """Read what the page sends until it goes away: a changed view ({"type": "view", "filters",
        "search"}); anything else, or a view that cannot be read, is ignored."""
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                view = view_message(message.get("text"), sub.view)
                if view is not None:
                    self.change_view(sub, view)

    async def _send_loop(self, websocket: WebSocket, sub: Subscriber) -> None:
        while True:
            try:
                async with asyncio.timeout(self.heartbeat_s):
                    message = await sub.queue.get()
            except TimeoutError:
                # Lets the page tell a quiet ward from a dead connection.
                message = dumps({"type": "heartbeat", "at": datetime.now(UTC).isoformat()})
            else:
                if message is None:
                    await _close_quietly(websocket, sub.close_code, sub.close_reason)
                    return
                self.metrics.pushes += 1
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await websocket.send_text(message)


async def _close_quietly(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await websocket.close(code=code, reason=reason)
