"""A home kit of virtual devices (oximeter, BP cuff, thermometer, scale) that speak the SIG services.

Each device's GATT table is built from its `device_profiles` catalogue profile, so the
gateway recognises it exactly as it would a real one; readings are encoded byte-exact by
`device_profiles.encode`. Every `measure_*` returns the bytes that went on air, for tests to
compare with what arrives at the broker.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from device_profiles import encode, uuids
from device_profiles.catalogue import Profile, load_profiles
from gateway.virtual_radio import VirtualCharacteristic, VirtualDevice, VirtualRadio, VirtualService

OXIMETER_PROFILE = "generic_pulse_oximeter"
BLOOD_PRESSURE_PROFILE = "generic_blood_pressure"
THERMOMETER_PROFILE = "generic_health_thermometer"
SCALE_PROFILE = "generic_weight_scale"


def device_from_profile(profile: Profile, address: str, name: str, *, seed: int = 0) -> VirtualDevice:
    """A virtual device with every characteristic `profile` lists, advertising its match services."""
    by_service: dict[str, list[VirtualCharacteristic]] = defaultdict(list)
    for spec in profile.characteristics:
        by_service[spec.service].append(VirtualCharacteristic(spec.uuid, (spec.mode,)))
    services = [VirtualService(service, tuple(chars)) for service, chars in by_service.items()]
    advertised = list(profile.match.service_uuids) or [s.uuid for s in services]
    return VirtualDevice(address, name, services, advertised_services=advertised, seed=seed)


def device_clock(device_tz: tzinfo, at: datetime | None = None) -> datetime:
    """What a device's display clock shows: local wall time, naive, whole seconds (GSS Date Time)."""
    return (at or datetime.now(UTC)).astimezone(device_tz).replace(tzinfo=None, microsecond=0)


@dataclass
class HomeKit:
    """The four devices of one home on one radio."""

    oximeter: VirtualDevice
    bp_cuff: VirtualDevice
    thermometer: VirtualDevice
    scale: VirtualDevice
    device_tz: tzinfo = UTC

    @classmethod
    def install(
        cls,
        radio: VirtualRadio,
        *,
        home: int = 1,
        device_tz: tzinfo = UTC,
        profiles: Sequence[Profile] | None = None,
        battery_percent: int = 90,
    ) -> HomeKit:
        by_id = {p.id: p for p in (profiles if profiles is not None else load_profiles())}
        hi, lo = (home >> 8) & 0xFF, home & 0xFF

        def make(index: int, profile_id: str, name: str) -> VirtualDevice:
            # 02:... is a locally administered address, never a real vendor's.
            address = f"02:48:4D:{hi:02X}:{lo:02X}:{index:02X}"
            if profile_id not in by_id:
                raise ValueError(f"no catalogue profile {profile_id!r}; have {', '.join(sorted(by_id))}")
            device = device_from_profile(
                by_id[profile_id], address, f"{name}-{home:04d}", seed=home * 16 + index
            )
            if device.has_characteristic(uuids.BATTERY_LEVEL):
                device.set_value(uuids.BATTERY_LEVEL, encode.battery_level(battery_percent))
            return radio.add(device)

        return cls(
            oximeter=make(1, OXIMETER_PROFILE, "HemmaOx"),
            bp_cuff=make(2, BLOOD_PRESSURE_PROFILE, "HemmaBP"),
            thermometer=make(3, THERMOMETER_PROFILE, "HemmaTemp"),
            scale=make(4, SCALE_PROFILE, "HemmaScale"),
            device_tz=device_tz,
        )

    @property
    def devices(self) -> tuple[VirtualDevice, ...]:
        return (self.oximeter, self.bp_cuff, self.thermometer, self.scale)

    def _clock(self, at: datetime | None) -> datetime:
        return device_clock(self.device_tz, at)

    def measure_spo2(self, spo2: float, pulse_rate: float, *, at: datetime | None = None) -> bytes:
        """A PLX spot-check (SpO2 %, pulse /min), indicated on 0x2A5E."""
        payload = encode.plx_spot_check(_num(spo2), _num(pulse_rate), timestamp=self._clock(at))
        return self.oximeter.send(uuids.PLX_SPOT_CHECK_MEASUREMENT, payload)

    def measure_blood_pressure(
        self,
        systolic: float,
        diastolic: float,
        mean_arterial: float,
        pulse_rate: float | None = None,
        *,
        at: datetime | None = None,
    ) -> bytes:
        """A Blood Pressure Measurement in mmHg, indicated on 0x2A35."""
        payload = encode.blood_pressure(
            _num(systolic),
            _num(diastolic),
            _num(mean_arterial),
            timestamp=self._clock(at),
            pulse_rate=None if pulse_rate is None else _num(pulse_rate),
        )
        return self.bp_cuff.send(uuids.BLOOD_PRESSURE_MEASUREMENT, payload)

    def measure_temperature(self, celsius: float, *, at: datetime | None = None) -> bytes:
        """A Temperature Measurement in °C, indicated on 0x2A1C."""
        payload = encode.temperature(_num(celsius), timestamp=self._clock(at))
        return self.thermometer.send(uuids.TEMPERATURE_MEASUREMENT, payload)

    def measure_weight(self, kg: float, *, at: datetime | None = None) -> bytes:
        """A Weight Measurement in kg (0.005 kg steps), indicated on 0x2A9D."""
        payload = encode.weight(_num(round(kg / 0.005) * 0.005, 3), timestamp=self._clock(at))
        return self.scale.send(uuids.WEIGHT_MEASUREMENT, payload)


def _num(value: float, digits: int = 1) -> float | int:
    """Integral values as int, others by their shortest repr (the encoders take floats that way)."""
    rounded = round(float(value), digits)
    return int(rounded) if rounded.is_integer() else rounded
