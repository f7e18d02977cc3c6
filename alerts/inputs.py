"""What rules ask for, and what they are given: typed input requests and the arrays that answer them.

A rule's `request(scope)` returns one of the `*Request`s below; `ingest.rule_inputs` (the one module
that reads the database for rules) fulfils it with the matching inputs; the rule's `evaluate` sees only
those. Every array has one row per patient (or device) in the order of the inputs' `patients`; times
are float epoch seconds with NaN for "never" (`alerts.model.epoch_seconds`).

Requests are frozen and hashable: two rules asking the same thing in one run (the gateway rules, the
device rules) are answered by one read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from alerts.rule import InputRequest
from core.vitals import Vital

if TYPE_CHECKING:  # the kernels import this module for their requests: types only, no import cycle
    import numpy as np

    from alerts.news2 import News2Latest
    from alerts.thresholds import PersonalLimits
    from alerts.trends import Slope

Patients = tuple[uuid.UUID, ...]


# --- thresholds (alerts.judge) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class RecentReadings:
    """Each patient's last `alerts.judge.WINDOW_READINGS` readings of one vital, oldest first."""

    vital: Vital
    patients: Patients
    values: np.ndarray  # [patients, readings], NaN-padded on the left
    times: np.ndarray
    doubtful: np.ndarray  # bool: a doubtful quality flag
    continuous: np.ndarray  # bool per patient: the newest came from a streaming characteristic
    live: dict[tuple[uuid.UUID, str], int]  # Priority value of the live alert per (patient, key)


@dataclass(frozen=True, slots=True, eq=False)
class ThresholdInputs:
    windows: tuple[RecentReadings, ...]  # one per vital judged
    personal: PersonalLimits  # physicians' limits in force
    spo2_scale_2: frozenset[uuid.UUID]  # patients ordered on NEWS2 SpO2 scale 2


@dataclass(frozen=True, slots=True)
class ThresholdRequest(InputRequest[ThresholdInputs]):
    by_vital: tuple[tuple[Vital, Patients, tuple[str, ...]], ...]  # vital, who, its rule keys


# --- NEWS2 (alerts.news2) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class News2Inputs:
    patients: Patients
    latest: News2Latest  # newest trustworthy value of every parameter, with the SpO2 scale ordered


@dataclass(frozen=True, slots=True)
class News2Request(InputRequest[News2Inputs]):
    patients: Patients


# --- weight (alerts.weight) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Series:
    """Per patient, readings in time order (weights, hourly means)."""

    patients: Patients
    values: np.ndarray  # [patients, weights] in time order, NaN-padded on the right
    times: np.ndarray


@dataclass(frozen=True, slots=True)
class RecentWeightsRequest(InputRequest[Series]):
    """Trustworthy weights from `window` before each patient's newest one."""

    patients: Patients
    window: timedelta


@dataclass(frozen=True, slots=True, eq=False)
class WeightGainInputs:
    """The 3-day weight window and what the patient reported with it (the combined rule)."""

    weights: Series  # as RecentWeightsRequest reads it
    # Per patient: epoch s of the newest answer to `questionnaire` if it reports `flag`, else NaN; and
    # then every flag of that answer, in the questionnaire's order (else empty).
    reported_at: np.ndarray
    reported: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class WeightGainRequest(InputRequest[WeightGainInputs]):
    """Recent weights, and whether the newest answer to a questionnaire carries a flag."""

    patients: Patients
    window: timedelta
    questionnaire: str
    flag: str


@dataclass(frozen=True, slots=True)
class WeightHistoryRequest(InputRequest[Series]):
    """Every trustworthy weight since enrolment (the EWMA chart is replayed, so a restart changes nothing)."""

    patients: Patients


