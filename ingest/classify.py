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
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from core import contract
from ingest.directory import Enrolment, GatewayDirectory
from ingest.writer import AcceptedBatch, AcceptedEvents, DeadLetter

if TYPE_CHECKING:
    import psycopg

UNKNOWN_GATEWAY = "unknown gateway or no enrolled patient"
# A measurement or press whose time no assignment of its kit covers (issue 11).
NOT_LENT_AT_TIME = "kit lent to no patient at the reading's time"
DISCHARGED_BEFORE_ARRIVAL = "patient discharged before the press arrived"


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


def _batch_receipt(
    batch: contract.DecodedBatch, uncovered: list[int], stored: int, uncovered_reason: str
) -> ReceiptEntry:
    """The receipt of a whole measurements message: its refused and uncovered measurements by index
    (docs/protocol.md "Receipts"); dead-lettered when none was stored."""
    rejected = tuple(sorted([r.index for r in batch.rejected] + uncovered))
    if not rejected:
        receipt = contract.MessageReceipt(message_id=batch.message_id, outcome="stored")
    elif stored:
        receipt = contract.MessageReceipt(
            message_id=batch.message_id, outcome="partly_stored", rejected=rejected
        )
    else:
        reason = "every measurement was refused" if batch.rejected else uncovered_reason
        receipt = contract.MessageReceipt(message_id=batch.message_id, outcome="dead_lettered", reason=reason)
    return ReceiptEntry(batch.gateway_id, receipt)


def _split_measurements(
    batch: contract.DecodedBatch, conn: psycopg.Connection, directory: GatewayDirectory
) -> tuple[dict[Enrolment, list[contract.Measurement]], list[tuple[int, contract.Measurement]]]:
    """The batch's accepted measurements by the patient whose kit assignment covers each one's
    effective time (issue 11), and those no assignment covers, with their index in the message."""
    refused = {r.index for r in batch.rejected}
    sent = range(len(batch.measurements) + len(batch.rejected))
    indices = [i for i in sent if i not in refused]  # the message's index of each accepted one
    by_patient: dict[Enrolment, list[contract.Measurement]] = {}
    uncovered: list[tuple[int, contract.Measurement]] = []
    for index, m in zip(indices, batch.measurements, strict=True):
        holder = directory.holder_at(conn, batch.gateway_id, m.effective_time)
        if holder is None:
            uncovered.append((index, m))
        else:
            by_patient.setdefault(holder, []).append(m)
    return by_patient, uncovered


