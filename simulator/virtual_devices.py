"""Virtual health devices that speak the SIG services (and BerryMed's vendor protocol).

* `HomeKit`: one home's oximeter, BP cuff, thermometer and scale, for the simulator and tests.
* Device models with a connect protocol of their own (simulator.virtual_models), made by the
  factories at the bottom: `and_ua651ble` (an A&D cuff that sends its stored readings only
  once its Date Time was written), `glucose_meter` (records sent on a Record Access Control
  Point request, then a Response Code) and `berrymed_bm1000` (a fingertip oximeter
  streaming BCI packets).

Each device's GATT table is built from its `device_profiles` catalogue profile (the
characteristics and what its connect steps read and write), so the gateway recognises it
exactly as it would a real one; readings are encoded byte-exact by `device_profiles.encode`.
Every `measure_*` / `take_*` / `stream` returns the bytes that went on air, for tests to
compare with what arrives at the broker.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from core.contract import KitConfig, KitDevice
from device_profiles import (
    BloodPressureFeature,
    BodyCompositionFeature,
    GlucoseFeature,
    PlxFeatures,
    RacpResponseCode,
    WeightResolution,
    WeightScaleFeature,
    encode,
    uuids,
)
from device_profiles.catalogue import Profile, load_profiles
from simulator.virtual_models import (
    DateTimeGatedDevice,
    GlucoseMeter,
    StreamingOximeter,
    blood_pressure_payload,
    device_clock,
    device_number,
)
from simulator.virtual_radio import VirtualCharacteristic, VirtualDevice, VirtualRadio, VirtualService

__all__ = [
    "FEATURE_VALUES",
    "METER_PASSKEY",
    "DateTimeGatedDevice",
    "GlucoseMeter",
    "HomeKit",
    "StreamingOximeter",
    "and_ua651ble",
    "berrymed_bm1000",
    "device_clock",
    "device_from_profile",
    "glucose_meter",
]

OXIMETER_PROFILE = "generic_pulse_oximeter"
BLOOD_PRESSURE_PROFILE = "generic_blood_pressure"
THERMOMETER_PROFILE = "generic_health_thermometer"
SCALE_PROFILE = "generic_weight_scale"
# What a simulated glucose meter shows for pairing, unless a test gives another.
METER_PASSKEY = "246810"

# What the virtual devices say they support, by feature decoder (read by "read_features").
FEATURE_VALUES: dict[str, bytes] = {
    "blood_pressure_feature": encode.feature(
        BloodPressureFeature(
            body_movement_detection=True, cuff_fit_detection=True, irregular_pulse_detection=True
        )
    ),
    "plx_features": encode.feature(
        PlxFeatures(spot_check_measurement_storage=True, spot_check_timestamp=True)
    ),
    "weight_scale_feature": encode.feature(
        WeightScaleFeature(timestamp=True, weight_resolution=WeightResolution.KG_0_005_OR_LB_0_01)
    ),
    "body_composition_feature": encode.feature(
        BodyCompositionFeature(
            timestamp=True, weight=True, mass_resolution=WeightResolution.KG_0_005_OR_LB_0_01
        )
    ),
    "glucose_feature": encode.feature(
        GlucoseFeature(
            low_battery_detection=True,
            sensor_strip_insertion_error_detection=True,
            sensor_result_high_low_detection=True,
            time_fault=True,
        )
    ),
}


def device_from_profile(
    profile: Profile,
    address: str,
    name: str,
    *,
    seed: int = 0,
    omit: Iterable[str] = (),
    model: type[VirtualDevice] = VirtualDevice,
    **model_args: Any,
) -> VirtualDevice:
    """A virtual device with every characteristic `profile` lists or its connect steps use
    (but those in `omit`), advertising its match services. Feature characteristics read as
    FEATURE_VALUES; `model` is the VirtualDevice subclass to make. It pairs as the profile says
    (a "passkey" profile needs `passkey=` among `model_args`)."""
    omitted = {uuids.canonical_uuid(u) for u in omit}
    by_service: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for spec in profile.characteristics:
        by_service[spec.service].setdefault(spec.uuid, []).append(spec.mode)
    for step in profile.on_connect:
        if step.uuid is not None and step.service is not None:
            mode = "read" if step.action == "read_features" else "write"
            by_service[step.service].setdefault(step.uuid, []).append(mode)
    services = [
        VirtualService(
            service,
            tuple(VirtualCharacteristic(u, tuple(modes)) for u, modes in chars.items() if u not in omitted),
        )
        for service, chars in by_service.items()
    ]
    services = [s for s in services if s.characteristics]
    advertised = list(profile.match.service_uuids) or [s.uuid for s in services]
    device = model(
        address,
        name,
        services,
        advertised_services=advertised,
        seed=seed,
        pairing=profile.pairing,
        **model_args,
    )
    device.profile_id = profile.id
    for step in profile.on_connect:
        if step.action == "read_features" and device.has_characteristic(str(step.uuid)):
            device.set_value(str(step.uuid), FEATURE_VALUES[str(step.decoder)])
    return device


@dataclass
class HomeKit:
    """The four devices of one home on one radio."""

    oximeter: VirtualDevice
    bp_cuff: VirtualDevice
    thermometer: VirtualDevice
    scale: VirtualDevice
    device_tz: tzinfo = UTC

    def kit_devices(self) -> tuple[KitDevice, ...]:
        """The kit's devices as staff register them (care.kit), and as a KitConfig lists them."""
        return (
            KitDevice(address=self.oximeter.address.upper(), profile=OXIMETER_PROFILE),
            KitDevice(address=self.bp_cuff.address.upper(), profile=BLOOD_PRESSURE_PROFILE),
            KitDevice(address=self.thermometer.address.upper(), profile=THERMOMETER_PROFILE),
            KitDevice(address=self.scale.address.upper(), profile=SCALE_PROFILE),
        )

    def kit_config(
        self, gateway_id: str, *, version: int = 1, issued_at: datetime | None = None
    ) -> KitConfig:
        """A KitConfig listing this kit's devices: the initial config of a simulated or demo gateway
        (the server publishes the real one, with the same devices, once staff registered the kit)."""
        return KitConfig(
            v=1,
            gateway_id=gateway_id,
            version=version,
            issued_at=issued_at or datetime.now(UTC),
            devices=self.kit_devices(),
        )

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
        payload = encode.plx_spot_check(
            device_number(spo2), device_number(pulse_rate), timestamp=self._clock(at)
        )
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
        payload = blood_pressure_payload(systolic, diastolic, mean_arterial, pulse_rate, self._clock(at))
        return self.bp_cuff.send(uuids.BLOOD_PRESSURE_MEASUREMENT, payload)

    def measure_temperature(self, celsius: float, *, at: datetime | None = None) -> bytes:
        """A Temperature Measurement in °C, indicated on 0x2A1C."""
        payload = encode.temperature(device_number(celsius), timestamp=self._clock(at))
        return self.thermometer.send(uuids.TEMPERATURE_MEASUREMENT, payload)

    def measure_weight(self, kg: float, *, at: datetime | None = None) -> bytes:
        """A Weight Measurement in kg (0.005 kg steps), indicated on 0x2A9D."""
        payload = encode.weight(device_number(round(kg / 0.005) * 0.005, 3), timestamp=self._clock(at))
        return self.scale.send(uuids.WEIGHT_MEASUREMENT, payload)


