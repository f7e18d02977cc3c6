"""Per-row rule results (numpy masks over patients) as the alert requests and clears the store takes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np

from alerts.facts import Facts
from alerts.messages_sv import render
from alerts.model import AlarmCondition, AlertClear, AlertRequest, Priority, RuleOutput, from_epoch_seconds


def output_from_masks(
    *,
    patient_ids: Sequence[uuid.UUID],
    rule: str,
    vital: str | None,
    priority: Priority | np.ndarray,
    fire: np.ndarray,
    known: np.ndarray,
    value: np.ndarray,
    threshold: float | np.ndarray,
    observed_at: np.ndarray,
    facts: Callable[[int], Facts],
    now: datetime,
    condition: AlarmCondition = AlarmCondition.PHYSIOLOGICAL,
) -> RuleOutput:
    """Requests for rows in `fire`; clears for rows in `known & ~fire` (rows not `known` say nothing).

    `observed_at` is epoch seconds per row (NaN → `now`); `priority` is one for all rows or an int array
    of Priority values; `facts(i)` is what row i found, worded by `alerts.messages_sv`.
    """
    at = np.where(np.isnan(observed_at), now.timestamp(), observed_at)
    per_row_priority = isinstance(priority, np.ndarray)
    limits = np.broadcast_to(np.asarray(threshold, dtype=float), fire.shape)
    requests = [
        AlertRequest(
            patient_id=patient_ids[i],
            rule=rule,
            vital=vital,
            priority=Priority(int(priority[i])) if per_row_priority else priority,  # type: ignore[index, arg-type]
            message=render(facts(int(i))),
            value=None if np.isnan(value[i]) else float(value[i]),
            threshold=None if np.isnan(limits[i]) else float(limits[i]),
            observed_at=from_epoch_seconds(float(at[i])),
            condition=condition,
        )
        for i in np.flatnonzero(fire).tolist()
    ]
    clears = [
        AlertClear(patient_ids[i], rule, from_epoch_seconds(float(at[i])))
        for i in np.flatnonzero(known & ~fire).tolist()
    ]
    return requests, clears
