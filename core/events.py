"""The events that tell the dashboards what changed: one definition, one encoder, one parser.

Every writer (ingest, the alert store, the care commands, the escalator) announces a committed
change by NOTIFY on `CHANNEL` with `encode(event)`; the dashboard's live hub reads them back with
`parse(payload)`. Migration 0006's trigger writes the one event not built here (`SessionsChanged`,
'{"kind": "sessions"}'), in the same shape.

Events say *what* changed, never the patient data itself: a dashboard re-reads what it may show,
so a NOTIFY payload (which PostgreSQL logs on error) carries ids and nothing else. A payload must
stay under PostgreSQL's 8000-byte limit: `split` cuts long id lists.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "CHANNEL",
    "MAX_IDS_PER_EVENT",
    "AlertsChanged",
    "Event",
    "EventRejected",
    "GatewayChanged",
    "SessionsChanged",
    "VitalsChanged",
    "encode",
    "parse",
    "split",
]

CHANNEL = "hemma_events"
# 100 uuids are about 4 KB of JSON: well under NOTIFY's 8000-byte payload limit.
MAX_IDS_PER_EVENT = 100
_MAX_PAYLOAD = 8000
_GATEWAY_STATES = frozenset({"online", "offline"})


class EventRejected(ValueError):
    """A payload on the channel that is not one of these events (never raised for a valid event)."""


@dataclass(frozen=True, slots=True)
class VitalsChanged:
    """Readings, manual observations or care orders of these patients changed."""

    ward_id: str | None
    patient_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True, slots=True)
class AlertsChanged:
    """These alerts were opened, changed or resolved."""

    ward_id: str | None
    alert_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class GatewayChanged:
    """A kit reported its status (online with device facts, or offline by its last will)."""

    ward_id: str | None
    gateway_id: str
    status: str


@dataclass(frozen=True, slots=True)
class SessionsChanged:
    """A staff session ended or an account changed: every websocket re-checks its session."""


Event = VitalsChanged | AlertsChanged | GatewayChanged | SessionsChanged


def encode(event: Event) -> str:
    """The NOTIFY payload of one event."""
    match event:
        case VitalsChanged(ward_id, patient_ids):
            body: dict[str, object] = {
                "kind": "vitals",
                "ward_id": ward_id,
                "patient_ids": [str(p) for p in patient_ids],
            }
        case AlertsChanged(ward_id, alert_ids):
            body = {"kind": "alerts", "ward_id": ward_id, "alert_ids": list(alert_ids)}
        case GatewayChanged(ward_id, gateway_id, status):
            body = {"kind": "gateway", "ward_id": ward_id, "gateway_id": gateway_id, "status": status}
        case SessionsChanged():
            body = {"kind": "sessions"}
        case _:
            raise TypeError(f"not an event: {type(event).__name__}")
    # json.dumps' default separators: the very bytes migration 0006's trigger and every writer before
    # this module sent ('{"kind": "sessions"}'), and PostgreSQL folds identical payloads of one
    # transaction into one notification, so two writers announcing the same change are heard once.
    payload = json.dumps(body)
    if len(payload.encode()) >= _MAX_PAYLOAD:
        raise ValueError(f"{body['kind']} event of {len(payload)} bytes: split it first (events.split)")
    return payload


def split(events: Iterable[Event]) -> Iterator[Event]:
    """The same events, with id lists cut to MAX_IDS_PER_EVENT so each payload fits NOTIFY."""
    for event in events:
        match event:
            case VitalsChanged(ward_id, ids) if len(ids) > MAX_IDS_PER_EVENT:
                for i in range(0, len(ids), MAX_IDS_PER_EVENT):
                    yield VitalsChanged(ward_id, ids[i : i + MAX_IDS_PER_EVENT])
            case AlertsChanged(ward_id, ids) if len(ids) > MAX_IDS_PER_EVENT:
                for i in range(0, len(ids), MAX_IDS_PER_EVENT):
                    yield AlertsChanged(ward_id, ids[i : i + MAX_IDS_PER_EVENT])
            case _:
                yield event


def parse(payload: str) -> Event:
    """One event from a NOTIFY payload. Raises EventRejected for anything else."""
    try:
        body = json.loads(payload)
    except ValueError as exc:
        raise EventRejected("payload is not JSON") from exc
    if not isinstance(body, dict):
        raise EventRejected("payload is not a JSON object")
    kind = body.get("kind")
    ward_id = body.get("ward_id")
    if ward_id is not None and not isinstance(ward_id, str):
        raise EventRejected("ward_id must be a string or null")
    try:
        if kind == "vitals":
            return VitalsChanged(ward_id, tuple(uuid.UUID(_text(p)) for p in _list(body["patient_ids"])))
        if kind == "alerts":
            ids = _list(body["alert_ids"])
            alert_ids = tuple(i for i in ids if isinstance(i, int) and not isinstance(i, bool))
            if len(alert_ids) != len(ids):
                raise EventRejected("alert_ids must be integers")
            return AlertsChanged(ward_id, alert_ids)
        if kind == "gateway":
            gateway_id, status = body["gateway_id"], body.get("status")
            if not isinstance(gateway_id, str) or status not in _GATEWAY_STATES:
                raise EventRejected("gateway event needs a gateway_id string and a known status")
            return GatewayChanged(ward_id, gateway_id, status)
        if kind == "sessions":
            return SessionsChanged()
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, EventRejected):
            raise
        raise EventRejected(f"{str(kind)[:40]} event without valid ids ({type(exc).__name__})") from exc
    raise EventRejected(f"unknown event kind {str(kind)[:40]!r}")


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise TypeError("not a list")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value
