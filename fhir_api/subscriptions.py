"""FHIR R4 Subscriptions (rest-hook): what a system client asks to be pushed, checked once; the one
writer of fhir_subscriptions (migration 0025). The push itself is fhir_api.notifications and
paging.fhir_push.

A subscription is

* `criteria`: a search of Flag, Observation or Encounter in the FHIR search grammar, parsed by
  fhir_api.search's own parser (never a second one): `Flag?status=active`,
  `Observation?code=http://loinc.org|29463-7`. Paging and change parameters (`_count`, `_offset`,
  `_lastUpdated`, `_format`) are the push's own and are refused. What a client is pushed is what the
  same search would show it (fhir_api.reach) when the change is delivered.
* A status criterion follows a resource through its end: every Flag Hemma shows was active before it
  became inactive and every stay in progress before it finished, so `Flag?status=active` delivers the
  alert's resolution too, and `Encounter?status=in-progress` the discharge (R4 criteria have no
  other way to tell a subscriber that what it follows has ended; R5 topics call it "previous or
  current"). `status=inactive` / `finished` stay as they are.
* `channel`: type `rest-hook`, payload `application/fhir+json`, an `https` endpoint (`http` only to
  this machine's loopback: a receiver in a test or in development; nothing then leaves the host), up
  to five `header`s sent with each notification, and the HMAC secret of the notifications'
  signature (paging/notify/webhook.py's scheme) as the extension SECRET_EXTENSION on the channel, 32
  to 256 characters. R4 has no field for a signing secret; neither the secret nor the headers are
  ever shown again.
* `status`: `active` (a request for `requested` or `active` becomes active at once), `error` after
  repeated failed deliveries, `off` when the client deletes it or its `end` has passed. Only the
  operator (`hemma fhir subscription on`) turns one in error on again.

A client sees, and ends, its own subscriptions only; another's answers as one that does not exist.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.subscription import Subscription, SubscriptionChannel
from pydantic import ValidationError

from care import access_log
from care.acting import Origin, admin_audited
from care.permissions import AdminAction
from fhir_api import codes
from fhir_api.search import Refusal, Search, invalid, parse
from storage.steps import Sql, Steps

RESOURCE_TYPES: Final = ("Flag", "Observation", "Encounter")
SECRET_EXTENSION: Final = f"{codes.HEMMA}/StructureDefinition/subscription-hmac-secret"
PAYLOAD: Final = "application/fhir+json"
MAX_HEADERS: Final = 5
_PUSH_OWN: Final = frozenset({"_count", "_offset", "_lastUpdated", "_format"})
# A status a resource only ever leaves for its end (see the module docstring).
_FOLLOWED_TO_END: Final = {("Flag", "active"), ("Encounter", "in-progress")}
_OUR_HEADERS: Final = frozenset({"content-type", "content-length", "host", "user-agent", "x-hemma-signature",
                                 "x-hemma-delivery"})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Criteria:
    resource_type: str
    search: Search  # what the push searches, the status widened as the docstring says


@dataclass(frozen=True, slots=True)
class NewSubscription:
    criteria: str
    resource_type: str
    endpoint: str
    secret: str
    headers: tuple[str, ...]
    reason: str
    end: datetime | None


@dataclass(frozen=True, slots=True)
class Stored:
    """A fhir_subscriptions row as the client and the operator see it (never the secret or headers)."""

    id: uuid.UUID
    client_id: str
    status: str
    criteria: str
    endpoint: str
    reason: str
    end: datetime | None
    created_at: datetime
    events_delivered: int
    failures: int
    last_error: str | None
    last_delivered_at: datetime | None


def parse_criteria(text: str, zone: tzinfo) -> Criteria:
    """`Type?name=value&...` with fhir_api.search's parser; Refusal (400) for anything else."""
    kind, _, query = text.partition("?")
    if kind not in RESOURCE_TYPES:
        raise invalid("Prenumerationer finns bara på Flag, Observation och Encounter")
    if len(text) > 1024:
        raise invalid("Villkoret är för långt")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query), errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise invalid("Villkoret kan inte läsas") from None
    if any(name in _PUSH_OWN for name, _ in pairs):
        raise invalid("_count, _offset, _lastUpdated och _format bestäms av Hemma vid push")
    search = parse(kind, pairs, zone)
    if (kind, search.status) in _FOLLOWED_TO_END:
        search = dataclasses.replace(search, status=None)
    return Criteria(kind, search)


