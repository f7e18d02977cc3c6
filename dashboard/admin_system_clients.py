"""The admin's page of FHIR system clients, `/admin/system-clients` (issue 12): the dashboard's face of
`hemma fhir client ...`, for the region's IT operators.

List the clients (care provider, scopes, wards, state, when registered, their keys' kid and RFC 7638
thumbprint, the last token issued and the tokens of the last 24 hours: fhir_api.client_overview;
never a token), add one (a PEM public key or a JWK Set pasted; scopes as checkboxes per resource type
or typed), disable one (its tokens stop at once) and enable it again. Every form runs
fhir_api.clients' command with the admin as `by`, which checks AdminAction.MANAGE_SYSTEM_CLIENTS and
writes the log row (care.acting.admin_audited); nothing here writes system_clients. A refusal is
looked up by its ClientProblemCode in Swedish. Each client shows a ready example: the token URL, the
FHIR base (HEMMA_DASHBOARD_URL), its scopes and the `hemma fhir token` command.

Only an admin, on every route and method, refused first (dashboard.admin_staff.admin_for).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import AfterValidator

from care import organisations
from care.permissions import AdminAction
from dashboard.admin_staff import admin_for, all_wards
from dashboard.errors import ActionError, NotFound
from dashboard.inputs import check_text, swedish
from dashboard.model import StaffUser
from dashboard.pages import render
from dashboard.patient_contact import BoundedFormRoute
from dashboard.staff_forms import form_origin, run_form_command
from fhir_api import clients
from fhir_api.client_overview import client_overviews
from fhir_api.clients import ClientProblem, ClientProblemCode
from fhir_api.search import RESOURCE_TYPES
from storage.steps import Steps, run_async

# A form read up to 64 KiB (a pasted key is at most MAX_KEY_CHARS): a pasted file is 413 while it is read.
router = APIRouter(include_in_schema=False, route_class=BoundedFormRoute)

Admin = Annotated[StaffUser, Depends(admin_for(AdminAction.MANAGE_SYSTEM_CLIENTS))]
MAX_KEY_CHARS: Final = 16 * 1024  # a JWK Set of a few RSA-4096 keys fits; a pasted file does not
Field = Annotated[str, Form(max_length=200), AfterValidator(check_text)]
NameField = Annotated[
    str, Form(max_length=200), AfterValidator(check_text), swedish("Namnet ska vara 2–200 tecken.")
]
ProviderField = Annotated[
    str, Form(max_length=63), AfterValidator(check_text), swedish("Vårdgivaren finns inte.")
]
ClientIdField = Annotated[
    str, Form(max_length=63), AfterValidator(check_text),
    swedish("Klient-id ska vara 2–63 tecken: a–z, siffror, punkt, understreck och bindestreck."),
]  # fmt: skip
KeyField = Annotated[
    str, Form(max_length=MAX_KEY_CHARS), AfterValidator(check_text),
    swedish("Nyckeln är för lång eller innehåller otillåtna tecken. Klistra in en publik nyckel (PEM) "
            "eller en JWK Set."),
]  # fmt: skip
Choices = Annotated[
    list[Annotated[str, AfterValidator(check_text)]], Form(max_length=200),
    swedish("För många val i formuläret."),
]  # fmt: skip
ExtraScopes = Annotated[
    str, Form(max_length=2000), AfterValidator(check_text), swedish("Texten med scopes är för lång.")
]
NewClient = Annotated[str, Query(max_length=63), AfterValidator(check_text)]  # the one just added
ClientId = Annotated[
    str, Path(max_length=63), AfterValidator(check_text), swedish("Systemklienten finns inte", status=404)
]

# The Swedish text of each refusal of fhir_api.clients, by its code (422, but a taken id 409).
_C = ClientProblemCode
PROBLEM_TEXTS: Final[dict[ClientProblemCode, str]] = {
    _C.INVALID: "Uppgifterna kunde inte sparas. Kontrollera id, namn och vårdgivare.",
    _C.CLIENT_ID: "Klient-id ska vara 2–63 tecken: a–z, siffror, punkt, understreck och bindestreck.",
    _C.NAME: "Namnet ska vara 2–200 tecken.",
    _C.NO_PROVIDER: "Vårdgivaren finns inte.",
    _C.EXISTS: "Det finns redan en systemklient med det id:t. Välj ett annat id.",
    _C.NOT_PEM: "Nyckeln kan inte läsas. Klistra in en publik nyckel i PEM-form "
    "(-----BEGIN PUBLIC KEY-----) eller en JWK Set i JSON.",
    _C.PRIVATE_KEY: "Det är en privat nyckel. Klistra bara in den publika nyckeln: den privata lämnar "
    "aldrig klientens system. Byt gärna nyckelpar, eftersom den privata nyckeln nu har visats.",
    _C.RSA_TOO_SHORT: "RSA-nyckeln är för kort: minst 2048 bitar krävs.",
    _C.KEY_TYPE: "Nyckeln ska vara RSA (RS384) eller EC P-384 (ES384).",
    _C.JWKS_SHAPE: 'En JWK Set ska vara ett JSON-objekt med en lista "keys" med minst en nyckel.',
    _C.JWKS_KEY_TYPE: "Varje nyckel i JWK Set ska vara en RSA- eller EC-nyckel.",
    _C.JWKS_UNREADABLE: "En nyckel i JWK Set kan inte läsas.",
    _C.NO_SCOPE: "Välj minst en behörighet (scope).",
    _C.BAD_SCOPE: "Okänt scope. Hemma ger bara läsrätt: system/<Typ>.rs, .r, .s eller .read "
    "(eller * för alla typer).",
    _C.UNKNOWN_TYPE: "Okänt scope: Hemmas FHIR-API har ingen sådan resurstyp.",
    _C.NO_WARD: "Avdelningen finns inte.",
}
PERMISSIONS: Final = (("r", "Läsa"), ("s", "Söka"))


class ClientRefused(ActionError):
    """A refusal of fhir_api.clients in the page's Swedish."""

    def __init__(self, problem: ClientProblem) -> None:
        super().__init__(f"system client refused: {problem.code}", PROBLEM_TEXTS[problem.code])
        self.status = 409 if problem.code is ClientProblemCode.EXISTS else 422


