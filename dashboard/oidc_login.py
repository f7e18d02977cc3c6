"""Staff login with OpenID Connect (issue 12): SITHS through Inera's IdP in production.

`GET /login/oidc` sends the browser to the issuer's authorization endpoint (found by discovery):
authorization code flow with PKCE (S256), a `state` and a `nonce`, kept with the code verifier in
this browser's signed cookie by Authlib's Starlette client. `GET /login/oidc/callback` takes the
code back: the state must be the one this browser was given (else no code is exchanged), the code
is exchanged at the token endpoint with the client secret and the verifier, and the ID token is
checked by Authlib (signature against the issuer's JWKS, `iss`, `aud` = our client id, `exp`,
`iat`, `nonce`, `at_hash`).

The HSA-id claim (HEMMA_OIDC_HSA_CLAIM, `employeeHsaId` at Inera's IdP) chooses the account by
`staff_users.hsa_id`. Hemma never creates an account on the fly: an account carries a role and
wards, which an admin gives (and the access log's care unit and care provider come from it), and a
valid SITHS card proves who someone is, not that they work here. So an HSA-id without an account
is refused (403) as is a disabled account (403), and a token without the claim (401). A login
makes a normal server-side session, method 'oidc' (no TOTP step: the card and its PIN are two
factors already). The access log's trigger (migration 0018) then writes the account's HSA-id on
every row her reads produce.

Failed callbacks (a wrong state, a token that fails its checks, a refused HSA-id) go through the
login brake under the client's address, both as its source (counted with password failures: one
address spraying either way) and as an account key of their own (`oidc-source:` + address), so
a burst of forged callbacks locks that address out of this route; the IdP brakes its own PIN
tries. Without an issuer and client id configured the routes answer
404 and the login page shows no button.
"""

from __future__ import annotations

import json
import logging
import math
import re
import warnings
from typing import Any

import httpx
from authlib.deprecate import AuthlibDeprecationWarning
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from joserfc.errors import JoseError

from core.settings import Settings
from dashboard.auth import safe_next, start_session
from dashboard.model import StaffUser
from dashboard.pages import client_address, locked_message, render
from dashboard.queries import fetch_login_by_hsa

with warnings.catch_warnings():
    # Authlib's httpx shim warns that it would rather have `httpx2`; the plain httpx it falls back
    # to is the one the project already uses. (authlib.deprecate sets its warnings to "always" as
    # it is imported, so it is imported first and then silenced here.)
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.starlette_client import OAuth, OAuthError, StarletteOAuth2App

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

CLIENT_NAME = "hemma_oidc"
_NEXT = "oidc_next"
HSA_ID = re.compile(r"SE[0-9]{10}-[0-9A-Za-z]{1,31}")  # staff_users.hsa_id's CHECK

# The refusals, in the words staff read; none repeats what the IdP sent.
NO_CLAIM = (401, "Inloggningstjänsten skickade inget HSA-id för dig, så Hemma kan inte veta vem du är."
                 " Kontakta systemförvaltningen.")  # fmt: skip
NO_ACCOUNT = (403, "Ditt SITHS-kort är giltigt, men ditt HSA-id är inte kopplat till något konto i Hemma."
                   " Be din administratör att lägga in ditt HSA-id på ditt personalkonto.")  # fmt: skip
DISABLED = (403, "Ditt konto i Hemma är inaktiverat. Kontakta systemförvaltningen.")
NOT_COMPLETED = (400, "Inloggningen kunde inte slutföras (den var gammal, avbruten eller kom inte från"
                      " den här webbläsaren). Börja om från inloggningssidan.")  # fmt: skip
IDP_DOWN = (502, "Inloggningstjänsten svarar inte just nu. Försök igen om en stund, eller logga in"
                 " med lösenord.")  # fmt: skip


class LoginRefused(Exception):
    def __init__(self, answer: tuple[int, str]) -> None:
        super().__init__(answer[1])
        self.status, self.message = answer


def _issuer(settings: Settings) -> str:
    return (settings.oidc_issuer or "").rstrip("/")


def oidc_client(request: Request) -> StarletteOAuth2App:
    """The app's OIDC client (made on first use; 404 when no issuer is configured)."""
    settings: Settings = request.app.state.settings
    if not settings.oidc_configured():
        raise HTTPException(status_code=404)
    client: StarletteOAuth2App | None = getattr(request.app.state, "oidc_client", None)
    if client is None:
        oauth = OAuth()
        client = oauth.register(
            CLIENT_NAME,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            server_metadata_url=_issuer(settings) + "/.well-known/openid-configuration",
            client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256", "timeout": 10},
        )
        request.app.state.oidc_client = client
    return client