# --- what the patient reported (alerts.symptoms) ------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class SymptomReports:
    """One row per (patient, questionnaire): the newest response within the window and its flags,
    and the patients' recent weights (the combined rule decides with them)."""

    patients: Patients  # of each row; a patient has one row per questionnaire
    questionnaires: tuple[str, ...]
    authored_at: np.ndarray  # epoch s; NaN: none within the window (a live alert to judge)
    codes: tuple[str, ...]  # the flag codes the rows use
    flag: np.ndarray  # [rows, flags] int: index into `codes` in the answer's order, -1 = none
    priority: np.ndarray  # [rows, flags] int: each flag's Priority value, 0 = none
    weights: Series  # one row per patient of `weights.patients`
    weight_row: np.ndarray  # int per row: its patient's row in `weights`


@dataclass(frozen=True, slots=True)
class SymptomReportsRequest(InputRequest[SymptomReports]):
    """`patients`' newest response of each questionnaire answered within `window`, and each live
    symptoms alert of theirs; None: every patient in care with a live symptoms alert (the timer)."""

    patients: Patients | None
    window: timedelta
    weight_window: timedelta


# --- trends (alerts.trends) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class TrendSlopes:
    patients: Patients
    slope: Slope  # over the vital's trend window (alerts.running.SlotWindows, kept by the engine)
    observed_at: np.ndarray  # the newest point in each window


@dataclass(frozen=True, slots=True)
class TrendSlopeRequest(InputRequest[TrendSlopes]):
    vital: Vital
    min_samples: int


@dataclass(frozen=True, slots=True)
class HourlyMeansRequest(InputRequest[Series]):
    """Each patient's trustworthy readings of `vital` over `span`: one mean per hour, at its middle."""

    vital: Vital
    patients: Patients
    span: timedelta


# --- technical alarms (alerts.missing) --------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class PlannedVital:
    vital: Vital
    patients: Patients
    last_trusted_at: np.ndarray
    every_s: np.ndarray
    plan_started_at: np.ndarray


@dataclass(frozen=True, slots=True)
class PlannedVitalsRequest(InputRequest[tuple[PlannedVital, ...]]):
    """Every monitoring plan of every patient in care, grouped by vital."""


@dataclass(frozen=True, slots=True, eq=False)
class KitStatus:
    """Per patient in care with a gateway: its last status and what awaits a receipt."""

    patients: Patients
    status: tuple[str, ...]
    status_at: np.ndarray
    registered_at: np.ndarray
    unconfirmed_since: np.ndarray
    unconfirmed_measurements: np.ndarray


@dataclass(frozen=True, slots=True)
class KitStatusRequest(InputRequest[KitStatus]):
    pass


@dataclass(frozen=True, slots=True, eq=False)
class KitConfigStates:
    """Per patient in care whose kit has a configuration (care.kit): issued and applied versions."""

    patients: Patients
    status: tuple[str, ...]
    version: np.ndarray  # the current configuration version
    issued_at: np.ndarray  # when it was issued
    applied_version: np.ndarray  # what the kit last reported (NaN: none)


@dataclass(frozen=True, slots=True)
class KitConfigRequest(InputRequest[KitConfigStates]):
    pass


@dataclass(frozen=True, slots=True, eq=False)
class ContactRequests:
    """Per patient in care: the oldest contact request nobody has taken, and the ward's time."""

    patients: Patients
    oldest_open_at: np.ndarray  # ingest's receive time of the oldest open request (NaN: none)
    source: tuple[str, ...]  # of that request ("" when none)
    after_s: np.ndarray  # the ward's escalate_after_minutes, in seconds


@dataclass(frozen=True, slots=True)
class ContactRequestsRequest(InputRequest[ContactRequests]):
    pass


@dataclass(frozen=True, slots=True, eq=False)
class DeviceStates:
    """Per device of every patient in care (rows ordered by patient, then device)."""

    patients: Patients
    devices: tuple[str, ...]
    last_seen_at: np.ndarray
    battery_percent: np.ndarray
    battery_at: np.ndarray
    clock_not_set: np.ndarray  # bool
    clock_checked_at: np.ndarray


@dataclass(frozen=True, slots=True)
class DeviceStatesRequest(InputRequest[DeviceStates]):
    pass