async def _run(request: Request, steps: Steps[Any]) -> Any:
    try:
        return await run_form_command(request, steps)
    except ClientProblem as exc:
        raise ClientRefused(exc) from None


def jwks_from_text(text: str) -> dict[str, Any]:
    """The key pasted: a JWK Set in JSON (strict: no NaN) or a PEM public key (clients.jwks_from_pem)."""
    pasted = text.strip()
    if pasted.startswith("{"):
        try:
            value = json.loads(pasted, parse_constant=_no_constant)
        except ValueError:
            raise ClientProblem("the JWK Set is not JSON", ClientProblemCode.JWKS_SHAPE) from None
        return clients.check_jwks(value)
    return clients.jwks_from_pem(pasted.encode())


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def chosen_scopes(boxes: list[str], typed: str) -> list[str]:
    """The checkboxes ("system/Observation.r", "system/Observation.s") joined per type as SMART v2
    scopes ("system/Observation.rs"), then the scopes typed, each as given (clients checks them)."""
    letters: dict[str, set[str]] = {}
    odd: list[str] = []
    for box in boxes:
        kind, dot, perm = box.removeprefix("system/").rpartition(".")
        if box.startswith("system/") and dot and perm in ("r", "s") and kind in (*RESOURCE_TYPES, "*"):
            letters.setdefault(kind, set()).add(perm)
        else:
            odd.append(box)  # a forged box: refused by clients.check_scopes in Swedish
    joined = [f"system/{k}.{''.join(p for p in 'rs' if p in v)}" for k, v in letters.items()]
    return joined + odd + [s for s in typed.split() if s not in joined]


def search_example(scopes: tuple[str, ...]) -> str:
    """A search the client's scopes allow, for its example: the first type it may search."""
    for text in scopes:
        kind, _, perms = text.removeprefix("system/").rpartition(".")
        if "s" in perms or perms == "read":
            return "Patient" if kind == "*" else kind
    return "metadata"


@router.get("/admin/system-clients", response_class=HTMLResponse)
async def system_clients_page(request: Request, admin: Admin, ny: NewClient = "") -> Response:
    async with request.app.state.pool.connection() as conn:
        overviews = await run_async(conn, client_overviews(datetime.now(UTC)))
        providers = await run_async(conn, organisations.providers())
    wards = await all_wards(request)
    base = request.app.state.settings.dashboard_url.rstrip("/") + "/fhir"
    return render(
        request, "admin_system_clients.html", admin, overviews=overviews, providers=providers,
        provider_names={p.id: p.name for p in providers}, wards=wards, ward_names=dict(wards),
        resource_types=RESOURCE_TYPES, permissions=PERMISSIONS, fhir_base=base,
        token_url=f"{base}/auth/token", new_client=ny, max_key_chars=MAX_KEY_CHARS,
        examples={o.client.id: search_example(o.client.scopes) for o in overviews},
    )  # fmt: skip


@router.post("/admin/system-clients")
async def add_client(
    request: Request, admin: Admin, csrf: Field = "", client_id: ClientIdField = "", name: NameField = "",
    provider_id: ProviderField = "", public_key: KeyField = "", scopes: Choices = [],  # noqa: B006 (FastAPI copies it)
    extra_scopes: ExtraScopes = "", wards: Choices = [],  # noqa: B006
) -> Response:  # fmt: skip
    origin = form_origin(request, csrf)
    client_id = client_id.strip().lower()
    try:
        jwks = jwks_from_text(public_key)
    except ClientProblem as exc:
        raise ClientRefused(exc) from None
    await _run(request, clients.register_client(
        client_id=client_id, name=name, provider_id=provider_id, jwks=jwks,
        scopes=chosen_scopes(scopes, extra_scopes), wards=wards, origin=origin, by=admin.username,
        replace=False,
    ))  # fmt: skip
    return RedirectResponse(f"/admin/system-clients?ny={client_id}#klient-{client_id}", status_code=303)


@router.post("/admin/system-clients/{client_id}/disable")
async def disable_client(request: Request, admin: Admin, client_id: ClientId, csrf: Field = "") -> Response:
    origin = form_origin(request, csrf)
    if not await _run(request, clients.disable_client(client_id, origin=origin, by=admin.username)):
        raise NotFound("Systemklienten finns inte")
    return RedirectResponse(f"/admin/system-clients#klient-{client_id}", status_code=303)


@router.post("/admin/system-clients/{client_id}/enable")
async def enable_client(request: Request, admin: Admin, client_id: ClientId, csrf: Field = "") -> Response:
    origin = form_origin(request, csrf)
    if not await _run(request, clients.enable_client(client_id, origin=origin, by=admin.username)):
        raise NotFound("Systemklienten finns inte")
    return RedirectResponse(f"/admin/system-clients#klient-{client_id}", status_code=303)
