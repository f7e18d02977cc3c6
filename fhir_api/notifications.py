"""What a subscription is pushed, and the record of each delivery (fhir_subscriptions, migration 0025).
paging.fhir_push drives these steps and does the HTTP; this module decides what is sent.

The changes: the subscription's criteria (fhir_api.subscriptions) run through fhir_api.queries.find,
the very search the API answers with, within fhir_api.reach at the moment of sending, so a client is
never pushed a patient it could not read, and a grant that ended stops the pushes. Changes are taken
in the order (last_updated, id) after the subscription's cursor, and only those older than `settle`:
a transaction that stamped a row a moment ago and has not committed yet cannot be overtaken.

One delivery is fixed when first planned (its id and the change it reaches, `pending_*`) and kept over
its retries; each attempt rebuilds it from the database, so a retry never sends a patient the client
may no longer read, and a resource changed again meanwhile leaves it for the next delivery. The
cursor moves only when a 2xx was answered (`delivered`).

The notification (FHIR R4, in the way of the Subscriptions R5 Backport IG for R4): a Bundle of type
`history` whose id is the delivery's (also X-Hemma-Delivery), its first entry a Parameters with the
backport's subscription-status profile (the Subscription, its status, `event-notification`, the count
of events since the subscription started, one `notification-event` per resource), then each resource
as fhir_api.resources built it. Every patient shown writes one access-log row per delivery
(FHIR_NOTIFY, the system client, the partner grant when a grant allowed it), before it is sent.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Final

from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntryRequest, BundleEntryResponse
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.parameters import Parameters, ParametersParameter
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource

from care import access_log
from fhir_api.queries import find
from fhir_api.search import DateBound, Refusal
from fhir_api.subscriptions import parse_criteria
from storage.steps import Sql, Steps

STATUS_PROFILE: Final = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4"
)
REBUILD_MAX: Final = 1000
_MICROSECOND: Final = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification ready to send: the same id over every attempt."""

    subscription_id: uuid.UUID
    delivery_id: uuid.UUID
    client_id: str
    endpoint: str
    secret: str
    headers: tuple[str, ...]
    bundle: Bundle
    events: int  # resources in it
    attempt: int  # 1 for the first


@dataclass(frozen=True, slots=True)
class _Row:
    id: uuid.UUID
    client_id: str
    status: str
    criteria: str
    endpoint: str
    secret: str
    headers: list[str]
    end_at: datetime | None
    cursor_at: datetime
    cursor_id: str
    events_delivered: int
    pending_id: uuid.UUID | None
    pending_since: datetime | None
    pending_upto_at: datetime | None
    pending_upto_id: str | None
    pending_patients: list[uuid.UUID]
    failures: int


_SELECT = (
    "SELECT s.id, s.client_id, s.status, s.criteria, s.endpoint, s.secret, s.headers, s.end_at, s.cursor_at,"
    " s.cursor_id, s.events_delivered, s.pending_id, s.pending_since, s.pending_upto_at, s.pending_upto_id,"
    " s.pending_patients, s.failures FROM fhir_subscriptions s JOIN system_clients c ON c.id = s.client_id"
)


def due(now: datetime) -> Steps[list[uuid.UUID]]:
    """Active subscriptions of enabled clients whose next attempt is due."""
    rows = yield Sql(
        "SELECT s.id FROM fhir_subscriptions s JOIN system_clients c ON c.id = s.client_id"
        " WHERE s.status = 'active' AND NOT c.disabled"
        " AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= %s)"
        " ORDER BY s.created_at, s.id",
        (now,),
        fetch="all",
    )
    return [r[0] for r in rows]


