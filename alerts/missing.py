"""Technical alarms: readings that should have come and did not, and home kit that is not working.

IEC 60601-1-8 separates technical alarm conditions (about the equipment or the data) from
physiological ones; all of these are technical (`AlarmCondition.TECHNICAL`) and low or medium
priority: they ask for a phone call to the patient or a visit to the kit, not a bedside response.
Rows are patients (vital and gateway rules) or devices (device rules, each row with its patient).
Every time is float epoch seconds, NaN = never. Rules with a dead band (battery) say nothing inside
it, so the store keeps whatever alert exists: hysteresis without state.

| rule key                 | when                                                  | priority            |
|--------------------------|-------------------------------------------------------|---------------------|
| `missing:<vital>`        | no trustworthy reading within plan interval + grace   | low; medium at 2x   |
| `device_silent:<device>` | device not heard from for `silent_after`              | low (caller's pick) |
| `gateway_offline`        | status offline (or never online) for `after` (15 min) | medium              |
| `battery_low:<device>`   | battery ≤ 20 %, medium ≤ 10 %; clears ≥ 25 %          | low / medium        |
| `clock_not_set:<device>` | newest reading carries `device_clock_not_set`         | low                 |
| `receipts_overdue`       | online kit: a message without ingest's receipt for `after` (20 min) | medium |
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from alerts.facts import (
    BatteryLow,
    ClockNotSet,
    DeviceSilent,
    Facts,
    GatewayOffline,
    MissingVital,
    ReceiptsOverdue,
)
from alerts.inputs import (
    DeviceStates,
    DeviceStatesRequest,
    KitStatus,
    KitStatusRequest,
    PlannedVital,
    PlannedVitalsRequest,
)
from alerts.messages_sv import render
from alerts.model import AlarmCondition, AlertClear, AlertRequest, Priority, RuleOutput, from_epoch_seconds
from alerts.requests import output_from_masks
from alerts.rule import OnTheTimer, RuleFamily, Scope
from core.vitals import Vital

TECHNICAL = AlarmCondition.TECHNICAL
MISSING_GRACE = timedelta(minutes=30)
GATEWAY_OFFLINE_AFTER = timedelta(
    minutes=15
)  # router restarts and short outages are covered by store-and-forward
BATTERY_LOW, BATTERY_CRITICAL, BATTERY_CLEAR = 20.0, 10.0, 25.0
# Longer than the gateway's status heartbeat (10 min), so a message that merely awaited its receipt
# when a status was sent is never reported: a newer status says it was confirmed long before this.
RECEIPTS_OVERDUE_AFTER = timedelta(minutes=20)
DEVICE_SILENT_AFTER = timedelta(hours=26)  # spot-check devices: a day's use plus slack


def _seconds(span: timedelta | np.ndarray) -> np.ndarray | float:
    return span.total_seconds() if isinstance(span, timedelta) else np.asarray(span, dtype=float)


def missing_vital_output(
    vital: Vital,
    patient_ids: Sequence[uuid.UUID],
    *,
    last_trusted_at: np.ndarray,
    every: timedelta | np.ndarray,
    plan_started_at: np.ndarray,
    now: datetime,
    grace: timedelta = MISSING_GRACE,
) -> RuleOutput:
    """Rule "missing:<vital>": the monitoring plan expects a trustworthy reading at least `every`.

    `last_trusted_at` is the newest reading without a doubtful quality flag, so a probe that only
    produces artefacts ends here instead of in silence. `every` is per patient in seconds (NaN = not in
    this patient's plan) or one timedelta. Before the first reading the plan's start is the reference.
    """
    now_s = now.timestamp()
    every_s = np.broadcast_to(_seconds(every), (len(patient_ids),))
    since = np.fmax(last_trusted_at, plan_started_at)
    age = now_s - since
    known = ~np.isnan(every_s) & ~np.isnan(since)
    grace_s = grace.total_seconds()
    fire = known & (age > every_s + grace_s)
    priority = np.where(age > 2 * every_s + grace_s, Priority.MEDIUM, Priority.LOW)

    def facts(i: int) -> MissingVital:
        never = bool(np.isnan(last_trusted_at[i]))
        return MissingVital(vital=vital, never=never, age_s=float(age[i]), every_s=float(every_s[i]))

    return output_from_masks(
        patient_ids=patient_ids, rule=RuleFamily.MISSING.key(vital.value), vital=vital.value,
        priority=priority, fire=fire, known=known, value=age / 3600, threshold=every_s / 3600,
        observed_at=np.full(age.shape, now_s), facts=facts, now=now, condition=TECHNICAL,
    )  # fmt: skip


def device_silent_output(
    patient_ids: Sequence[uuid.UUID],
    device_ids: Sequence[str],
    *,
    last_seen_at: np.ndarray,
    silent_after: timedelta | np.ndarray,
    now: datetime,
    priority: Priority = Priority.LOW,
) -> RuleOutput:
    """Rule "device_silent:<device>" per device row. Spot-check devices are quiet between uses by
    design, so give them a long `silent_after` (their clinical gap is `missing:<vital>`'s job) and a
    worn continuous sensor a short one, possibly at medium priority."""
    now_s = now.timestamp()
    silent = now_s - last_seen_at
    known = ~np.isnan(last_seen_at)
    fire = known & (silent > _seconds(silent_after))
    return _per_device(
        patient_ids, device_ids, RuleFamily.DEVICE_SILENT, priority, fire, known, silent / 3600, now,
        lambda i: DeviceSilent(device=device_ids[i], silent_s=float(silent[i])),
    )  # fmt: skip


def gateway_offline_output(
    patient_ids: Sequence[uuid.UUID],
    *,
    status: Sequence[str],
    status_at: np.ndarray,
    registered_at: np.ndarray,
    now: datetime,
    after: timedelta = GATEWAY_OFFLINE_AFTER,
) -> RuleOutput:
    """Rule "gateway_offline": the kit's gateway has said (or its MQTT last will has said) "offline", or
    has never come online since it was registered, for longer than `after`. Medium: nothing from that
    home reaches the ward until it is back, so someone should phone the patient."""
    now_s = now.timestamp()
    state = np.asarray(status)
    down = state != "online"
    since = np.where(np.isnan(status_at) | (state == "unknown"), registered_at, status_at)
    offline_for = now_s - since
    fire = down & (offline_for > after.total_seconds())
    known = fire | ~down  # only "online" clears: a new outage inside its grace time is not "back"

    def facts(i: int) -> GatewayOffline:
        return GatewayOffline(offline_s=float(offline_for[i]))

    return output_from_masks(
        patient_ids=patient_ids, rule=RuleFamily.GATEWAY_OFFLINE.key(), vital=None,
        priority=Priority.MEDIUM, fire=fire, known=known, value=offline_for / 3600,
        threshold=after.total_seconds() / 3600,
        observed_at=np.full(fire.shape, now_s), facts=facts, now=now, condition=TECHNICAL,
    )  # fmt: skip


def receipts_overdue_output(
    patient_ids: Sequence[uuid.UUID],
    *,
    status: Sequence[str],
    unconfirmed_since: np.ndarray,
    measurements: np.ndarray,
    now: datetime,
    after: timedelta = RECEIPTS_OVERDUE_AFTER,
) -> RuleOutput:
    """Rule "receipts_overdue": the kit is online and its latest status says a message it sent has had
    no receipt from ingest for longer than `after` (`unconfirmed_since`, NaN = nothing waits). Its
    readings are stuck between home and ward: a receipt path that is broken (ACL, ingest refusing
    without a receipt) or a loss the kit keeps re-sending into. Medium, like a kit offline. An offline
    kit says nothing here (`gateway_offline` speaks for it)."""
    now_s = now.timestamp()
    online = np.asarray(status) == "online"
    waited = now_s - unconfirmed_since
    fire = online & ~np.isnan(unconfirmed_since) & (waited > after.total_seconds())
    known = online

    def facts(i: int) -> ReceiptsOverdue:
        count = None if np.isnan(measurements[i]) else float(measurements[i])
        return ReceiptsOverdue(waited_s=float(waited[i]), measurements=count)

    return output_from_masks(
        patient_ids=patient_ids, rule=RuleFamily.RECEIPTS_OVERDUE.key(), vital=None,
        priority=Priority.MEDIUM, fire=fire, known=known, value=np.where(fire, waited / 3600, np.nan),
        threshold=after.total_seconds() / 3600,
        observed_at=np.full(fire.shape, now_s), facts=facts, now=now, condition=TECHNICAL,
    )  # fmt: skip


def battery_low_output(
    patient_ids: Sequence[uuid.UUID],
    device_ids: Sequence[str],
    *,
    percent: np.ndarray,
    measured_at: np.ndarray,
    now: datetime,
) -> RuleOutput:
    """Rule "battery_low:<device>" from the Battery Level characteristic (0x2A19, percent). Between 20 %
    and 25 % the rule says nothing, so a level wobbling around 20 % does not open and close alerts."""
    known = ~np.isnan(percent)
    fire = known & (percent <= BATTERY_LOW)
    quiet = known & ~fire & (percent < BATTERY_CLEAR)
    priority = np.where(percent <= BATTERY_CRITICAL, Priority.MEDIUM, Priority.LOW)
    return _per_device(
        patient_ids, device_ids, RuleFamily.BATTERY_LOW, priority, fire, known & ~quiet, percent, now,
        lambda i: BatteryLow(device=device_ids[i], percent=float(percent[i])), at=measured_at,
    )  # fmt: skip


def clock_not_set_output(
    patient_ids: Sequence[uuid.UUID],
    device_ids: Sequence[str],
    *,
    clock_not_set: np.ndarray,
    measured_at: np.ndarray,
    now: datetime,
) -> RuleOutput:
    """Rule "clock_not_set:<device>": the device's newest reading carried the quality flag
    `device_clock_not_set`, so its times are the gateway's receive times and trends are blurred. Rows
    with no reading (NaN `measured_at`) say nothing."""
    known = ~np.isnan(measured_at)
    fire = known & clock_not_set
    return _per_device(
        patient_ids, device_ids, RuleFamily.CLOCK_NOT_SET, Priority.LOW, fire, known,
        np.full(fire.shape, np.nan), now,
        lambda i: ClockNotSet(device=device_ids[i]), at=measured_at,
    )  # fmt: skip


def _per_device(
    patient_ids: Sequence[uuid.UUID],
    device_ids: Sequence[str],
    family: RuleFamily,
    priority: Priority | np.ndarray,
    fire: np.ndarray,
    known: np.ndarray,
    value: np.ndarray,
    now: datetime,
    facts: Callable[[int], Facts],
    *,
    at: np.ndarray | None = None,
) -> RuleOutput:
    """Device rows differ in rule key (one alert per device), so build them one by one."""
    now_s = now.timestamp()
    observed = np.full(fire.shape, now_s) if at is None else np.where(np.isnan(at), now_s, at)
    requests: list[AlertRequest] = []
    clears: list[AlertClear] = []
    for i in np.flatnonzero(fire | known).tolist():
        rule = family.key(device_ids[i])
        when = from_epoch_seconds(float(observed[i]))
        if not fire[i]:
            clears.append(AlertClear(patient_ids[i], rule, when))
            continue
        level = Priority(int(priority[i])) if isinstance(priority, np.ndarray) else priority
        requests.append(
            AlertRequest(
                patient_id=patient_ids[i], rule=rule, vital=None, priority=level,
                message=render(facts(int(i))),
                value=None if np.isnan(value[i]) else float(value[i]), threshold=None, observed_at=when,
                condition=TECHNICAL,
            )
        )  # fmt: skip
    return requests, clears


# --- the rules: on the timer, for every patient in care -----------------------------------------------
# The database is their state (plans, gateways, devices): nothing to rebuild after a restart. They judge
# everyone each tick, so their clears go to the store only where an alert of theirs is live.


@dataclass(frozen=True, slots=True)
class MissingVitalRule(OnTheTimer):
    family: RuleFamily = RuleFamily.MISSING

    def request(self, scope: Scope) -> PlannedVitalsRequest | None:
        return PlannedVitalsRequest() if scope.in_care else None

    def evaluate(self, inputs: tuple[PlannedVital, ...], now: datetime) -> RuleOutput:
        requests: list[AlertRequest] = []
        clears: list[AlertClear] = []
        for plan in inputs:
            got = missing_vital_output(
                plan.vital, plan.patients, last_trusted_at=plan.last_trusted_at, every=plan.every_s,
                plan_started_at=plan.plan_started_at, now=now,
            )  # fmt: skip
            requests += got[0]
            clears += got[1]
        return requests, clears


@dataclass(frozen=True, slots=True)
class GatewayOfflineRule(OnTheTimer):
    family: RuleFamily = RuleFamily.GATEWAY_OFFLINE

    def request(self, scope: Scope) -> KitStatusRequest | None:
        return KitStatusRequest() if scope.in_care else None

    def evaluate(self, inputs: KitStatus, now: datetime) -> RuleOutput:
        if not inputs.patients:
            return [], []
        return gateway_offline_output(
            inputs.patients, status=inputs.status, status_at=inputs.status_at,
            registered_at=inputs.registered_at, now=now,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ReceiptsOverdueRule(OnTheTimer):
    family: RuleFamily = RuleFamily.RECEIPTS_OVERDUE

    def request(self, scope: Scope) -> KitStatusRequest | None:
        return KitStatusRequest() if scope.in_care else None

    def evaluate(self, inputs: KitStatus, now: datetime) -> RuleOutput:
        if not inputs.patients:
            return [], []
        return receipts_overdue_output(
            inputs.patients, status=inputs.status, unconfirmed_since=inputs.unconfirmed_since,
            measurements=inputs.unconfirmed_measurements, now=now,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class DeviceRule(OnTheTimer):
    """One of the per-device alarms (`family` says which) over every device of every patient in care."""

    family: RuleFamily
    silent_after: timedelta = DEVICE_SILENT_AFTER  # DEVICE_SILENT only

    def request(self, scope: Scope) -> DeviceStatesRequest | None:
        return DeviceStatesRequest() if scope.in_care else None

    def evaluate(self, inputs: DeviceStates, now: datetime) -> RuleOutput:
        d = inputs
        if not d.patients:
            return [], []
        if self.family is RuleFamily.DEVICE_SILENT:
            return device_silent_output(
                d.patients, d.devices, last_seen_at=d.last_seen_at, silent_after=self.silent_after, now=now
            )
        if self.family is RuleFamily.BATTERY_LOW:
            return battery_low_output(
                d.patients, d.devices, percent=d.battery_percent, measured_at=d.battery_at, now=now
            )
        if self.family is RuleFamily.CLOCK_NOT_SET:
            return clock_not_set_output(
                d.patients, d.devices, clock_not_set=d.clock_not_set, measured_at=d.clock_checked_at, now=now
            )
        raise ValueError(f"{self.family} is not a device rule")


# --- scalar twins, used only in tests ---------------------------------------------------------
# Each returns what the rule says about one row: None (nothing), "clear", or the priority to raise.


def missing_vital_one(
    last_trusted_at: float, every_s: float, plan_started_at: float, now_s: float, grace_s: float
) -> Priority | str | None:
    if math.isnan(every_s):
        return None
    candidates = [t for t in (last_trusted_at, plan_started_at) if not math.isnan(t)]
    if not candidates:
        return None
    age = now_s - max(candidates)
    if age <= every_s + grace_s:
        return "clear"
    return Priority.MEDIUM if age > 2 * every_s + grace_s else Priority.LOW


def gateway_offline_one(
    status: str, status_at: float, registered_at: float, now_s: float, after_s: float
) -> Priority | str | None:
    if status == "online":
        return "clear"
    since = registered_at if math.isnan(status_at) or status == "unknown" else status_at
    return Priority.MEDIUM if now_s - since > after_s else None


def receipts_overdue_one(
    status: str, unconfirmed_since: float, now_s: float, after_s: float
) -> Priority | str | None:
    if status != "online":
        return None
    if not math.isnan(unconfirmed_since) and now_s - unconfirmed_since > after_s:
        return Priority.MEDIUM
    return "clear"


def battery_low_one(percent: float) -> Priority | str | None:
    if math.isnan(percent):
        return None
    if percent <= BATTERY_CRITICAL:
        return Priority.MEDIUM
    if percent <= BATTERY_LOW:
        return Priority.LOW
    return "clear" if percent >= BATTERY_CLEAR else None
