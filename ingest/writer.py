"""One database transaction per ingest batch: observations, latest values, devices, the kit's events
(contact requests), dead letters, alerts.

Observations are written with binary COPY into a temporary staging table and moved into
`observations` with ON CONFLICT DO NOTHING on (measurement_id, vital, time), so a message
redelivered after a crash adds nothing; a kit's event is keyed by its `event_id` the same way.
Only the rows actually inserted reach the alert
engine, so a redelivery never raises an alert twice. Everything, alerts included, commits
together; the caller acknowledges the MQTT messages only after `commit` returns.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import psycopg
from psycopg.types.json import Jsonb

from alerts.store import AlertChange
from core.contract import DecodedBatch, GatewayStatus, KitEventBatch
from core.events import Event, GatewayChanged, VitalsChanged
from core.redact import where
from ingest.directory import Enrolment
from ingest.engine import AlertEngine
from storage import rollups
from storage.steps import Notify, Steps, run

if TYPE_CHECKING:
    from ingest.classify import ReceiptEntry

log = logging.getLogger(__name__)

# Dead letters keep the payload for diagnosis; beyond this it is cut (and marked truncated).
DEAD_LETTER_KEEP_BYTES = 1024 * 1024

_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS incoming_observations"
    " (LIKE observations INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_COLUMNS = (
    "time, patient_id, vital, value, unit, quality, measurement_id, gateway_id, device_id, characteristic,"
    " received_at"
)
_TYPES = [
    "timestamptz",
    "uuid",
    "text",
    "float8",
    "text",
    "text[]",
    "uuid",
    "text",
    "text",
    "text",
    "timestamptz",
]
_MOVE = """
WITH ins AS (
    INSERT INTO observations ({columns})
    SELECT {columns} FROM incoming_observations
    ON CONFLICT (measurement_id, vital, time) DO NOTHING
    RETURNING time, patient_id, vital, value, unit, quality
){rollups}, latest AS (
    INSERT INTO latest_vitals AS l (patient_id, vital, time, value, unit, quality)
    SELECT DISTINCT ON (patient_id, vital) patient_id, vital, time, value, unit, quality
    FROM ins ORDER BY patient_id, vital, time DESC
    ON CONFLICT (patient_id, vital) DO UPDATE
        SET time = EXCLUDED.time, value = EXCLUDED.value, unit = EXCLUDED.unit, quality = EXCLUDED.quality
        WHERE l.time <= EXCLUDED.time
)
SELECT time, patient_id, vital, value, quality FROM ins
"""
# The chart rollups (storage.rollups) fed from what `ins` returns, in the same statement: a redelivered
# reading inserts nothing and so adds nothing to them. With TimescaleDB its continuous aggregates do this.
_MOVE_WITH_ROLLUPS = _MOVE.format(
    columns=_COLUMNS, rollups=", rollups AS (" + rollups.upsert_from("ins") + ")"
)
_MOVE_WITHOUT_ROLLUPS = _MOVE.format(columns=_COLUMNS, rollups="")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    gateway_id: str | None
    reason: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class AcceptedBatch:
    batch: DecodedBatch
    enrolment: Enrolment


@dataclass(frozen=True, slots=True)
class AcceptedEvents:
    """A kit's events (the box's button) for its enrolled patient."""

    batch: KitEventBatch
    enrolment: Enrolment


# One row per press, whatever number of times the message arrives (the gateway re-sends until its
# receipt): `event_id` is UNIQUE. requested_at is the box's clock, received_at ingest's.
_INSERT_CONTACT_REQUEST = (
    "INSERT INTO contact_requests (patient_id, gateway_id, event_id, source, reason, requested_at,"
    " received_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING"
)


@dataclass
class CommitResult:
    observations_offered: int = 0
    observations_stored: int = 0
    dead_letters: int = 0
    statuses: int = 0
    alert_changes: list[AlertChange] = field(default_factory=list)
    engine_failures: int = 0
    events_offered: int = 0
    events_stored: int = 0
    receipts: list[ReceiptEntry] = field(default_factory=list)  # to send once committed

    @property
    def duplicates(self) -> int:
        return self.observations_offered - self.observations_stored


class BatchWriter:
    """Owns one autocommit connection and writes each batch in one explicit transaction."""

    def __init__(self, conn: psycopg.Connection, engine: AlertEngine | None = None) -> None:
        if not conn.autocommit:
            # Without autocommit, an implicit transaction would turn `transaction()` into a savepoint.
            raise ValueError("BatchWriter needs an autocommit connection")
        self.conn = conn
        # The engine outlives the connection (its trend windows are in memory): ingest passes its own.
        self.engine = engine or AlertEngine()
        with conn.transaction():
            conn.execute(_STAGE)
            timescale = conn.execute(rollups.ROLLUP_SOURCE_QUERY, (rollups.TIMESCALE_MARKER,)).fetchone()
        self._move = _MOVE_WITHOUT_ROLLUPS if timescale and timescale[0] else _MOVE_WITH_ROLLUPS

    def commit(
        self,
        accepted: list[AcceptedBatch],
        dead: list[DeadLetter],
        statuses: list[tuple[GatewayStatus, Enrolment | None]],
        *,
        now: datetime,
        kit_events: list[AcceptedEvents] | None = None,
    ) -> CommitResult:
        result = CommitResult()
        events: list[Event] = []
        try:
            self._commit(accepted, dead, statuses, result, events, now=now, kit_events=kit_events or [])
        except BaseException:
            self.engine.rolled_back()
            raise
        self.engine.committed()
        return result

    def tick(self, *, now: datetime) -> list[AlertChange]:
        """The engine's time-driven rules in one transaction (alerts.store announces what changed)."""
        try:
            with self.conn.transaction():
                changes = self.engine.tick(self.conn, now=now)
        except BaseException:
            self.engine.rolled_back()
            raise
        return changes

    def _commit(
        self,
        accepted: list[AcceptedBatch],
        dead: list[DeadLetter],
        statuses: list[tuple[GatewayStatus, Enrolment | None]],
        result: CommitResult,
        events: list[Event],
        *,
        now: datetime,
        kit_events: list[AcceptedEvents],
    ) -> None:
        with self.conn.transaction():
            if kit_events:
                events += self._store_kit_events(kit_events, result, now)
            if accepted:
                inserted = self._store_observations(accepted, result)
                self._touch_devices(accepted, now)
                ward_of = {item.enrolment.patient_id: item.enrolment.ward_id for item in accepted}
                events += _vitals_events(inserted, ward_of)
                # A discharged patient's readings from while they held the kit are their record, but
                # raise nothing (issue 11): only patients in care, as this transaction sees them, reach
                # the engine (a discharge that commits later ends their alerts itself).
                in_care = self._in_care(ward_of)
                judged = [row for row in inserted if row[1] in in_care]
                # alerts.store announces the alerts it changes, in the engine's savepoint.
                result.alert_changes = self._run_alert_engine(judged, in_care, now, result)
            if dead:
                self._store_dead_letters(dead)
                result.dead_letters = len(dead)
            for status, enrolment in statuses:
                self._store_status(status, now)
                ward_id = enrolment.ward_id if enrolment else None
                events.append(GatewayChanged(ward_id, status.gateway_id, status.state))
            result.statuses = len(statuses)
            run(self.conn, _announce(events))

    def _in_care(self, ward_of: dict[uuid.UUID, str]) -> dict[uuid.UUID, str]:
        rows = self.conn.execute(
            "SELECT id FROM patients WHERE id = ANY(%s) AND discharged_at IS NULL", (list(ward_of),)
        ).fetchall()
        return {r[0]: ward_of[r[0]] for r in rows}

    def _store_observations(self, accepted: list[AcceptedBatch], result: CommitResult) -> list[tuple]:
        with self.conn.cursor() as cur:
            with cur.copy(f"COPY incoming_observations ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_TYPES)
                for item in accepted:
                    gw, patient = item.batch.gateway_id, item.enrolment.patient_id
                    for m in item.batch.measurements:
                        for o in m.observations:
                            copy.write_row(
                                (
                                    m.effective_time,
                                    patient,
                                    o.vital.value,
                                    o.value,
                                    o.unit,
                                    list(o.quality),
                                    m.id,
                                    gw,
                                    m.device_id,
                                    m.characteristic,
                                    m.received_time,
                                )
                            )
                            result.observations_offered += 1
            inserted = cur.execute(self._move).fetchall()
        result.observations_stored = len(inserted)
        return inserted

    def _store_kit_events(
        self, accepted: list[AcceptedEvents], result: CommitResult, now: datetime
    ) -> list[Event]:
        """Each press as an open contact request (a copy already stored adds nothing); the dashboards
        re-read the cards of the patients who have a new one."""
        new: dict[str, set[uuid.UUID]] = defaultdict(set)
        with self.conn.cursor() as cur:
            for item in accepted:
                patient, ward = item.enrolment.patient_id, item.enrolment.ward_id
                for e in item.batch.events:
                    cur.execute(
                        _INSERT_CONTACT_REQUEST,
                        (patient, item.batch.gateway_id, e.event_id, e.source, e.kind, e.at, now),
                    )
                    result.events_offered += 1
                    if cur.rowcount:
                        result.events_stored += 1
                        new[ward].add(patient)
            cur.execute(
                "UPDATE gateways SET last_message_at = %s WHERE id = ANY(%s)",
                (now, sorted({item.batch.gateway_id for item in accepted})),
            )
        return [VitalsChanged(ward, tuple(sorted(p, key=str))) for ward, p in new.items()]

    def _touch_devices(self, accepted: list[AcceptedBatch], now: datetime) -> None:
        """Devices heard from, and whether each one's newest reading came with an unset clock.

        "Newest" is by effective_time (a flagged reading's is the gateway's receive time, so
        stored records with real, older times uploaded after it do not clear the flag);
        clock_checked_at is that time and only moves forward, so a late, older reading never
        overwrites what a newer one said.
        """
        from core.contract import CLOCK_NOT_SET_FLAG

        seen: dict[tuple[str, str], set[str]] = defaultdict(set)
        newest: dict[tuple[str, str], tuple[datetime, datetime, bool]] = {}
        for item in accepted:
            for m in item.batch.measurements:
                key = (item.batch.gateway_id, m.device_id)
                seen[key].add(m.characteristic)
                flagged = any(CLOCK_NOT_SET_FLAG in o.quality for o in m.observations)
                # On a tie the flagged reading wins.
                candidate = (m.effective_time, m.received_time, flagged)
                if key not in newest or candidate > newest[key]:
                    newest[key] = candidate
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO devices (gateway_id, device_id, characteristics, first_seen_at, last_seen_at,"
                " clock_not_set, clock_checked_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (gateway_id, device_id) DO UPDATE SET"
                " last_seen_at = EXCLUDED.last_seen_at, characteristics = ARRAY(SELECT DISTINCT unnest("
                " devices.characteristics || EXCLUDED.characteristics) ORDER BY 1),"
                " clock_not_set = CASE WHEN devices.clock_checked_at IS NULL"
                " OR devices.clock_checked_at <= EXCLUDED.clock_checked_at"
                " THEN EXCLUDED.clock_not_set ELSE devices.clock_not_set END,"
                " clock_checked_at = GREATEST(devices.clock_checked_at, EXCLUDED.clock_checked_at)",
                [
                    (gw, dev, sorted(chars), now, now, newest[(gw, dev)][2], newest[(gw, dev)][0])
                    for (gw, dev), chars in seen.items()
                ],
            )
            cur.execute(
                "UPDATE gateways SET last_message_at = %s WHERE id = ANY(%s)",
                (now, sorted({item.batch.gateway_id for item in accepted})),
            )

    def _run_alert_engine(
        self, inserted: list[tuple], ward_of: dict[uuid.UUID, str], now: datetime, result: CommitResult
    ) -> list[AlertChange]:
        """The engine in a savepoint of the batch's transaction. A fault in a rule (a bug, or SQL the
        database refuses) must neither lose the readings nor have them dead-lettered as if they were
        bad: the savepoint is rolled back, the readings commit, the failure is counted and logged
        (exception type and place only: a message could quote patient data). A lost connection is
        not the engine's fault and goes to the caller, which retries the whole batch."""
        if not inserted:
            return []
        try:
            with self.conn.transaction():
                return self.engine.after_readings(self.conn, inserted, ward_of, now=now)
        except psycopg.OperationalError:
            raise
        except Exception as exc:
            result.engine_failures += 1
            log.error(
                "alert engine failed on a batch of %d readings (%s at %s); readings stored, alerts not"
                " evaluated for them",
                len(inserted), type(exc).__name__, where(exc),
            )  # fmt: skip
            return []

    def _store_dead_letters(self, dead: list[DeadLetter]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO dead_letters (topic, gateway_id, reason, payload, payload_size, truncated)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (
                        d.topic[:512],
                        d.gateway_id,
                        d.reason,
                        d.payload[:DEAD_LETTER_KEEP_BYTES],
                        len(d.payload),
                        len(d.payload) > DEAD_LETTER_KEEP_BYTES,
                    )
                    for d in dead
                ],
            )

    def _store_status(self, status: GatewayStatus, now: datetime) -> None:
        """The kit's state, and the device facts it carries (battery levels).

        A device's battery level is replaced only by one read at the same time or later (a
        retained status re-delivered after a newer one changes nothing); a battery_at ahead of
        ingest's clock counts as now. A device first known from a status was heard then.
        """
        self.conn.execute(
            "UPDATE gateways SET status = %s, status_at = %s, software = COALESCE(%s, software)"
            " WHERE id = %s",
            (status.state, status.at or now, status.software, status.gateway_id),
        )
        if status.state == "online":
            self._store_unconfirmed(status, now)
            self._store_kit_config_report(status, now)
        facts = []
        for d in status.devices or ():
            if d.battery_percent is not None and d.battery_at is not None:
                at = min(d.battery_at, now)
                facts.append((status.gateway_id, d.device_id, at, at, d.battery_percent, at))
        if facts:
            with self.conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO devices (gateway_id, device_id, first_seen_at, last_seen_at,"
                    " battery_percent, battery_at) VALUES (%s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (gateway_id, device_id) DO UPDATE SET"
                    " battery_percent = EXCLUDED.battery_percent, battery_at = EXCLUDED.battery_at"
                    " WHERE devices.battery_at IS NULL OR devices.battery_at <= EXCLUDED.battery_at",
                    facts,
                )

    def _store_kit_config_report(self, status: GatewayStatus, now: datetime) -> None:
        """The configuration version the kit applied and the unknown devices it sees (issue 10). An
        "online" status without them says none (or comes from a gateway before kit configuration);
        "offline" statuses leave them. The version is stored as reported, not the highest seen: a
        kit whose storage was replaced applies the current version again from the retained config."""
        unknown = None
        if status.unknown_devices is not None:
            unknown = Jsonb([d.model_dump(mode="json") for d in status.unknown_devices])
        self.conn.execute(
            "UPDATE gateways SET config_version = %s, config_reported_at = %s, unknown_devices = %s,"
            " unknown_devices_at = %s WHERE id = %s",
            (status.config_version, min(status.at or now, now), unknown, min(status.at or now, now),
             status.gateway_id),
        )  # fmt: skip

    def _store_unconfirmed(self, status: GatewayStatus, now: datetime) -> None:
        """What the kit says awaits a receipt. An "online" status without it (a gateway from before
        receipts) makes it unknown; "offline" statuses leave it: the kit is not sending then."""
        waiting = status.unconfirmed
        since = None
        if waiting is not None and waiting.messages:
            # The gateway's clock says when it looked; a clock running fast must not make it older.
            seen = min(status.at, now) if status.at is not None else now
            since = seen - timedelta(seconds=waiting.oldest_age_s)
        self.conn.execute(
            "UPDATE gateways SET unconfirmed_messages = %s, unconfirmed_measurements = %s,"
            " unconfirmed_since = %s WHERE id = %s",
            (
                waiting.messages if waiting else None,
                waiting.measurements if waiting else None,
                since,
                status.gateway_id,
            ),
        )


def _vitals_events(inserted: list[tuple], ward_of: dict[uuid.UUID, str]) -> list[Event]:
    by_ward: dict[str, set[uuid.UUID]] = defaultdict(set)
    for row in inserted:
        by_ward[ward_of[row[1]]].add(row[1])
    return [VitalsChanged(ward, tuple(sorted(patients, key=str))) for ward, patients in by_ward.items()]


def _announce(found: list[Event]) -> Steps[None]:
    """NOTIFY the dashboards (storage.steps splits long id lists to fit a payload)."""
    for event in found:
        yield Notify(event)