def prepare(
    subscription_id: uuid.UUID, *, now: datetime, settle: timedelta, zone: tzinfo, base: str, batch: int
) -> Steps[Delivery | None]:
    """The delivery to send now (the pending one again, or a new one), logged; None: nothing to send."""
    raw = yield Sql(
        _SELECT + " WHERE s.id = %s AND s.status = 'active' AND NOT c.disabled FOR UPDATE OF s SKIP LOCKED",
        (subscription_id,),
        fetch="one",
    )
    if raw is None:
        return None
    row = _Row(*raw)
    if row.end_at is not None and row.end_at <= now:
        yield Sql("UPDATE fhir_subscriptions SET status = 'off' WHERE id = %s", (row.id,))
        return None
    try:
        criteria = parse_criteria(row.criteria, zone)
    except Refusal:  # kept before the grammar changed: say so on the subscription, send nothing
        yield Sql(
            "UPDATE fhir_subscriptions SET status = 'error', last_error = %s WHERE id = %s",
            ("Villkoret kan inte längre läsas", row.id),
        )
        return None
    shown: list[Resource] = []
    grants: dict[uuid.UUID, int | None] = {}
    if row.pending_id is not None:
        assert row.pending_upto_at is not None and row.pending_upto_id is not None
        upto = (row.pending_upto_at, row.pending_upto_id)
        search = dataclasses.replace(
            criteria.search, changed_after=(row.cursor_at, row.cursor_id), count=REBUILD_MAX, offset=0,
            last_updated=(DateBound("lt", row.pending_upto_at + _MICROSECOND, None),),
        )  # fmt: skip
        found = yield from find(search, client_id=row.client_id, at=now)
        shown = [r for r in found.resources if (_changed(r), str(r.id)) <= upto]
        grants = found.patients
        if not shown:  # every resource of the waiting delivery changed again or left the client's reach
            yield from _advance(row, 0, now)
            row = dataclasses.replace(
                row, cursor_at=upto[0], cursor_id=upto[1], pending_id=None, pending_since=None,
                pending_upto_at=None, pending_upto_id=None, pending_patients=[], failures=0,
            )  # fmt: skip
    if row.pending_id is None:
        search = dataclasses.replace(
            criteria.search, changed_after=(row.cursor_at, row.cursor_id), count=batch, offset=0,
            last_updated=(DateBound("lt", now - settle, None),),
        )  # fmt: skip
        found = yield from find(search, client_id=row.client_id, at=now)
        if not found.resources:
            return None
        last = found.resources[-1]
        row = dataclasses.replace(
            row, pending_id=uuid.uuid4(), pending_since=now, pending_upto_at=_changed(last),
            pending_upto_id=str(last.id), pending_patients=[],
        )  # fmt: skip
        shown, grants = found.resources, found.patients
    logged = yield from _log(row, shown, grants)
    yield Sql(
        "UPDATE fhir_subscriptions SET pending_id = %s, pending_since = %s, pending_upto_at = %s,"
        " pending_upto_id = %s, pending_patients = %s WHERE id = %s",
        (row.pending_id, row.pending_since, row.pending_upto_at, row.pending_upto_id, logged, row.id),
    )
    assert row.pending_id is not None and row.pending_since is not None
    bundle = notification_bundle(
        delivery_id=row.pending_id, subscription_id=row.id, base=base, events_before=row.events_delivered,
        resources=shown, at=row.pending_since,
    )  # fmt: skip
    return Delivery(row.id, row.pending_id, row.client_id, row.endpoint, row.secret, tuple(row.headers),
                    bundle, len(shown), row.failures + 1)  # fmt: skip


def _changed(resource: Resource) -> datetime:
    meta = resource.meta
    assert meta is not None and isinstance(meta.lastUpdated, datetime)
    return meta.lastUpdated


def _patient_of(resource: Resource) -> uuid.UUID:
    subject = resource.subject  # type: ignore[attr-defined]  # Flag, Observation, Encounter
    return uuid.UUID(str(subject.reference).removeprefix("Patient/"))


def _log(row: _Row, shown: Sequence[Resource], grants: dict[uuid.UUID, int | None]) -> Steps[list[uuid.UUID]]:
    """One access-log row per patient of the delivery (the first attempt that shows them)."""
    logged = list(row.pending_patients)
    for patient in dict.fromkeys(_patient_of(r) for r in shown):
        if patient in logged:
            continue
        record = access_log.AccessRecord(
            staff_user_id=None,
            username=access_log.system_username(row.client_id),
            patient_id=patient,
            action=access_log.FHIR_NOTIFY,
            context=f"fhir:Subscription/{row.id} notification {row.pending_id}",
            entry_point=access_log.FHIR,
            system_client_id=row.client_id,
            partner_grant_id=grants.get(patient),
        )
        yield Sql(access_log.INSERT_ACCESS_LOG, record.row())
        logged.append(patient)
    return logged


def _advance(row: _Row, events: int, now: datetime) -> Steps[None]:
    yield Sql(
        "UPDATE fhir_subscriptions SET cursor_at = pending_upto_at, cursor_id = pending_upto_id,"
        " events_delivered = events_delivered + %s, pending_id = NULL, pending_since = NULL,"
        " pending_upto_at = NULL, pending_upto_id = NULL, pending_patients = '{}', failures = 0,"
        " next_attempt_at = NULL, last_error = NULL,"
        " last_delivered_at = CASE WHEN %s > 0 THEN %s ELSE last_delivered_at END"
        " WHERE id = %s AND pending_id IS NOT NULL",
        (events, events, now, row.id),
    )


