"""Streaming devices: a BerryMed oximeter's vendor BCI stream, rate limited to the latest reading.

The decoder and the rate limiter are pure and tested with literal values; the stream runs end
to end through bleak, the gateway and a real Mosquitto, with only the radio simulated.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core import contract
from core.settings import Settings
from core.vitals import Vital
from device_profiles import BciPacket, encode, uuids
from gateway.decoding import NotificationDecoder
from gateway.rate_limit import StreamRateLimiter
from gateway.service import Gateway
from simulator.virtual_devices import StreamingOximeter, berrymed_bm1000
from simulator.virtual_radio import VirtualRadio
from tests.support.gateway import (
    MAX_BYTES,
    Recorder,
    kit_config,
    wait_until,
)

BCI = "49535343-1e4d-4bd9-ba61-23c647249616"
OXIMETER = "02:48:4D:00:B0:01"
NOW = datetime(2025, 3, 14, 6, 0, tzinfo=UTC)


# --- the decoder -------------------------------------------------------------------------------------


def test_vendor_characteristic_decodes_in_any_case_and_keeps_its_128_bit_uuid() -> None:
    decoder = NotificationDecoder()
    payload = encode.bci_oximeter(BciPacket(spo2=96, pulse_rate=131, pleth=40))
    m = decoder.decode(OXIMETER, BCI.upper(), payload, NOW)
    assert m is not None
    assert m.characteristic == BCI == uuids.BERRYMED_BCI_DATA
    assert [(o.vital, o.value, o.unit) for o in m.observations] == [
        (Vital.SPO2, 96.0, "%"),
        (Vital.PULSE_RATE, 131.0, "/min"),
    ]
    assert (m.raw, m.effective_time, m.received_time) == (payload.hex(), NOW, NOW)
    assert decoder.counters.measurements == {f"{OXIMETER}/{BCI}": 1}


@pytest.mark.parametrize(
    ("char_uuid", "payload", "key"),
    [
        ("not a uuid", b"\xde\xad\xbe\xef", "not a uuid"),
        ("12345678-1234-1234-1234-123456789ABC", b"\xde\xad\xbe\xef", "12345678-1234-1234-1234-123456789abc"),
        (BCI, b"\x81\x32\x06", BCI),  # 3 bytes: not a whole 5-byte packet
        (BCI, b"\x01\x32\x06\x48\x60", BCI),  # sync bit missing
    ],
    ids=["garbage-uuid", "unknown-vendor-uuid", "partial-packet", "bad-sync"],
)
def test_every_decode_error_is_counted_never_raised(char_uuid: str, payload: bytes, key: str, caplog) -> None:
    decoder = NotificationDecoder()
    assert decoder.decode(OXIMETER, char_uuid, payload, NOW) is None
    assert decoder.decode(OXIMETER, char_uuid, payload, NOW + timedelta(seconds=1)) is None
    assert decoder.counters.decode_errors == {f"{OXIMETER}/{key}": 2}
    assert caplog.text.count("malformed") == 1  # once a minute per characteristic, not per value
    assert payload.hex() not in caplog.text


def test_glucose_records_get_ids_from_their_bytes_other_readings_random_ids() -> None:
    decoder = NotificationDecoder()
    record = encode.glucose(
        7,
        datetime(2025, 3, 14, 5, 30),
        concentration="0.0054",
        unit="mol/L",
        sample_type=1,
        sample_location=1,
    )
    first = decoder.decode(OXIMETER, "2A18", record, NOW)
    resent = decoder.decode(OXIMETER, "2A18", record, NOW + timedelta(hours=1))
    other_meter = decoder.decode("02:48:4D:00:B0:02", "2A18", record, NOW)
    assert first is not None and resent is not None and other_meter is not None
    assert first.id == resent.id != other_meter.id
    assert first.id.version == 5
    bci = encode.bci_oximeter(BciPacket(spo2=97, pulse_rate=70))
    a, b = (decoder.decode(OXIMETER, BCI, bci, NOW) for _ in range(2))
    assert a is not None and b is not None and a.id != b.id and a.id.version == 4


# --- the rate limiter --------------------------------------------------------------------------------


def _measurement(characteristic: str, spo2: float, device: str = OXIMETER) -> contract.Measurement:
    return contract.Measurement(
        id=uuid.uuid4(),
        device_id=device,
        characteristic=characteristic,
        raw="00",
        effective_time=NOW,
        received_time=NOW,
        observations=(contract.Observation(vital=Vital.SPO2, value=spo2, unit="%"),),
    )


def test_rate_limiter_keeps_the_newest_of_each_window_per_device_and_stream() -> None:
    limiter = StreamRateLimiter(5.0)
    first, second, third = (_measurement(BCI, v) for v in (95, 96, 97))
    other_device = _measurement(BCI, 91, device="02:48:4D:00:B0:09")
    assert limiter.offer(first) is True  # opened a window: the caller schedules release()
    assert limiter.offer(second) is False
    assert limiter.offer(other_device) is True
    assert limiter.offer(third) is False
    assert limiter.held == 2
    assert limiter.release(f"{OXIMETER}/{BCI}") is third
    assert limiter.release(f"{OXIMETER}/{BCI}") is None
    assert limiter.offer(first) is True  # a new window
    assert limiter.release_all() == [other_device, first]
    assert limiter.superseded == {f"{OXIMETER}/{BCI}": 2}


def test_only_streams_are_rate_limited() -> None:
    assert StreamRateLimiter.applies_to(_measurement(BCI, 95))
    assert StreamRateLimiter.applies_to(_measurement("2A5F", 95))
    for spot_or_indicated in ("2A5E", "2A35", "2A1C", "2A9D", "2A18"):
        assert not StreamRateLimiter.applies_to(_measurement(spot_or_indicated, 95))
    with pytest.raises(ValueError, match="> 0"):
        StreamRateLimiter(0)


# --- a BerryMed BM1000 end to end --------------------------------------------------------------------


def test_berrymed_stream_is_published_at_most_once_per_window_with_the_latest_reading(
    mqtt_url, tmp_path: Path, gateway_id, caplog
) -> None:
    caplog.set_level(logging.INFO)
    radio = VirtualRadio()
    oximeter = berrymed_bm1000(radio, OXIMETER)
    settings = Settings(mqtt_url=mqtt_url, data_dir=tmp_path, gateway_batch_linger_s=0.05)
    interval = 0.5
    # Two seconds at 20 Hz; `pleth` (the waveform sample) makes every packet unique.
    packets = [StreamingOximeter.finger_in(94 + i % 5, 66 + i % 9, pleth=i) for i in range(40)]
    packets[20:23] = [StreamingOximeter.probe_unplugged()] * 3
    values = {
        encode.bci_oximeter(p).hex(): (i, float(p.spo2), float(p.pulse_rate))  # type: ignore[arg-type]
        for i, p in enumerate(packets)
        if not p.probe_unplugged
    }
    key = f"{OXIMETER}/{BCI}"
    with (
        Recorder(mqtt_url, contract.measurements_topic(gateway_id)) as rec,
        Gateway(
            settings,
            gateway_id=gateway_id,
            ble=radio.backend,
            stream_interval_s=interval,
            config=kit_config(gateway_id, oximeter),
        ) as gw,
    ):
        wait_until(lambda: oximeter.subscribed(uuids.BERRYMED_BCI_DATA), what="subscription")
        sent = oximeter.stream(packets, hz=20)
        wait_until(lambda: gw.decoder.counters.measurements[key] == 37, what="37 packets decoded")
        wait_until(lambda: gw.streams.held == 0, what="the last window to close")
        published = 37 - gw.streams.superseded[key]
        got = rec.wait_for_measurements(published)
        stats = gw.stats()
        messages = [m for m in rec.messages if m.topic.endswith("/measurements")]
    assert len(sent) == 40 and oximeter.sent == 40
    # Every message meets the wire contract, vendor UUID included.
    for message in messages:
        batch = contract.decode_measurement_batch(
            message.topic, bytes(message.payload), now=datetime.now(UTC), max_bytes=MAX_BYTES
        )
        assert batch.rejected == []
    # ~2 s of stream in 0.5 s windows: about four measurements instead of forty.
    assert 3 <= len(got) <= 6 and len(got) == published
    assert {m.characteristic for m in got} == {BCI}
    indices = []
    for m in got:
        index, spo2, pulse = values[m.raw]
        indices.append(index)
        assert {o.vital: o.value for o in m.observations} == {Vital.SPO2: spo2, Vital.PULSE_RATE: pulse}
        assert all(o.quality == () for o in m.observations)
    assert indices == sorted(indices)
    assert indices[0] > 0  # the first window published its newest packet, not its first
    assert indices[-1] == 39  # and the last reading of the stream was not lost
    assert stats["stream_superseded"] == {key: 37 - len(got)}
    # The unplugged probe: both values of each of the three packets rejected, counted, logged once.
    assert stats["rejected_values"] == {key: 6}
    assert caplog.text.count("rejected as implausible or flagged by the device") == 1
    assert stats["decode_errors"] == {} and stats["internal_errors"] == 0