def and_ua651ble(
    radio: VirtualRadio,
    address: str,
    *,
    name: str = "A&D_UA-651BLE_0001",
    device_tz: tzinfo = UTC,
    profiles: Sequence[Profile] | None = None,
    battery_percent: int = 80,
) -> DateTimeGatedDevice:
    """An A&D UA-651BLE cuff on `radio` (profile and_ua651ble)."""
    device = device_from_profile(
        _profile("and_ua651ble", profiles), address, name, model=DateTimeGatedDevice, device_tz=device_tz
    )
    assert isinstance(device, DateTimeGatedDevice)
    device.set_value(uuids.BATTERY_LEVEL, encode.battery_level(battery_percent))
    radio.add(device)
    return device


def glucose_meter(
    radio: VirtualRadio,
    address: str,
    *,
    name: str = "HemmaGluco",
    device_tz: tzinfo = UTC,
    profiles: Sequence[Profile] | None = None,
    answer: RacpResponseCode | None = RacpResponseCode.SUCCESS,
    omit: Iterable[str] = (uuids.CURRENT_TIME,),
    battery_percent: int = 70,
    passkey: str = METER_PASSKEY,
) -> GlucoseMeter:
    """A Glucose Service meter on `radio` (profile generic_glucose_meter); without a Current
    Time Service by default, as many meters are (the profile's optional write is skipped).
    It bonds only with `passkey` and refuses its Glucose Service to an unbonded link (GLS 1.0
    requires bonding); its Battery Service needs no bond."""
    device = device_from_profile(
        _profile("generic_glucose_meter", profiles),
        address,
        name,
        omit=omit,
        model=GlucoseMeter,
        device_tz=device_tz,
        answer=answer,
        passkey=passkey,
        secured_services=(uuids.GLUCOSE_SERVICE,),
    )
    assert isinstance(device, GlucoseMeter)
    if device.has_characteristic(uuids.BATTERY_LEVEL):
        device.set_value(uuids.BATTERY_LEVEL, encode.battery_level(battery_percent))
    radio.add(device)
    return device


def berrymed_bm1000(
    radio: VirtualRadio, address: str, *, name: str = "BerryMed", profiles: Sequence[Profile] | None = None
) -> StreamingOximeter:
    """A BerryMed BM1000 oximeter on `radio` (profile berrymed_bm1000, recognised by its name)."""
    device = device_from_profile(
        _profile("berrymed_bm1000", profiles), address, name, model=StreamingOximeter
    )
    assert isinstance(device, StreamingOximeter)
    radio.add(device)
    return device


def _profile(profile_id: str, profiles: Sequence[Profile] | None) -> Profile:
    by_id = {p.id: p for p in (profiles if profiles is not None else load_profiles())}
    if profile_id not in by_id:
        raise ValueError(f"no catalogue profile {profile_id!r}; have {', '.join(sorted(by_id))}")
    return by_id[profile_id]
