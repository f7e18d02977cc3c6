"""The FHIR R4 REST API at /fhir: read, search, `Encounter/{id}/$everything`, `Encounter/{id}/$summary`
(the end-of-stay summary as a document, fhir_api.stay_document), the CapabilityStatement,
and SMART Backend Services' discovery and token endpoints (fhir_api.smart).

Every answer is `application/fhir+json`; every refusal an OperationOutcome (the token endpoint's are
RFC 6749 JSON) with its 4xx, from `FhirRoute`, which catches the refusals of this package around
each route, so the dashboard's Swedish `{"detail"}` answers never reach a FHIR client. Every route
but the two discovery documents and the token endpoint needs a bearer token whose scopes cover the
resource type (`reader`). What a client may read is fhir_api.reach's decision, joined into every
query; a resource of a patient out of reach answers exactly as one that does not exist (404). Each
request that shows patients writes one access-log row per patient (FHIR_READ, the system client, the
partner grant when a grant allowed it) in the transaction that read them, before the answer is sent.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntrySearch, BundleLink
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.operationoutcome import OperationOutcome, OperationOutcomeIssue
from fhir.resources.R4B.resource import Resource

from care import access_log
from fhir_api import capability, smart, stay_document
from fhir_api.queries import Found, find
from fhir_api.search import MAX_OFFSET, RESOURCE_TYPES, Refusal, Search, invalid, parse
from storage.steps import run_async

FHIR_JSON = "application/fhir+json"
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
EVERYTHING_COUNT = 1000
_NOT_FOUND = "Resursen finns inte"
_MAX_QUERY = 4096
_MAX_FORM = 16 * 1024


def outcome(status: int, code: str, text: str, headers: dict[str, str] | None = None) -> Response:
    body = OperationOutcome(issue=[OperationOutcomeIssue(severity="error", code=code, diagnostics=text)])
    return _fhir(body, status, headers)


def _fhir(resource: Resource, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(resource.model_dump_json(exclude_none=True), status, headers, media_type=FHIR_JSON)


class FhirRoute(APIRoute):
    """Refusals of fhir_api as OperationOutcomes (the token endpoint's as RFC 6749 errors)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except Refusal as refusal:
                headers = {"WWW-Authenticate": 'Bearer realm="hemma-fhir"'} if refusal.status == 401 else None
                return outcome(refusal.status, refusal.code, refusal.text, headers)
            except smart.OAuthError as exc:
                return JSONResponse(
                    {"error": exc.error, "error_description": exc.description},
                    exc.status,
                    headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
                )

        return answer


# Described by its CapabilityStatement (/fhir/metadata), not by the dashboard's OpenAPI schema.
router = APIRouter(prefix="/fhir", route_class=FhirRoute, include_in_schema=False)


def base_url(request: Request) -> str:
    """The FHIR base as the region reaches it (HEMMA_DASHBOARD_URL): links, fullUrls and the `aud` of
    client assertions. Never taken from the request's Host, which the caller chooses."""
    return request.app.state.settings.dashboard_url.rstrip("/") + "/fhir"


# --- who reads -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reader:
    client_id: str
    scopes: tuple[smart.Scope, ...]
    at: datetime
    client_address: str | None

    def may(self, resource_type: str, permission: str) -> bool:
        return smart.covers(self.scopes, resource_type, permission)


async def reader(request: Request, resource_type: str, permission: str) -> Reader:
    """The bearer token's holder, if its scopes cover `permission` on `resource_type`."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refusal(401, "login", "En giltig åtkomsttoken (Bearer) krävs")
    at = datetime.now(UTC)
    async with request.app.state.pool.connection() as conn:
        holder = await run_async(conn, smart.token_holder(token.strip(), at))
    if holder is None:
        raise Refusal(401, "login", "Åtkomsttoken är ogiltig, har gått ut eller har återkallats")
    if not smart.covers(holder.scopes, resource_type, permission):
        raise Refusal(403, "forbidden", "Åtkomsttokens scope omfattar inte denna resurstyp")
    client = request.client.host if request.client else None
    return Reader(holder.client_id, holder.scopes, at, client)


async def _found_and_logged(
    request: Request, who: Reader, searches: list[Search], context: str
) -> list[Found]:
    """Run `searches` and write the access log's rows (one per patient shown) in one transaction."""
    async with request.app.state.pool.connection() as conn, conn.transaction():
        results = [await run_async(conn, find(s, client_id=who.client_id, at=who.at)) for s in searches]
        await _log(conn, who, results, context)
    return results


async def _log(conn: Any, who: Reader, results: list[Found], context: str) -> None:
    """One access_log row per patient the answer shows (care.access_log), before it is sent."""
    shown: dict[uuid.UUID, int | None] = {}
    for result in results:
        for patient, grant in result.patients.items():
            shown.setdefault(patient, grant)
    await access_log.write_async(
        conn,
        [
            access_log.AccessRecord(
                staff_user_id=None,
                username=access_log.system_username(who.client_id),
                patient_id=patient,
                action=access_log.FHIR_READ,
                context=context,
                entry_point=access_log.FHIR,
                client_address=who.client_address,
                system_client_id=who.client_id,
                partner_grant_id=grant,
            )
            for patient, grant in shown.items()
        ],
    )


def _query_pairs(request: Request) -> list[tuple[str, str]]:
    raw = request.scope.get("query_string", b"")
    if len(raw) > _MAX_QUERY:
        raise invalid("Frågan är för lång")
    try:
        text = raw.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise invalid("Frågan kan inte läsas") from None


def _resource_type(name: str) -> str:
    if name not in RESOURCE_TYPES:
        raise Refusal(404, "not-supported", "Hemma har inga resurser av den typen")
    return name


def _id(value: str) -> str:
    if not _FHIR_ID.fullmatch(value):
        raise invalid("Ogiltigt id")
    return value


# --- discovery and tokens ------------------------------------------------------------------------


@router.get("/metadata")
async def metadata(request: Request) -> Response:
    """The CapabilityStatement (public, FHIR R4 3.1.0.7)."""
    settings_version = request.app.version
    return _fhir(capability.capability_statement(base_url(request), settings_version, datetime.now(UTC)))


@router.get("/.well-known/smart-configuration")
async def smart_configuration(request: Request) -> Response:
    return JSONResponse(capability.smart_configuration(base_url(request)))


@router.post("/auth/token")
async def token(request: Request) -> Response:
    """SMART Backend Services' token request (application/x-www-form-urlencoded)."""
    form = await _token_form(request)
    if form.get("grant_type") != "client_credentials":
        raise smart.OAuthError(400, "unsupported_grant_type", "grant_type must be client_credentials")
    if form.get("client_assertion_type") != smart.ASSERTION_TYPE:
        raise smart.OAuthError(400, "invalid_request", "client_assertion_type must be jwt-bearer")
    assertion = form.get("client_assertion", "")
    client_id = smart.unverified_issuer(assertion)
    now = datetime.now(UTC)
    async with request.app.state.pool.connection() as conn, conn.transaction():
        client = await run_async(conn, smart.enabled_client(client_id))
        if client is None:
            raise smart.OAuthError(401, "invalid_client", "unknown or disabled client")
        jti, expires = smart.verify_assertion(
            assertion,
            client_id=client.id,
            jwks=client.jwks,
            token_url=f"{base_url(request)}/auth/token",
            now=now,
        )
        asked = smart.parse_scopes(form["scope"]) if form.get("scope") else client.scopes
        if not asked or not smart.within(asked, client.scopes):
            raise smart.OAuthError(
                400, "invalid_scope", "the scopes asked for are not granted to this client"
            )
        issued = await run_async(
            conn, smart.issue_token(client, jti=jti, jti_expires=expires, asked=asked, now=now)
        )
    body = {
        "access_token": issued,
        "token_type": "bearer",
        "expires_in": smart.TOKEN_SECONDS,
        "scope": " ".join(smart.scope_text(s) for s in asked),
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


async def _token_form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise smart.OAuthError(400, "invalid_request", "send the token request as a form")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM:
            raise smart.OAuthError(400, "invalid_request", "token request too large")
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise smart.OAuthError(400, "invalid_request", "the form cannot be read") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise smart.OAuthError(400, "invalid_request", "a parameter is given twice")
        form[name] = value
    return form


# --- read, search, $everything -------------------------------------------------------------------


@router.get("/Encounter/{encounter_id}/$everything")
async def everything(request: Request, encounter_id: str) -> Response:
    """The stay as one Bundle: Patient, Encounter, CarePlan, Devices, Flags, QuestionnaireResponses,
    then the Observations (paged with `_count`, at most 1000, and `_offset`), each type only when the
    token may read it."""
    who = await reader(request, "Encounter", smart.READ)
    pairs = _query_pairs(request)
    count, offset = _paging(pairs)
    patient = _id(encounter_id)
    head_types = ("Patient", "Encounter", "CarePlan", "Device", "Flag", "QuestionnaireResponse")
    searches = [
        Search(kind, count=10_000, patient=patient)
        for kind in head_types
        if kind == "Encounter" or who.may(kind, "r")
    ]
    results = await _everything_found(request, who, searches, patient, count, offset)
    if results is None:
        raise Refusal(404, "not-found", _NOT_FOUND)
    head, observations = results
    entries = (head[offset:] if offset < len(head) else []) + observations.resources
    links = _links(
        request, f"Encounter/{patient}/$everything", pairs, count, offset, len(head) + observations.total
    )
    return _fhir(_bundle(request, entries[:count], len(head) + observations.total, links))


async def _everything_found(
    request: Request, who: Reader, searches: list[Search], patient: str, count: int, offset: int
) -> tuple[list[Resource], Found] | None:
    """The stay's head resources and one page of its observations, logged as one read of the patient."""
    async with request.app.state.pool.connection() as conn, conn.transaction():
        stay = Search("Encounter", ids=(patient,), count=1)
        probe = await run_async(conn, find(stay, client_id=who.client_id, at=who.at))
        if not probe.resources:
            return None
        found = [await run_async(conn, find(s, client_id=who.client_id, at=who.at)) for s in searches]
        head = [r for f in found for r in f.resources]
        observations = Found([], 0, {})
        if who.may("Observation", "r"):
            obs = Search(
                "Observation",
                count=max(0, count - max(0, len(head) - offset)),
                offset=max(0, offset - len(head)),
                patient=patient,
            )
            observations = await run_async(conn, find(obs, client_id=who.client_id, at=who.at))
        await _log(conn, who, [probe], f"fhir:Encounter/{patient}/$everything")
    return head, observations


@router.get("/Encounter/{encounter_id}/$summary")
async def summary(request: Request, encounter_id: str) -> Response:
    """The end-of-stay summary as a FHIR document Bundle (fhir_api.stay_document): whole or not at
    all, so the token must read every type the document carries; the stay within the client's reach
    (the same probe as `$everything`); one access-log row."""
    who = await reader(request, "Encounter", smart.READ)
    if not all(who.may(kind, smart.READ) for kind in stay_document.INCLUDED_TYPES):
        raise Refusal(
            403,
            "forbidden",
            "Sammanfattningen kräver läsrätt till " + ", ".join(stay_document.INCLUDED_TYPES),
        )
    if request.scope.get("query_string") and any(name != "_format" for name, _ in _query_pairs(request)):
        raise Refusal(400, "not-supported", "$summary tar inga parametrar")
    patient = _id(encounter_id)
    async with request.app.state.pool.connection() as conn, conn.transaction():
        stay = Search("Encounter", ids=(patient,), count=1)
        probe = await run_async(conn, find(stay, client_id=who.client_id, at=who.at))
        if not probe.patients:
            raise Refusal(404, "not-found", _NOT_FOUND)
        (patient_id,) = probe.patients
        facts = await run_async(conn, stay_document.document_facts(patient_id, now=who.at))
        await _log(conn, who, [probe], f"fhir:Encounter/{patient}/$summary")
    zone = request.app.state.settings.site_zone()
    return _fhir(stay_document.stay_bundle(facts, at=who.at, zone=zone))


@router.get("/{resource_type}/{resource_id}")
async def read(request: Request, resource_type: str, resource_id: str) -> Response:
    kind = _resource_type(resource_type)
    who = await reader(request, kind, smart.READ)
    if request.scope.get("query_string"):
        pairs = _query_pairs(request)
        if any(name != "_format" for name, _ in pairs):
            raise Refusal(400, "not-supported", "En läsning tar inga sökparametrar")
    search = Search(kind, ids=(_id(resource_id),), count=1)
    found = (await _found_and_logged(request, who, [search], f"fhir:{kind} read"))[0]
    if not found.resources:
        raise Refusal(404, "not-found", _NOT_FOUND)
    return _fhir(found.resources[0])


@router.get("/{resource_type}")
async def search_type(request: Request, resource_type: str) -> Response:
    kind = _resource_type(resource_type)
    who = await reader(request, kind, smart.SEARCH)
    pairs = _query_pairs(request)
    search = parse(kind, pairs, request.app.state.settings.site_zone())
    found = (await _found_and_logged(request, who, [search], f"fhir:{kind} search"))[0]
    links = _links(request, kind, list(search.pairs), search.count, search.offset, found.total)
    return _fhir(_bundle(request, found.resources, found.total, links))


@router.api_route(
    "", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"], include_in_schema=False
)
@router.api_route(
    "/{rest:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
    include_in_schema=False,
)
async def unsupported(request: Request, rest: str = "") -> Response:
    """Everything else under /fhir: Hemma's FHIR API reads and searches only."""
    if request.method == "GET":
        raise Refusal(404, "not-found", "Adressen finns inte i Hemmas FHIR-gränssnitt")
    raise Refusal(405, "not-supported", "Hemmas FHIR-gränssnitt kan bara läsa och söka")


# --- bundles -------------------------------------------------------------------------------------


def _paging(pairs: list[tuple[str, str]]) -> tuple[int, int]:
    count, offset = EVERYTHING_COUNT, 0
    for name, value in pairs:
        if name not in ("_count", "_offset") or not re.fullmatch(r"[0-9]{1,18}", value):
            raise invalid("$everything tar bara _count och _offset (icke-negativa heltal)")
        if name == "_count":
            count = min(int(value), EVERYTHING_COUNT)
        elif int(value) > MAX_OFFSET:
            raise invalid("_offset är för stort")
        else:
            offset = int(value)
    return count, offset


def _links(
    request: Request, path: str, pairs: list[tuple[str, str]], count: int, offset: int, total: int
) -> list[BundleLink]:
    base = f"{base_url(request)}/{path}"
    kept = [(n, v) for n, v in pairs if n not in ("_count", "_offset")]

    def url(at: int) -> str:
        return f"{base}?{urlencode([*kept, ('_count', str(count)), ('_offset', str(at))])}"

    links = [BundleLink(relation="self", url=url(offset))]
    if count > 0 and offset + count < total:
        links.append(BundleLink(relation="next", url=url(offset + count)))
    if offset > 0:
        links.append(BundleLink(relation="previous", url=url(max(0, offset - max(count, 1)))))
    return links


def _bundle(request: Request, found: list[Resource], total: int, links: list[BundleLink]) -> Bundle:
    base = base_url(request)
    entries = [
        BundleEntry(
            fullUrl=f"{base}/{resource.get_resource_type()}/{resource.id}",
            resource=resource,
            search=BundleEntrySearch(mode="match"),
        )
        for resource in found
    ]
    return Bundle(
        id=str(uuid.uuid4()),
        meta=Meta(lastUpdated=datetime.now(UTC)),
        type="searchset",
        total=total,
        link=links,
        entry=entries or None,
    )
