"""Technical alarm `config_not_applied`: the kit is online but has not applied its configuration.

Staff changed the kit (a device added or replaced, the monitoring plan) and ingest published a new
`KitConfig` version (docs/protocol.md, "KitConfig"); a connected gateway applies it at once and says
so in its next status. A kit that stays online on an older version for `CONFIG_NOT_APPLIED_AFTER`
reads the wrong devices (a replaced oximeter goes unread) or reminds on an old schedule, or runs
software from before kit configuration.

Low priority (IEC 60601-1-8 technical): the kit keeps sending what its current devices measure, so
nothing is lost now; a vital that goes unread because of it is `missing:<vital>`'s alarm, at its own
priority. An offline kit says nothing here (`gateway_offline` speaks for it). Like every technical
alarm it is held pending for 10 minutes by the lifecycle before it opens.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from alerts.facts import ConfigNotApplied
from alerts.inputs import KitConfigRequest, KitConfigStates
from alerts.model import AlarmCondition, Priority, RuleOutput
from alerts.requests import output_from_masks
from alerts.rule import OnTheTimer, RuleFamily, Scope

# The gateway applies a config within seconds of receiving it and reports it at once; 10 minutes
# covers a reconnect and the 10-minute status heartbeat of a gateway that missed the prompt status.
CONFIG_NOT_APPLIED_AFTER = timedelta(minutes=10)


def config_not_applied_output(
    patient_ids: Sequence[uuid.UUID],
    *,
    status: Sequence[str],
    version: np.ndarray,
    issued_at: np.ndarray,
    applied_version: np.ndarray,
    now: datetime,
    after: timedelta = CONFIG_NOT_APPLIED_AFTER,
) -> RuleOutput:
    """Rule "config_not_applied" per kit: online, its applied version (NaN: none) below the current
    one, issued more than `after` ago. An online kit that has applied the current version clears."""
    now_s = now.timestamp()
    online = np.asarray(status) == "online"
    behind = np.isnan(applied_version) | (applied_version < version)
    waited = now_s - issued_at
    fire = online & behind & (waited > after.total_seconds())
    known = online & (fire | ~behind)  # a fresh version not yet applied is neither

    def facts(i: int) -> ConfigNotApplied:
        applied = None if np.isnan(applied_version[i]) else int(applied_version[i])
        return ConfigNotApplied(version=int(version[i]), applied=applied, waited_s=float(waited[i]))

    return output_from_masks(
        patient_ids=patient_ids, rule=RuleFamily.CONFIG_NOT_APPLIED.key(), vital=None,
        priority=Priority.LOW, fire=fire, known=known, value=np.where(fire, waited / 3600, np.nan),
        threshold=after.total_seconds() / 3600,
        observed_at=np.full(fire.shape, now_s), facts=facts, now=now, condition=AlarmCondition.TECHNICAL,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ConfigNotAppliedRule(OnTheTimer):
    family: RuleFamily = RuleFamily.CONFIG_NOT_APPLIED

    def request(self, scope: Scope) -> KitConfigRequest | None:
        return KitConfigRequest() if scope.in_care else None

    def evaluate(self, inputs: KitConfigStates, now: datetime) -> RuleOutput:
        if not inputs.patients:
            return [], []
        return config_not_applied_output(
            inputs.patients, status=inputs.status, version=inputs.version, issued_at=inputs.issued_at,
            applied_version=inputs.applied_version, now=now,
        )  # fmt: skip


# --- scalar twin, used only in tests: None (nothing), "clear", or the priority to raise ----------------


def config_not_applied_one(
    status: str, version: float, issued_at: float, applied_version: float, now_s: float, after_s: float
) -> Priority | str | None:
    if status != "online":
        return None
    if not math.isnan(applied_version) and applied_version >= version:
        return "clear"
    return Priority.LOW if now_s - issued_at > after_s else None
