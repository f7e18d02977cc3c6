"""What the escalation tests share: an open high alert as the engine stores it, and a tick at a given time."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

    from paging.escalator import Escalation, Escalator
    from paging.notify import SystemClock


def high_alert(
    db: psycopg.Connection,
    patient_id: uuid.UUID,
    ward_id: str,
    *,
    opened_at: datetime,
    state: str = "open",
    rule: str = "news2",
) -> int:
    """A high NEWS2 alert opened at `opened_at`; returns its id."""
    row = db.execute(
        "INSERT INTO alerts (patient_id, ward_id, rule, vital, priority, state, message, observed_at,"
        " opened_at, updated_at) VALUES (%s, %s, %s, 'news2', 'high', %s, 'NEWS2 7: hög risk', %s, %s, %s)"
        " RETURNING id",
        (patient_id, ward_id, rule, state, opened_at, opened_at, opened_at),
    ).fetchone()
    assert row is not None
    return int(row[0])


def tick_at(escalator: Escalator, clock: SystemClock, now: datetime) -> list[Escalation]:
    """One escalator tick with the dispatcher's clock (a test's FakeClock) set to `now`."""
    clock.current = now  # type: ignore[attr-defined]
    return escalator.tick(now)
