"""Which patient and ward a gateway belongs to, cached briefly so every batch does not ask the database."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True, slots=True)
class Enrolment:
    gateway_id: str
    patient_id: uuid.UUID
    ward_id: str


class GatewayDirectory:
    """Maps gateway id -> current enrolment. A kit moved to another patient is seen within `ttl_s`."""

    def __init__(self, ttl_s: float = 30.0) -> None:
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Enrolment | None]] = {}

    def lookup(self, conn: psycopg.Connection, gateway_ids: set[str]) -> dict[str, Enrolment | None]:
        now = time.monotonic()
        result: dict[str, Enrolment | None] = {}
        missing = []
        for gw in gateway_ids:
            cached = self._cache.get(gw)
            if cached is not None and now - cached[0] < self._ttl_s:
                result[gw] = cached[1]
            else:
                missing.append(gw)
        if missing:
            rows = conn.execute(
                "SELECT g.id, p.id, p.ward_id FROM gateways g JOIN patients p ON p.id = g.patient_id"
                " WHERE g.id = ANY(%s) AND p.discharged_at IS NULL",
                (missing,),
            ).fetchall()
            found = {r[0]: Enrolment(r[0], r[1], r[2]) for r in rows}
            for gw in missing:
                result[gw] = found.get(gw)
                self._cache[gw] = (now, result[gw])
        return result

    def forget(self) -> None:
        self._cache.clear()
