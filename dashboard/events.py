"""The events dashboards hear on `hemma_events` (NOTIFY), and what they add up to between two flushes.

Ingest announces changed vitals, alerts and gateways; migration 0006's trigger announces that a
session ended. The live hub (dashboard.live) collects them here and re-reads what they touched.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from dashboard.errors import EventRejected

__all__ = ["Changes", "parse_event"]


@dataclass
class Changes:
    """What the events since the last flush touched."""

    patient_ids: set[uuid.UUID] = field(default_factory=set)
    alert_ids: set[int] = field(default_factory=set)
    gateway_ids: set[str] = field(default_factory=set)
    sessions: bool = False  # a session may have ended: re-check every websocket's

    def __bool__(self) -> bool:
        return bool(self.patient_ids or self.alert_ids or self.gateway_ids or self.sessions)


def parse_event(payload: str, into: Changes) -> str:
    """Add one hemma_events payload to `into`; returns its kind. Raises EventRejected when malformed."""
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise EventRejected("payload is not JSON") from exc
    if not isinstance(event, dict):
        raise EventRejected("payload is not a JSON object")
    kind = event.get("kind")
    try:
        if kind == "vitals":
            into.patient_ids.update(uuid.UUID(str(p)) for p in event["patient_ids"])
        elif kind == "alerts":
            ids = event["alert_ids"]
            if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
                raise EventRejected("alert_ids must be integers")
            into.alert_ids.update(ids)
        elif kind == "gateway":
            if not isinstance(event["gateway_id"], str):
                raise EventRejected("gateway_id must be a string")
            into.gateway_ids.add(event["gateway_id"])
        elif kind == "sessions":
            into.sessions = True
        else:
            raise EventRejected(f"unknown event kind {str(kind)[:40]!r}")
    except (KeyError, TypeError, ValueError) as exc:
        raise EventRejected(f"{kind} event without valid ids ({type(exc).__name__})") from exc
    return str(kind)
