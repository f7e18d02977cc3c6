"""Run the real ingest service in a thread for a test, and build contract messages."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from core import contract
from core.settings import Settings
from core.vitals import VITALS, Vital
from ingest.service import IngestService


@contextmanager
def running_ingest(settings: Settings) -> Iterator[IngestService]:
    service = IngestService(settings)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            service.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="ingest", daemon=True)
    thread.start()
    assert service.wait_connected(15), f"ingest did not connect to the broker: {errors}"
    try:
        yield service
    finally:
        service.stop()
        thread.join(15)
        assert not thread.is_alive(), "ingest did not stop"
        if errors:
            raise errors[0]


def measurement(
    vitals: dict[Vital, float],
    *,
    at: datetime | None = None,
    device_id: str = "AA:BB:CC:DD:EE:01",
    characteristic: str = "2A5E",
    quality: tuple[str, ...] = (),
) -> contract.Measurement:
    now = datetime.now(UTC)
    return contract.Measurement(
        id=uuid.uuid4(),
        device_id=device_id,
        characteristic=characteristic,
        raw="00",
        effective_time=at or now - timedelta(seconds=1),
        received_time=now,
        observations=tuple(
            contract.Observation(vital=v, value=value, unit=VITALS[v].ucum, quality=quality)
            for v, value in vitals.items()
        ),
    )


def batch(gateway_id: str, measurements: list[contract.Measurement]) -> tuple[str, bytes]:
    message = contract.MeasurementBatch(
        v=1,
        message_id=uuid.uuid4(),
        gateway_id=gateway_id,
        sent_at=datetime.now(UTC),
        measurements=tuple(measurements),
    )
    return contract.measurements_topic(gateway_id), contract.encode(message)
