"""Turn received MQTT messages into what the writer stores: accepted batches, the kit's events (the
box's button), dead letters, statuses, and the receipts ingest sends each gateway once committed.

Two steps, so they can run on different threads: `decode` is pure CPU work (contract
validation, no I/O) and runs ahead on the decoder thread while the previous batch commits;
`resolve` maps gateways to enrolled patients with the database and runs on the writer thread.

Every measurements or events message whose gateway (from the topic) and message id can be read gets a
receipt, whatever became of it: stored, partly stored, or dead-lettered. A dead-lettered message is
kept in `dead_letters`; sending it again would change nothing, so the gateway may forget it. A
message without a readable id cannot be confirmed: its gateway keeps sending it (with back-off),
and the gateway's `unconfirmed` status makes that visible as the `receipts_overdue` alarm.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from core import contract
from ingest.directory import Enrolment, GatewayDirectory
from ingest.writer import AcceptedBatch, AcceptedEvents, DeadLetter

if TYPE_CHECKING:
    import psycopg

UNKNOWN_GATEWAY = "unknown gateway or no enrolled patient"


@dataclass(frozen=True, slots=True)
class Incoming:
    mid: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass(frozen=True, slots=True)
class ReceiptEntry:
    """What ingest will tell `gateway_id` about one of its messages, once the batch has committed."""

    gateway_id: str
    receipt: contract.MessageReceipt


@dataclass
class Decoded:
    messages: list[Incoming]
    now: datetime
    batches: list[tuple[int, Incoming, contract.DecodedBatch]] = field(default_factory=list)
    events: list[tuple[int, Incoming, contract.KitEventBatch]] = field(default_factory=list)
    statuses: list[contract.GatewayStatus] = field(default_factory=list)
    dead: list[tuple[int, DeadLetter]] = field(default_factory=list)  # (arrival position, letter)
    receipts: list[tuple[int, ReceiptEntry]] = field(default_factory=list)  # of dead-lettered messages


@dataclass
class Resolved:
    accepted: list[AcceptedBatch]
    dead: list[DeadLetter]
    events: list[AcceptedEvents]
    statuses: list[tuple[contract.GatewayStatus, Enrolment | None]]
    receipts: list[ReceiptEntry]  # arrival order


def decode(messages: list[Incoming], *, now: datetime, max_bytes: int) -> Decoded:
    """Validate every message against the wire contract. No I/O."""
    out = Decoded(messages, now)
    for position, item in enumerate(messages):
        try:
            if item.topic.endswith("/status"):
                if item.payload:  # an empty retained payload clears a status; nothing to store
                    out.statuses.append(contract.decode_gateway_status(item.topic, item.payload))
            elif item.topic.endswith("/events"):
                out.events.append((position, item, contract.decode_kit_events(item.topic, item.payload)))
            else:
                batch = contract.decode_measurement_batch(
                    item.topic, item.payload, now=now, max_bytes=max_bytes
                )
                out.batches.append((position, item, batch))
        except contract.PayloadRejected as exc:
            gateway = contract.gateway_id_from_topic(item.topic)
            out.dead.append((position, DeadLetter(item.topic, gateway, exc.reason, item.payload)))
            entry = dead_lettered_receipt(item, exc.reason)
            if entry is not None:
                out.receipts.append((position, entry))
    return out


def dead_lettered_receipt(item: Incoming, reason: str) -> ReceiptEntry | None:
    """The receipt of a measurements or events message dead-lettered whole, when its gateway and id can
    be read (both are confirmed by message id, docs/protocol.md "Receipts")."""
    gateway = contract.gateway_id_from_topic(item.topic)
    if gateway is None or not item.topic.endswith(("/measurements", "/events")):
        return None
    message_id = contract.message_id_of(item.payload)
    if message_id is None:
        return None
    receipt = contract.MessageReceipt(
        message_id=message_id, outcome="dead_lettered", reason=reason[: contract.MAX_REASON_LENGTH]
    )
    return ReceiptEntry(gateway, receipt)


def _batch_receipt(batch: contract.DecodedBatch) -> ReceiptEntry:
    rejected = tuple(r.index for r in batch.rejected)
    if not rejected:
        receipt = contract.MessageReceipt(message_id=batch.message_id, outcome="stored")
    elif batch.measurements:
        receipt = contract.MessageReceipt(
            message_id=batch.message_id, outcome="partly_stored", rejected=rejected
        )
    else:
        receipt = contract.MessageReceipt(
            message_id=batch.message_id,
            outcome="dead_lettered",
            rejected=rejected,
            reason="every measurement was refused",
        )
    return ReceiptEntry(batch.gateway_id, receipt)


def resolve(
    decoded: Decoded, conn: psycopg.Connection, directory: GatewayDirectory, metrics: Counter[str]
) -> Resolved:
    """Attach each batch to its gateway's enrolled patient; the rest becomes dead letters."""
    ids = (
        {b.gateway_id for _, _, b in decoded.batches}
        | {e.gateway_id for _, _, e in decoded.events}
        | {s.gateway_id for s in decoded.statuses}
    )
    enrolments = directory.lookup(conn, ids) if ids else {}
    dead = list(decoded.dead)
    receipts = list(decoded.receipts)
    accepted: list[AcceptedBatch] = []
    for position, item, batch in decoded.batches:
        enrolment = enrolments.get(batch.gateway_id)
        if enrolment is None:
            dead.append((position, DeadLetter(item.topic, batch.gateway_id, UNKNOWN_GATEWAY, item.payload)))
            receipt = contract.MessageReceipt(
                message_id=batch.message_id, outcome="dead_lettered", reason=UNKNOWN_GATEWAY
            )
            receipts.append((position, ReceiptEntry(batch.gateway_id, receipt)))
            continue
        receipts.append((position, _batch_receipt(batch)))
        for r in batch.rejected:
            reason = f"measurement {r.index}: {r.reason}"
            payload = json.dumps(r.measurement, default=str).encode()
            dead.append((position, DeadLetter(item.topic, batch.gateway_id, reason, payload)))
        if batch.measurements:
            accepted.append(AcceptedBatch(batch, enrolment))
    events: list[AcceptedEvents] = []
    for position, item, kit_events in decoded.events:
        enrolment = enrolments.get(kit_events.gateway_id)
        if enrolment is None:
            # A press on a kit lent to nobody: kept with its reason, confirmed so the box stops sending.
            letter = DeadLetter(item.topic, kit_events.gateway_id, UNKNOWN_GATEWAY, item.payload)
            dead.append((position, letter))
            receipt = contract.MessageReceipt(
                message_id=kit_events.message_id, outcome="dead_lettered", reason=UNKNOWN_GATEWAY
            )
        else:
            events.append(AcceptedEvents(kit_events, enrolment))
            receipt = contract.MessageReceipt(message_id=kit_events.message_id, outcome="stored")
        receipts.append((position, ReceiptEntry(kit_events.gateway_id, receipt)))
    statuses = []
    for status in decoded.statuses:
        enrolment = enrolments.get(status.gateway_id)
        if enrolment is None and not _gateway_exists(conn, status.gateway_id):
            # A status carries no patient data; an unknown kit's status is counted, not stored.
            metrics["status_unknown_gateway"] += 1
            continue
        statuses.append((status, enrolment))
    dead.sort(key=lambda pair: pair[0])  # arrival order, for the operator reading them
    receipts.sort(key=lambda pair: pair[0])  # arrival order: a gateway reads a gap as a loss
    return Resolved(accepted, [letter for _, letter in dead], events, statuses, [r for _, r in receipts])


def _gateway_exists(conn: psycopg.Connection, gateway_id: str) -> bool:
    return conn.execute("SELECT 1 FROM gateways WHERE id = %s", (gateway_id,)).fetchone() is not None