async def _metadata(client: StarletteOAuth2App, settings: Settings) -> dict[str, Any]:
    """The discovered metadata; its issuer must be the configured one (OIDC Discovery §4.3)."""
    try:
        metadata: dict[str, Any] = await client.load_server_metadata()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("OIDC discovery failed: %s", type(exc).__name__)
        raise LoginRefused(IDP_DOWN) from None
    if str(metadata.get("issuer", "")).rstrip("/") != _issuer(settings):
        log.error("OIDC discovery names another issuer than HEMMA_OIDC_ISSUER; refusing to log in")
        client.server_metadata.clear()  # discover again next time
        raise LoginRefused(IDP_DOWN)
    return metadata


@router.get("/login/oidc")
async def start_oidc_login(request: Request, next: str = "/") -> Response:
    client = oidc_client(request)
    settings: Settings = request.app.state.settings
    try:
        await _metadata(client, settings)
    except LoginRefused as refused:
        return _refusal(request, refused)
    redirect_uri = settings.oidc_redirect_uri or str(request.url_for("oidc_callback"))
    # The HSA-id asked for by name too (OIDC Core §5.5), as Inera's IdP documents for its claims.
    claims = json.dumps({"id_token": {settings.oidc_hsa_claim: {"essential": True}}})
    request.session[_NEXT] = safe_next(next[:2000])
    response: Response = await client.authorize_redirect(request, redirect_uri, claims=claims)
    return response


@router.get("/login/oidc/callback", name="oidc_callback")
async def finish_oidc_login(request: Request) -> Response:
    client = oidc_client(request)
    state = request.app.state
    source = client_address(request)
    brake_key = f"oidc-source:{source}"
    async with state.pool.connection() as conn:
        wait = await state.login_brake.admit(conn, brake_key, source)
    if wait > 0:
        state.metrics.failed_logins += 1
        response = render(request, "login_refused.html", None, 429, message=locked_message(wait))
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    try:
        staff = await _verified_account(request, client)
    except LoginRefused as refused:
        state.metrics.failed_logins += 1
        async with state.pool.connection() as conn:
            await state.login_brake.failed(conn, brake_key, source)
        log.warning("OIDC login refused (%s) from %s", refused.status, source)
        return _refusal(request, refused)
    async with state.pool.connection() as conn:
        await state.login_brake.succeeded(conn, brake_key, source)
    next_path = request.session.get(_NEXT)
    await start_session(request, staff, "oidc")
    state.metrics.logins += 1
    log.info("staff %s logged in with OIDC from %s", staff.id, source)
    return RedirectResponse(safe_next(next_path if isinstance(next_path, str) else "/"), status_code=303)


async def _verified_account(request: Request, client: StarletteOAuth2App) -> StaffUser:
    """The enabled account the verified ID token's HSA-id names, or LoginRefused."""
    settings: Settings = request.app.state.settings
    if request.query_params.get("error"):
        raise LoginRefused(NOT_COMPLETED)  # the person cancelled at the IdP, or it refused
    metadata = await _metadata(client, settings)
    try:
        token = await client.authorize_access_token(
            request, claims_options={"iss": {"essential": True, "values": [metadata["issuer"]]}}, leeway=60
        )
    except (OAuthError, JoseError, ValueError, KeyError) as exc:
        log.warning("OIDC callback refused: %s", type(exc).__name__)
        raise LoginRefused(NOT_COMPLETED) from None
    except httpx.HTTPError as exc:
        log.warning("OIDC token endpoint failed: %s", type(exc).__name__)
        raise LoginRefused(IDP_DOWN) from None
    claims = token.get("userinfo")
    if not claims:  # no ID token, or Authlib had no nonce to check it against: never trusted
        raise LoginRefused(NOT_COMPLETED)
    hsa_id = claims.get(settings.oidc_hsa_claim)
    if not isinstance(hsa_id, str) or not HSA_ID.fullmatch(hsa_id):
        raise LoginRefused(NO_CLAIM)
    async with request.app.state.pool.connection() as conn:
        found = await fetch_login_by_hsa(conn, hsa_id)
    if found is None:
        raise LoginRefused(NO_ACCOUNT)
    staff, disabled = found
    if disabled:
        raise LoginRefused(DISABLED)
    return staff


def _refusal(request: Request, refused: LoginRefused) -> Response:
    request.session.pop(_NEXT, None)
    return render(request, "login_refused.html", None, refused.status, message=refused.message)
