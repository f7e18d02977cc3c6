"""What an operator sees of each system client (the admin's page `/admin/system-clients`): the client
as fhir_api.clients lists it, when it was registered, its public keys by `kid` and RFC 7638 thumbprint,
and how it uses its access: the last token issued and the tokens of the last 24 hours.

Never a token (fhir_access_tokens holds only their SHA-256 anyway) and never a key's numbers: a
thumbprint is what the operator compares with the one the client's supplier gives. No patient data,
so no access-log row.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from fhir_api.clients import SystemClient, list_clients
from storage.steps import Sql, Steps

RECENT: Final = timedelta(hours=24)
# RFC 7638 3.2: the members of a public JWK that its thumbprint covers, by key type.
_THUMBPRINT_MEMBERS: Final = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}


@dataclass(frozen=True, slots=True)
class ClientKey:
    kty: str
    alg: str | None
    kid: str | None
    thumbprint: str  # RFC 7638 SHA-256, base64url; "" when the JWK lacks a required member


@dataclass(frozen=True, slots=True)
class ClientOverview:
    client: SystemClient
    created_at: datetime
    keys: tuple[ClientKey, ...]
    last_token_at: datetime | None
    tokens_recent: int  # issued in the RECENT period before `now`


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, without whitespace; base64url."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None or not all(isinstance(jwk.get(m), str) for m in members):
        return ""
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def client_keys(jwks: object) -> tuple[ClientKey, ...]:
    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    keys = []
    for jwk in entries if isinstance(entries, list) else []:
        if isinstance(jwk, dict):
            alg, kid = jwk.get("alg"), jwk.get("kid")
            keys.append(
                ClientKey(
                    str(jwk.get("kty", "?")),
                    alg if isinstance(alg, str) else None,
                    kid if isinstance(kid, str) else None,
                    jwk_thumbprint(jwk),
                )
            )
    return tuple(keys)


def client_overviews(now: datetime) -> Steps[list[ClientOverview]]:
    """Every client, by id, with its keys and token use (migration 0026's index answers per client)."""
    clients = yield from list_clients()
    rows = yield Sql(
        "SELECT c.id, c.created_at, c.jwks,"
        " (SELECT max(t.issued_at) FROM fhir_access_tokens t WHERE t.client_id = c.id),"
        " (SELECT count(*) FROM fhir_access_tokens t WHERE t.client_id = c.id AND t.issued_at > %s"
        "  AND t.issued_at <= %s)"
        " FROM system_clients c",
        (now - RECENT, now),
        fetch="all",
    )
    extra = {r[0]: r[1:] for r in rows}
    return [
        ClientOverview(c, extra[c.id][0], client_keys(extra[c.id][1]), extra[c.id][2], int(extra[c.id][3]))
        for c in clients
        if c.id in extra
    ]
