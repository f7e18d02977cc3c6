"""Turn received MQTT messages into what the writer stores: accepted batches, dead letters, statuses.

Two steps, so they can run on different threads: `decode` is pure CPU work (contract
validation, no I/O) and runs ahead on the decoder thread while the previous batch commits;
`resolve` maps gateways to enrolled patients with the database and runs on the writer thread.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from hemma import contract
from ingest.directory import Enrolment, GatewayDirectory
from ingest.writer import AcceptedBatch, DeadLetter

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


@dataclass
class Decoded:
    messages: list[Incoming]
    now: datetime
    batches: list[tuple[int, Incoming, contract.DecodedBatch]] = field(default_factory=list)
    statuses: list[contract.GatewayStatus] = field(default_factory=list)
    dead: list[tuple[int, DeadLetter]] = field(default_factory=list)  # (arrival position, letter)


@dataclass
class Resolved:
    accepted: list[AcceptedBatch]
    dead: list[DeadLetter]
    statuses: list[tuple[contract.GatewayStatus, Enrolment | None]]


def decode(messages: list[Incoming], *, now: datetime, max_bytes: int) -> Decoded:
    """Validate every message against the wire contract. No I/O."""
    out = Decoded(messages, now)
    for position, item in enumerate(messages):
        try:
            if item.topic.endswith("/status"):
                if item.payload:  # an empty retained payload clears a status; nothing to store
                    out.statuses.append(contract.decode_gateway_status(item.topic, item.payload))
            else:
                batch = contract.decode_measurement_batch(
                    item.topic, item.payload, now=now, max_bytes=max_bytes
                )
                out.batches.append((position, item, batch))
        except contract.PayloadRejected as exc:
            gateway = contract.gateway_id_from_topic(item.topic)
            out.dead.append((position, DeadLetter(item.topic, gateway, exc.reason, item.payload)))
    return out


def resolve(
    decoded: Decoded, conn: psycopg.Connection, directory: GatewayDirectory, metrics: Counter[str]
) -> Resolved:
    """Attach each batch to its gateway's enrolled patient; the rest becomes dead letters."""
    ids = {b.gateway_id for _, _, b in decoded.batches} | {s.gateway_id for s in decoded.statuses}
    enrolments = directory.lookup(conn, ids) if ids else {}
    dead = list(decoded.dead)
    accepted: list[AcceptedBatch] = []
    for position, item, batch in decoded.batches:
        enrolment = enrolments.get(batch.gateway_id)
        if enrolment is None:
            dead.append((position, DeadLetter(item.topic, batch.gateway_id, UNKNOWN_GATEWAY, item.payload)))
            continue
        for r in batch.rejected:
            reason = f"measurement {r.index}: {r.reason}"
            payload = json.dumps(r.measurement, default=str).encode()
            dead.append((position, DeadLetter(item.topic, batch.gateway_id, reason, payload)))
        if batch.measurements:
            accepted.append(AcceptedBatch(batch, enrolment))
    statuses = []
    for status in decoded.statuses:
        enrolment = enrolments.get(status.gateway_id)
        if enrolment is None and not _gateway_exists(conn, status.gateway_id):
            # A status carries no patient data; an unknown kit's status is counted, not stored.
            metrics["status_unknown_gateway"] += 1
            continue
        statuses.append((status, enrolment))
    dead.sort(key=lambda pair: pair[0])  # arrival order, for the operator reading them
    return Resolved(accepted, [letter for _, letter in dead], statuses)


def _gateway_exists(conn: psycopg.Connection, gateway_id: str) -> bool:
    return conn.execute("SELECT 1 FROM gateways WHERE id = %s", (gateway_id,)).fetchone() is not None
