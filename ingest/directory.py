"""Which patient held a kit when a reading was taken: the kit's assignments (migration 0016), cached
so every batch does not ask the database.

A reading belongs to the patient whose assignment covers its effective time (issue 11), so a kit
handed from A to B while A's readings are still in the box's queue puts them on A. The cache holds
each kit's assignment intervals and answers only what staleness cannot make wrong:

- An ended assignment never changes (a trigger of migration 0016 forbids it): a time inside it is
  that patient's for good.
- The open assignment covers a time up to the moment the intervals were read (`loaded_at`, the
  database's clock): an assignment is ended only at the moment its take-back or discharge is
  recorded (care.kit_assignments never back-dates an end), so an end written after that read lies
  after it, and every time up to `loaded_at` still belongs to the holder. The one window left is a
  take-back transaction that began before the read and committed after it: a reading taken during
  those milliseconds stays with the patient the kit is being taken from.
- Anything else (a time after `loaded_at`, or one no cached interval covers: a new lend may reach
  back LEND_CLOCK_LEEWAY before it was recorded) reads the kit's intervals again before answering,
  so a reading is dead-lettered as uncovered only on what the database says in this transaction.

So no notification is needed to invalidate the cache on a handover. `ttl_s` only bounds how long a
patient's ward and whether they are in care (used for events and the alert engine's scope; the
writer checks the latter again, ingest.writer) may be stale.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from core.contract import MAX_READING_AGE

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True, slots=True)
class Enrolment:
    """The patient a kit's reading or press belongs to."""

    gateway_id: str
    patient_id: uuid.UUID
    ward_id: str
    in_care: bool = True  # False: discharged since (their readings are the record, raise no alerts)


@dataclass(frozen=True, slots=True)
class Assignment:
    enrolment: Enrolment
    starts_at: datetime
    ends_at: datetime | None

    def covers(self, at: datetime) -> bool:
        return self.starts_at <= at and (self.ends_at is None or at < self.ends_at)


@dataclass(frozen=True, slots=True)
class _KitHistory:
    fetched: float  # time.monotonic() when read
    loaded_at: datetime  # the database's clock when read
    assignments: tuple[Assignment, ...]


class GatewayDirectory:
    def __init__(self, ttl_s: float = 30.0) -> None:
        self._ttl_s = ttl_s
        self._cache: dict[str, _KitHistory] = {}
        self.reloads = 0  # kits read again for a time the cache could not answer (a counter)

    def prefetch(self, conn: psycopg.Connection, gateway_ids: set[str]) -> None:
        """Read the intervals of the kits not cached (or cached longer than `ttl_s`), in one query."""
        now = time.monotonic()
        stale = [
            gw for gw in gateway_ids if (h := self._cache.get(gw)) is None or now - h.fetched >= self._ttl_s
        ]
        if stale:
            self._load(conn, stale)

    def holder_at(self, conn: psycopg.Connection, gateway_id: str, at: datetime) -> Enrolment | None:
        """The patient whose assignment of `gateway_id` covers `at`, or None: nobody held the kit."""
        history = self._cache.get(gateway_id)
        if history is None:
            self._load(conn, [gateway_id])
            history = self._cache[gateway_id]
        else:
            for a in history.assignments:
                if a.covers(at) and (a.ends_at is not None or at <= history.loaded_at):
                    return a.enrolment
            self.reloads += 1
            self._load(conn, [gateway_id])
            history = self._cache[gateway_id]
        # Freshly read in this transaction: the open assignment also covers a time just ahead of the
        # database's clock (a device clock a little fast, which the contract tolerates).
        return next((a.enrolment for a in history.assignments if a.covers(at)), None)

    def _load(self, conn: psycopg.Connection, gateway_ids: list[str]) -> None:
        # statement_timestamp() is no later than this statement's snapshot: every assignment ended
        # before it is in the rows read. Intervals older than readings are accepted are not needed.
        rows = conn.execute(
            "SELECT g.id, a.patient_id, p.ward_id, p.discharged_at IS NULL, a.starts_at, a.ends_at,"
            " statement_timestamp() FROM gateways g LEFT JOIN kit_assignments a ON a.gateway_id = g.id"
            " AND (a.ends_at IS NULL OR a.ends_at > statement_timestamp() - %s)"
            " LEFT JOIN patients p ON p.id = a.patient_id WHERE g.id = ANY(%s)",
            (MAX_READING_AGE, gateway_ids),
        ).fetchall()
        fetched = time.monotonic()
        found: dict[str, list[Assignment]] = {}
        loaded_at: datetime | None = None
        for gw, patient, ward, in_care, starts, ends, at in rows:
            loaded_at = at
            found.setdefault(gw, [])
            if patient is not None:
                found[gw].append(Assignment(Enrolment(gw, patient, ward, bool(in_care)), starts, ends))
        if loaded_at is None:
            loaded_at = conn.execute("SELECT statement_timestamp()").fetchone()[0]  # type: ignore[index]
        for gw in gateway_ids:
            self._cache[gw] = _KitHistory(fetched, loaded_at, tuple(found.get(gw, ())))

    def ever_lent(self, gateway_id: str) -> bool:
        """Whether the kit (read by `prefetch` or `holder_at`) was lent to anyone within the time
        readings are accepted for: "nobody's at that time" differs from "an unknown or idle kit"."""
        history = self._cache.get(gateway_id)
        return history is not None and bool(history.assignments)

    def lookup(self, conn: psycopg.Connection, gateway_ids: set[str]) -> dict[str, Enrolment | None]:
        """Each kit's holder now, if in care (a status carries no time of its own but its arrival)."""
        self.prefetch(conn, gateway_ids)
        return {gw: self._holder_now(gw) for gw in gateway_ids}

    def _holder_now(self, gateway_id: str) -> Enrolment | None:
        history = self._cache[gateway_id]
        open_ = (a.enrolment for a in history.assignments if a.ends_at is None and a.enrolment.in_care)
        return next(open_, None)

    def forget(self) -> None:
        self._cache.clear()