def endpoint_allowed(url: str) -> bool:
    """https anywhere; http only to this machine's loopback (tests and development)."""
    parts = urlsplit(url)
    if not parts.hostname or parts.username or parts.password or parts.fragment:
        return False
    if parts.scheme == "https":
        return True
    if parts.scheme != "http":
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def checked_request(body: object, zone: tzinfo) -> NewSubscription:
    """A POSTed Subscription as Hemma keeps it; Refusal (400) naming what is wrong, never echoing it."""
    if not isinstance(body, dict) or body.get("resourceType") != "Subscription":
        raise invalid("Skicka en Subscription-resurs")
    try:
        asked = Subscription.model_validate(body)
    except ValidationError:
        raise invalid("Subscription-resursen är inte giltig FHIR R4") from None
    if asked.status not in ("requested", "active"):
        raise invalid("En ny prenumeration har status requested eller active")
    criteria = parse_criteria(asked.criteria or "", zone)
    channel = asked.channel
    if channel.type != "rest-hook":
        raise invalid("Hemma skickar bara med channel.type rest-hook")
    if channel.payload != PAYLOAD:
        raise invalid(f"channel.payload måste vara {PAYLOAD}")
    endpoint = str(channel.endpoint or "")
    if len(endpoint) > 2048 or not endpoint_allowed(endpoint):
        raise invalid("channel.endpoint måste vara en https-adress (http bara till den egna datorn)")
    secrets = [e.valueString for e in channel.extension or [] if e.url == SECRET_EXTENSION]
    if len(secrets) != 1 or not isinstance(secrets[0], str) or not 32 <= len(secrets[0]) <= 256:
        raise invalid(f"Ange signeringshemligheten (32–256 tecken) som tillägget {SECRET_EXTENSION}")
    headers = tuple(str(h) for h in channel.header or [])
    check_headers(headers)
    reason = (asked.reason or "").strip()
    if not 1 <= len(reason) <= 500:
        raise invalid("Ange reason (högst 500 tecken)")
    end = asked.end if isinstance(asked.end, datetime) else None
    return NewSubscription(asked.criteria or "", criteria.resource_type, endpoint, secrets[0], headers,
                           reason, end)  # fmt: skip


def check_headers(headers: Sequence[str]) -> None:
    if len(headers) > MAX_HEADERS:
        raise invalid(f"Högst {MAX_HEADERS} channel.header")
    for header in headers:
        name, colon, value = header.partition(":")
        if (
            not colon
            or not name.strip()
            or not all(c.isascii() and c.isprintable() for c in header)
            or not all(c.isalnum() or c in "-_" for c in name.strip())
            or name.strip().lower() in _OUR_HEADERS
            or len(header) > 1024
            or not value.strip()
        ):
            raise invalid("Ett channel.header ska vara 'Namn: värde' och får inte ersätta Hemmas egna")


# --- the writer ----------------------------------------------------------------------------------

_COLUMNS = (
    "id, client_id, status, criteria, endpoint, reason, end_at, created_at, events_delivered, failures,"
    " last_error, last_delivered_at"
)


def _stored(row: Sequence[Any]) -> Stored:
    return Stored(*row)


def create(
    new: NewSubscription, *, client_id: str, now: datetime, origin: Origin | None, by_operator: bool
) -> Steps[Stored]:
    """Keep the subscription, active from `now` on: changes after that moment are pushed."""
    client = yield Sql(
        "SELECT 1 FROM system_clients WHERE id = %s AND NOT disabled", (client_id,), fetch="one"
    )
    if client is None:
        raise Refusal(400, "invalid", "Systemklienten finns inte eller är avstängd")
    created_by = access_log.OPERATOR if by_operator else access_log.system_username(client_id)
    row = yield Sql(
        "INSERT INTO fhir_subscriptions (client_id, status, criteria, resource_type, endpoint, secret,"
        " headers, reason, end_at, created_at, created_by, cursor_at)"
        f" VALUES (%s, 'active', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
        (client_id, new.criteria, new.resource_type, new.endpoint, new.secret, list(new.headers), new.reason,
         new.end, now, created_by, now),
        fetch="one",
    )  # fmt: skip
    stored = _stored(row)
    yield from _audited(stored.id, client_id, origin, by_operator, "created")
    return stored