def delivered(delivery: Delivery, *, now: datetime, detail: str) -> Steps[None]:
    """A 2xx: the cursor moves past the delivery."""
    yield from _attempt(delivery, now, ok=True, detail=detail)
    yield Sql(
        "UPDATE fhir_subscriptions SET cursor_at = pending_upto_at, cursor_id = pending_upto_id,"
        " events_delivered = events_delivered + %s, pending_id = NULL, pending_since = NULL,"
        " pending_upto_at = NULL, pending_upto_id = NULL, pending_patients = '{}', failures = 0,"
        " next_attempt_at = NULL, last_error = NULL, last_delivered_at = %s"
        " WHERE id = %s AND pending_id = %s",
        (delivery.events, now, delivery.subscription_id, delivery.delivery_id),
    )


def failed(delivery: Delivery, *, now: datetime, detail: str, retry_at: datetime | None) -> Steps[None]:
    """Not delivered: tried again at `retry_at`, or (None) the subscription is in `error` until the
    operator turns it on; the delivery stays pending either way, so nothing is lost."""
    yield from _attempt(delivery, now, ok=False, detail=detail)
    yield Sql(
        "UPDATE fhir_subscriptions SET failures = failures + 1, last_error = %s, next_attempt_at = %s,"
        " status = CASE WHEN %s THEN 'error' ELSE status END WHERE id = %s AND pending_id = %s",
        (detail[:300], retry_at, retry_at is None, delivery.subscription_id, delivery.delivery_id),
    )


def _attempt(delivery: Delivery, now: datetime, *, ok: bool, detail: str) -> Steps[None]:
    yield Sql(
        "INSERT INTO fhir_notification_attempts"
        " (subscription_id, delivery_id, attempt, at, ok, events, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (delivery.subscription_id, delivery.delivery_id, delivery.attempt, now, ok, delivery.events,
         detail[:300]),
    )  # fmt: skip


# --- the Bundle ----------------------------------------------------------------------------------


def notification_bundle(
    *, delivery_id: uuid.UUID, subscription_id: uuid.UUID, base: str, events_before: int,
    resources: Sequence[Resource], at: datetime,
) -> Bundle:  # fmt: skip
    """The history Bundle of one delivery (see the module docstring)."""
    events = [
        ParametersParameter(
            name="notification-event",
            part=[
                ParametersParameter(name="event-number", valueString=str(events_before + n)),
                ParametersParameter(name="timestamp", valueInstant=_changed(r)),
                ParametersParameter(name="focus", valueReference=Reference(reference=_url(base, r))),
            ],
        )
        for n, r in enumerate(resources, start=1)
    ]
    status = Parameters(
        id=str(delivery_id),
        meta=Meta(profile=[STATUS_PROFILE]),
        parameter=[
            ParametersParameter(
                name="subscription",
                valueReference=Reference(reference=f"{base}/Subscription/{subscription_id}"),
            ),
            ParametersParameter(name="status", valueCode="active"),
            ParametersParameter(name="type", valueCode="event-notification"),
            ParametersParameter(
                name="events-since-subscription-start", valueString=str(events_before + len(resources))
            ),
            *events,
        ],
    )
    entries = [
        BundleEntry(
            fullUrl=f"urn:uuid:{delivery_id}",
            resource=status,
            request=BundleEntryRequest(method="GET", url=f"Subscription/{subscription_id}/$status"),
            response=BundleEntryResponse(status="200"),
        )
    ]
    entries += [
        BundleEntry(
            fullUrl=_url(base, r),
            resource=r,
            request=BundleEntryRequest(method="PUT", url=f"{r.get_resource_type()}/{r.id}"),
            response=BundleEntryResponse(status="200", lastModified=_changed(r)),
        )
        for r in resources
    ]
    return Bundle(id=str(delivery_id), type="history", timestamp=at, entry=entries)


def _url(base: str, resource: Resource) -> str:
    return f"{base}/{resource.get_resource_type()}/{resource.id}"


def body(bundle: Bundle) -> bytes:
    """The notification's bytes, as signed and sent."""
    return bundle.model_dump_json(exclude_none=True).encode()
