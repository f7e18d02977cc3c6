"""Decode throughput per characteristic: `python -m benchmarks.device_profiles [--iterations N]`.

For each characteristic, a fixed set of payloads (every optional field, and the mandatory
fields only) is decoded `--iterations` times with `parse()` (UUID lookup, length check,
one precompiled `struct.Struct` per flag combination, exact Medfloat/Decimal values,
validated dates, frozen dataclass). The same payloads go through a naive baseline in the
same run: the textbook decoder that walks the Flags with an offset, slices every field
out with `int.from_bytes`, converts SFLOAT/FLOAT to a Python float and builds a dict (no
precompiled Structs, no exactness). The ratio is parse() / naive; above 1 parse() is
faster. Best of three repeats, so a noisy neighbour on the machine costs less.

The figures are printed, never asserted: throughput depends on the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from device_profiles import encode, uuids
from device_profiles.bci import BciPacket
from device_profiles.blood_pressure import BloodPressureMeasurementStatus
from device_profiles.glucose import GlucoseSensorStatus
from device_profiles.registry import DECODERS, parse

__all__ = ["main", "naive_decode", "run"]

T = datetime(2024, 3, 1, 8, 30, 15)

# (field size, kind, flag mask); kind: u = unsigned, s = signed, sf = SFLOAT, f = FLOAT, dt = Date Time
NaiveField = tuple[int, str, int]


def _sf(mask: int = 0) -> NaiveField:
    return (2, "sf", mask)


def _u(size: int, mask: int = 0) -> NaiveField:
    return (size, "u", mask)


def _dt(mask: int = 0) -> NaiveField:
    return (7, "dt", mask)


_BPM = [_sf(), _sf(), _sf(), _dt(2), _sf(4), _u(1, 8), _u(2, 16)]
_TEMPERATURE = [(4, "f", 0), _dt(2), _u(1, 4)]
NAIVE_LAYOUTS: dict[str, tuple[int, list[NaiveField]]] = {
    "2A35": (1, _BPM),
    "2A36": (1, _BPM),
    "2A5E": (1, [_sf(), _sf(), _dt(1), _u(2, 2), _u(3, 4), _sf(8)]),
    "2A5F": (1, [_sf(), _sf(), _sf(1), _sf(1), _sf(2), _sf(2), _u(2, 4), _u(3, 8), _sf(16)]),
    "2A1C": (1, _TEMPERATURE),
    "2A1E": (1, _TEMPERATURE),
    "2A9D": (1, [_u(2), _dt(2), _u(1, 4), _u(2, 8), _u(2, 8)]),
    "2A9C": (2, [_u(2), _dt(2), _u(1, 4), *(_u(2, 1 << bit) for bit in range(3, 12))]),
    "2A18": (1, [_u(2), _dt(), (2, "s", 1), _sf(2), _u(1, 2), _u(2, 8)]),
    "2A34": (
        1,
        [
            _u(2),
            _u(1, 128),
            _u(1, 1),
            _sf(1),
            _u(1, 2),
            _u(1, 4),
            _u(2, 8),
            _u(1, 8),
            _u(1, 16),
            _sf(16),
            _sf(64),
        ],
    ),
}


def _medfloat(raw: int, mantissa_bits: int) -> float:
    exponent = raw >> mantissa_bits
    mantissa = raw & ((1 << mantissa_bits) - 1)
    if mantissa >= 1 << (mantissa_bits - 1):
        mantissa -= 1 << mantissa_bits
    exponent_bits = 16 - mantissa_bits if mantissa_bits == 12 else 8
    if exponent >= 1 << (exponent_bits - 1):
        exponent -= 1 << exponent_bits
    return float(mantissa * 10.0**exponent)


def naive_decode(uuid: str, payload: bytes) -> dict[str, Any]:
    """The baseline: offsets, `int.from_bytes` per field, floats, a dict."""
    flags_size, fields = NAIVE_LAYOUTS[uuid]
    flags = int.from_bytes(payload[0:flags_size], "little")
    offset = flags_size
    out: dict[str, Any] = {"flags": flags}
    for i, (size, kind, mask) in enumerate(fields):
        if mask and not flags & mask:
            continue
        chunk = payload[offset : offset + size]
        if len(chunk) != size:
            raise ValueError("truncated")
        if kind == "dt":
            out[f"f{i}"] = datetime(
                int.from_bytes(chunk[0:2], "little"), chunk[2], chunk[3], chunk[4], chunk[5], chunk[6]
            )
        elif kind == "sf":
            out[f"f{i}"] = _medfloat(int.from_bytes(chunk, "little"), 12)
        elif kind == "f":
            out[f"f{i}"] = _medfloat(int.from_bytes(chunk, "little"), 24)
        else:
            out[f"f{i}"] = int.from_bytes(chunk, "little", signed=kind == "s")
        offset += size
    if offset != len(payload):
        raise ValueError("trailing bytes")
    return out


def corpus() -> dict[str, list[bytes]]:
    """Per characteristic: a payload with every optional field and one with the mandatory ones."""
    bci = BciPacket(spo2=97, pulse_rate=72, pleth=48, bargraph=4, signal_strength=5)
    status = BloodPressureMeasurementStatus(irregular_pulse=True)
    body: dict[str, Any] = {
        "timestamp": T,
        "user_id": 1,
        "basal_metabolism": 6900,
        "muscle_percentage": "40.1",
        "muscle_mass": "28.5",
        "fat_free_mass": "55.1",
        "soft_lean_mass": "51.2",
        "body_water_mass": "40.3",
        "impedance": "512.3",
        "weight": "70.1",
        "height": "1.75",
    }
    context: dict[str, Any] = {
        "carbohydrate_id": 1,
        "carbohydrate": "0.05",
        "meal": 1,
        "tester": 1,
        "health": 5,
        "exercise_duration": 600,
        "exercise_intensity": 50,
        "medication_id": 1,
        "medication": "0.000002",
        "hba1c": "6.1",
    }
    return {
        "2A35": [
            encode.blood_pressure(
                120, 80, 93, timestamp=T, pulse_rate=60, user_id=1, measurement_status=status
            ),
            encode.blood_pressure(120, 80, 93),
        ],
        "2A36": [
            encode.intermediate_cuff_pressure(80, timestamp=T, pulse_rate=60),
            encode.intermediate_cuff_pressure(80),
        ],
        "2A5E": [
            encode.plx_spot_check(
                97,
                72,
                timestamp=T,
                measurement_status=0x80,
                device_and_sensor_status=0x20,
                pulse_amplitude_index="2.1",
            ),
            encode.plx_spot_check(97, 72),
        ],
        "2A5F": [
            encode.plx_continuous(
                97,
                72,
                spo2_fast=96,
                pulse_rate_fast=73,
                spo2_slow=97,
                pulse_rate_slow=71,
                measurement_status=0,
                device_and_sensor_status=0,
                pulse_amplitude_index=3,
            ),
            encode.plx_continuous(97, 72),
        ],
        "2A1C": [encode.temperature("36.6", timestamp=T, temperature_type=1), encode.temperature("36.6")],
        "2A1E": [
            encode.intermediate_temperature("36.1", timestamp=T, temperature_type=1),
            encode.intermediate_temperature("36.1"),
        ],
        "2A9D": [encode.weight(70, timestamp=T, user_id=1, bmi="22.9", height="1.75"), encode.weight(70)],
        "2A9C": [encode.body_composition("21.3", **body), encode.body_composition("21.3")],
        "2A18": [
            encode.glucose(
                7,
                T,
                time_offset=-30,
                concentration="0.00099",
                sample_type=1,
                sample_location=1,
                sensor_status=GlucoseSensorStatus(device_battery_low=True),
                context_follows=True,
            ),
            encode.glucose(7, T),
        ],
        "2A34": [encode.glucose_context(7, **context), encode.glucose_context(7)],
        "2A37": [
            encode.heart_rate(72, sensor_contact=True, energy_expended=10, rr_intervals=(0.8, 0.82)),
            encode.heart_rate(72),
        ],
        "2A19": [encode.battery_level(90)],
        uuids.BERRYMED_BCI_DATA: [encode.bci_oximeter([bci] * 4), encode.bci_oximeter(bci)],
        "2A2B": [encode.current_time(T)],
        "2A08": [encode.date_time(T)],
        "2A52": [encode.racp_response(request_op_code=1, response_code=1)],
        "2A49": [bytes.fromhex("3f00")],
        "2A60": [bytes.fromhex("c300e0ffffff00")],
        "2A9E": [bytes.fromhex("3f010000")],
        "2A51": [bytes.fromhex("ff07")],
        "2A9B": [bytes.fromhex("ffff0100")],
    }


def _rate(
    decode: Callable[[str, bytes], object], uuid: str, payloads: Sequence[bytes], iterations: int
) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(iterations):
            for p in payloads:
                decode(uuid, p)
        best = min(best, time.perf_counter() - start)
    return iterations * len(payloads) / best


def run(iterations: int) -> list[tuple[str, str, float, float | None]]:
    """(characteristic, payload sizes, parse() payloads/s, naive payloads/s or None)."""
    rows = []
    for uuid, payloads in corpus().items():
        for p in payloads:  # the baseline must agree on what it reads, or the race is unfair
            parse(uuid, p)
            if uuid in NAIVE_LAYOUTS:
                naive_decode(uuid, p)
        sizes = "/".join(str(n) for n in sorted({len(p) for p in payloads}))
        ours = _rate(parse, uuid, payloads, iterations)
        naive = _rate(naive_decode, uuid, payloads, iterations) if uuid in NAIVE_LAYOUTS else None
        rows.append((DECODERS[uuid].characteristic, sizes, ours, naive))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.device_profiles", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--iterations", type=int, default=20_000, help="decodes of each payload per repeat")
    args = parser.parse_args(argv)
    rows = run(args.iterations)
    width = max(len(r[0]) for r in rows)
    print(f"{'characteristic':<{width}}  {'bytes':>8}  {'parse()/s':>11}  {'naive/s':>11}  {'ratio':>6}")
    for name, sizes, ours, naive in rows:
        naive_text, ratio = ("-", "-") if naive is None else (f"{naive:,.0f}", f"{ours / naive:.2f}x")
        print(f"{name:<{width}}  {sizes:>8}  {ours:>11,.0f}  {naive_text:>11}  {ratio:>6}")
    compared = [(o, n) for _, _, o, n in rows if n is not None]
    geo = 1.0
    for ours, naive in compared:
        geo *= ours / naive
    print("\nbaseline: per-field int.from_bytes slicing + float conversion into a dict (same run);")
    print(f"geometric mean ratio over {len(compared)} characteristics: {geo ** (1 / len(compared)):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
