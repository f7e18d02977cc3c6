"""`/fhir/Subscription`: a system client creates, reads, searches and ends (DELETE: status `off`) its
own rest-hook subscriptions (fhir_api.subscriptions). Scopes on `Subscription`: c to create, r to
read, s to search, d to end (v1 `system/Subscription.write` gives c, u and d); the rest of the API
stays read-only. Mounted by the dashboard before fhir_api.api's router, whose catch-all would
otherwise answer these paths.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntrySearch
from fhir.resources.R4B.resource import Resource

from care.access_log import FHIR
from care.acting import Origin
from fhir_api import smart, subscriptions
from fhir_api.api import FHIR_JSON, FhirRoute, base_url, reader
from fhir_api.search import Refusal, invalid
from storage.steps import run_async

router = APIRouter(prefix="/fhir", route_class=FhirRoute, include_in_schema=False)
_MAX_BODY = 16 * 1024
_TYPE = "Subscription"


def _fhir(resource: Resource, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(resource.model_dump_json(exclude_none=True), status, headers, media_type=FHIR_JSON)


async def _json_body(request: Request) -> object:
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind not in ("application/fhir+json", "application/json"):
        raise Refusal(415, "not-supported", "Skicka resursen som application/fhir+json")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            raise invalid("Resursen är för stor")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise invalid("Resursen är inte JSON") from None


@router.post("/Subscription")
async def create(request: Request) -> Response:
    who = await reader(request, _TYPE, smart.CREATE)
    new = subscriptions.checked_request(await _json_body(request), request.app.state.settings.site_zone())
    origin = Origin(FHIR, client_address=who.client_address)
    async with request.app.state.pool.connection() as conn, conn.transaction():
        stored = await run_async(
            conn,
            subscriptions.create(new, client_id=who.client_id, now=who.at, origin=origin, by_operator=False),
        )
    location = f"{base_url(request)}/Subscription/{stored.id}"
    return _fhir(subscriptions.resource(stored), 201, {"Location": location})


@router.get("/Subscription/{subscription_id}")
async def read(request: Request, subscription_id: str) -> Response:
    who = await reader(request, _TYPE, smart.READ)
    async with request.app.state.pool.connection() as conn:
        found = await run_async(conn, subscriptions.find_own(who.client_id, subscription_id))
    if not found:
        raise Refusal(404, "not-found", "Resursen finns inte")
    return _fhir(subscriptions.resource(found[0]))


@router.get("/Subscription")
async def search(request: Request) -> Response:
    """The client's own subscriptions; `status` the only parameter."""
    who = await reader(request, _TYPE, smart.SEARCH)
    status = None
    for name, value in request.query_params.multi_items():
        if name == "status" and status is None and value in ("active", "error", "off"):
            status = value
        elif name != "_format":
            raise Refusal(400, "not-supported", "Prenumerationer söks bara på status")
    async with request.app.state.pool.connection() as conn:
        found = await run_async(conn, subscriptions.find_own(who.client_id))
    shown = [s for s in found if status is None or s.status == status]
    base = base_url(request)
    entries = [
        BundleEntry(
            fullUrl=f"{base}/Subscription/{s.id}",
            resource=subscriptions.resource(s),
            search=BundleEntrySearch(mode="match"),
        )
        for s in shown
    ]
    return _fhir(
        Bundle(type="searchset", total=len(shown), timestamp=datetime.now(UTC), entry=entries or None)
    )


@router.delete("/Subscription/{subscription_id}")
async def end(request: Request, subscription_id: str) -> Response:
    """FHIR delete as R4 lets a server keep the resource: it is turned `off`, and pushes stop."""
    who = await reader(request, _TYPE, smart.DELETE)
    origin = Origin(FHIR, client_address=who.client_address)
    async with request.app.state.pool.connection() as conn, conn.transaction():
        stored = await run_async(
            conn, subscriptions.set_status(subscription_id, "off", client_id=who.client_id, origin=origin)
        )
    if stored is None:
        raise Refusal(404, "not-found", "Resursen finns inte")
    return Response(status_code=204)