def resolve(
    decoded: Decoded, conn: psycopg.Connection, directory: GatewayDirectory, metrics: Counter[str]
) -> Resolved:
    """Put each measurement and press on the patient whose kit assignment covers its time (one
    message may hold two patients' readings across a handover); the rest becomes dead letters."""
    ids = (
        {b.gateway_id for _, _, b in decoded.batches}
        | {e.gateway_id for _, _, e in decoded.events}
        | {s.gateway_id for s in decoded.statuses}
    )
    if ids:
        directory.prefetch(conn, ids)
    dead = list(decoded.dead)
    receipts = list(decoded.receipts)
    accepted: list[AcceptedBatch] = []
    for position, item, batch in decoded.batches:
        by_patient, uncovered = _split_measurements(batch, conn, directory)
        stored = len(batch.measurements) - len(uncovered)
        why = NOT_LENT_AT_TIME if directory.ever_lent(batch.gateway_id) else UNKNOWN_GATEWAY
        receipts.append((position, _batch_receipt(batch, [i for i, _ in uncovered], stored, why)))
        for r in batch.rejected:
            reason = f"measurement {r.index}: {r.reason}"
            payload = json.dumps(r.measurement, default=str).encode()
            dead.append((position, DeadLetter(item.topic, batch.gateway_id, reason, payload)))
        metrics["measurements_uncovered"] += len(uncovered)
        if uncovered and not stored and not batch.rejected:
            # Nobody's at all (an unknown kit, one lent to nobody, or every reading from between two
            # patients): kept whole with its reason.
            dead.append((position, DeadLetter(item.topic, batch.gateway_id, why, item.payload)))
            continue
        for index, m in uncovered:
            # Kept with its reason: nobody held the kit at this reading's time (before its first
            # lend, or between two patients), while others of the message were someone's.
            letter = DeadLetter(
                item.topic, batch.gateway_id, f"measurement {index}: {why}", m.model_dump_json().encode()
            )
            dead.append((position, letter))
        for patient_of, measurements in by_patient.items():
            accepted.append(AcceptedBatch(replace(batch, measurements=measurements, rejected=[]), patient_of))
    events: list[AcceptedEvents] = []
    for position, item, kit_events in decoded.events:
        kept: dict[Enrolment, list[contract.KitEvent]] = {}
        refused: list[tuple[int, str]] = []
        for index, e in enumerate(kit_events.events):
            holder = directory.holder_at(conn, kit_events.gateway_id, _press_time(e, decoded.now))
            if holder is None:
                lent = directory.ever_lent(kit_events.gateway_id)
                refused.append((index, NOT_LENT_AT_TIME if lent else UNKNOWN_GATEWAY))
            elif not holder.in_care:
                # A press from before a discharge that arrived after it: a request nobody would answer
                # (discharge closed the patient's open ones), kept as a dead letter with its reason.
                refused.append((index, DISCHARGED_BEFORE_ARRIVAL))
            else:
                kept.setdefault(holder, []).append(e)
        if refused and not kept:
            dead.append(
                (position, DeadLetter(item.topic, kit_events.gateway_id, refused[0][1], item.payload))
            )
        for index, reason in refused if kept else []:
            payload = kit_events.events[index].model_dump_json().encode()
            letter = DeadLetter(item.topic, kit_events.gateway_id, f"event {index}: {reason}", payload)
            dead.append((position, letter))
        metrics["events_uncovered"] += len(refused)
        for holder_of, kit_events_kept in kept.items():
            events.append(
                AcceptedEvents(kit_events.model_copy(update={"events": tuple(kit_events_kept)}), holder_of)
            )
        receipts.append((position, ReceiptEntry(kit_events.gateway_id, _events_receipt(kit_events, refused))))
    statuses: list[tuple[contract.GatewayStatus, Enrolment | None]] = []
    holders = directory.lookup(conn, {s.gateway_id for s in decoded.statuses}) if decoded.statuses else {}
    for status in decoded.statuses:
        enrolment = holders.get(status.gateway_id)
        if enrolment is None and not _gateway_exists(conn, status.gateway_id):
            # A status carries no patient data; an unknown kit's status is counted, not stored.
            metrics["status_unknown_gateway"] += 1
            continue
        statuses.append((status, enrolment))
    dead.sort(key=lambda pair: pair[0])  # arrival order, for the operator reading them
    receipts.sort(key=lambda pair: pair[0])  # arrival order: a gateway reads a gap as a loss
    return Resolved(accepted, [letter for _, letter in dead], events, statuses, [r for _, r in receipts])


def _press_time(event: contract.KitEvent, now: datetime) -> datetime:
    """When the press happened, by the box's clock; a box whose clock is not set (a time readings would
    be refused for, contract._check_times) says nothing about it, and its arrival is the best known."""
    if now - contract.MAX_READING_AGE <= event.at <= now + contract.MAX_CLOCK_SKEW:
        return event.at
    return now


def _events_receipt(batch: contract.KitEventBatch, refused: list[tuple[int, str]]) -> contract.MessageReceipt:
    if not refused:
        return contract.MessageReceipt(message_id=batch.message_id, outcome="stored")
    indices = tuple(i for i, _ in refused)
    if len(refused) < len(batch.events):
        return contract.MessageReceipt(message_id=batch.message_id, outcome="partly_stored", rejected=indices)
    return contract.MessageReceipt(message_id=batch.message_id, outcome="dead_lettered", reason=refused[0][1])


def _gateway_exists(conn: psycopg.Connection, gateway_id: str) -> bool:
    return conn.execute("SELECT 1 FROM gateways WHERE id = %s", (gateway_id,)).fetchone() is not None