def _audited(
    subscription_id: uuid.UUID, client_id: str, origin: Origin | None, by_operator: bool, what: str
) -> Steps[None]:
    """The change in the access log (no patient): the operator's, or the client's own."""
    context = f"fhir:Subscription/{subscription_id} {what} (client {client_id})"
    if by_operator:
        yield from admin_audited(
            origin, staff=None, action=AdminAction.MANAGE_SYSTEM_CLIENTS, context=context
        )
        return
    record = access_log.AccessRecord(
        staff_user_id=None,
        username=access_log.system_username(client_id),
        patient_id=None,
        action=AdminAction.MANAGE_SYSTEM_CLIENTS.value,
        context=context,
        entry_point=access_log.FHIR,
        client_address=origin.client_address if origin else None,
        system_client_id=client_id,
    )
    yield Sql(access_log.INSERT_ACCESS_LOG, record.row())


def find_own(client_id: str | None, subscription_id: str | None = None) -> Steps[list[Stored]]:
    """The client's subscriptions (all clients' for the operator, `client_id` None), newest first."""
    where, params = [], []
    if client_id is not None:
        where.append("client_id = %s")
        params.append(client_id)
    if subscription_id is not None:
        try:
            params.append(str(uuid.UUID(subscription_id)))
        except ValueError:
            return []
        where.append("id = %s")
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    rows = yield Sql(
        f"SELECT {_COLUMNS} FROM fhir_subscriptions{clause} ORDER BY created_at DESC, id", params, fetch="all"
    )
    return [_stored(r) for r in rows]


def set_status(
    subscription_id: str, status: str, *, client_id: str | None, origin: Origin | None
) -> Steps[Stored | None]:
    """`off` (the client's delete, or the operator), or `active` again (the operator only: a
    subscription in error resumes from where it stopped, its failures forgotten). None: not found."""
    found = yield from find_own(client_id, subscription_id)
    if not found:
        return None
    resume = ", failures = 0, next_attempt_at = NULL, last_error = NULL" if status == "active" else ""
    row = yield Sql(
        f"UPDATE fhir_subscriptions SET status = %s{resume} WHERE id = %s RETURNING {_COLUMNS}",
        (status, found[0].id),
        fetch="one",
    )
    stored = _stored(row)
    yield from _audited(stored.id, stored.client_id, origin, client_id is None, f"status {status}")
    return stored


# --- the resource --------------------------------------------------------------------------------


def resource(stored: Stored) -> Subscription:
    """The Subscription as FHIR R4 shows it: without the secret and the headers."""
    return Subscription(
        id=str(stored.id),
        meta=Meta(lastUpdated=stored.last_delivered_at or stored.created_at),
        status=stored.status,
        criteria=stored.criteria,
        reason=stored.reason,
        end=stored.end,
        error=stored.last_error,
        channel=SubscriptionChannel(type="rest-hook", endpoint=stored.endpoint, payload=PAYLOAD),
    )


def request_body(criteria: str, endpoint: str, secret: str, reason: str) -> dict[str, Any]:
    """What a client POSTs (the CLI's and the tests' example), as JSON."""
    return json.loads(
        Subscription(
            status="requested",
            criteria=criteria,
            reason=reason,
            channel=SubscriptionChannel.model_validate(
                {
                    "type": "rest-hook",
                    "endpoint": endpoint,
                    "payload": PAYLOAD,
                    "extension": [{"url": SECRET_EXTENSION, "valueString": secret}],
                }
            ),
        ).model_dump_json(exclude_none=True)
    )
