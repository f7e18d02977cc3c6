"""SMART Backend Services (SMART App Launch 2.x, "Backend Services"): a system client proves itself
with a JWT signed by its own private key and gets a short-lived opaque access token with scopes.

* `verify_assertion`: the client assertion (RFC 7523) checked with PyJWT against the client's public
  keys (system_clients.jwks): RS384 or ES384 only (so `alg: none` and an HMAC keyed with the public key
  are refused before any key is tried), `iss` = `sub` = the client, `aud` = Hemma's token URL, `exp`
  present and at most five minutes ahead, a `jti`; the jti is recorded once per client, so a replayed
  assertion is refused (`issue_token`).
* Scopes: SMART v1 `system/Observation.read` and v2 `system/Observation.rs` (and `*` for every
  type). Hemma's FHIR API reads only: a scope with c, u or d (v1 `write`, `*`) is never granted,
  except on `Subscription` (WRITABLE: a client creates and ends its own subscriptions, issue 12's
  push; `system/Subscription.cruds` or v1 `.write`), never through the `*` type.
  The scopes asked for must lie within the client's registered ones.
* Tokens: 32 random bytes, handed out once, stored only as SHA-256 (fhir_access_tokens, migration
  0019), valid TOKEN_SECONDS. `token_holder` finds the holder on every request and finds none once
  the token expired, was revoked or its client was disabled.

Refusals are `OAuthError`s with RFC 6749 5.2's error codes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import jwt

from storage.steps import Sql, Steps

ALGORITHMS: Final = ("RS384", "ES384")
TOKEN_SECONDS: Final = 300
ASSERTION_MAX_AHEAD: Final = timedelta(minutes=5)
LEEWAY: Final = timedelta(seconds=30)  # clocks of two organisations' servers differ a little
ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_BYTES: Final = 8192
_SCOPE: Final = re.compile(r"system/(\*|[A-Z][A-Za-z]{1,63})\.(read|write|\*|c?r?u?d?s?)")
READ: Final = "r"
SEARCH: Final = "s"
CREATE: Final = "c"
DELETE: Final = "d"
WRITABLE: Final = frozenset({"Subscription"})  # the only types a client may write (its own rows)
_V1: Final = {"read": frozenset("rs"), "write": frozenset("cud"), "*": frozenset("cruds")}


class OAuthError(Exception):
    """RFC 6749 5.2: `error` (invalid_request, invalid_client, invalid_grant, unauthorized_client,
    unsupported_grant_type, invalid_scope) and a description that never repeats the input."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(status, error, description)
        self.status, self.error, self.description = status, error, description


def _client_error(description: str) -> OAuthError:
    return OAuthError(401, "invalid_client", description)


# --- scopes --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    resource_type: str  # a FHIR type or "*"
    permissions: frozenset[str]  # subset of {"r", "s"} ({"c", "r", "u", "d", "s"} for WRITABLE types)


def parse_scope(text: str) -> Scope:
    """A SMART system scope Hemma can grant; OAuthError invalid_scope otherwise."""
    match = _SCOPE.fullmatch(text)
    if match is None or match[2] == "":
        raise OAuthError(
            400, "invalid_scope", "Only system/<Type>.read or system/<Type>.rs scopes are offered"
        )
    kind, perms = match[1], match[2]
    letters = _V1.get(perms, frozenset(perms))
    if letters & {"c", "u", "d"} and kind not in WRITABLE:
        raise OAuthError(400, "invalid_scope", "Hemma's FHIR API is read-only: no write scopes")
    return Scope(kind, letters)


def parse_scopes(text: str) -> tuple[Scope, ...]:
    return tuple(parse_scope(part) for part in text.split())


def covers(granted: tuple[Scope, ...], resource_type: str, permission: str) -> bool:
    return any(s.resource_type in ("*", resource_type) and permission in s.permissions for s in granted)


def within(asked: tuple[Scope, ...], allowed: tuple[Scope, ...]) -> bool:
    """Every scope asked for lies within a registered one."""
    return all(all(covers(allowed, a.resource_type, p) for p in a.permissions) for a in asked)


# --- the client assertion ------------------------------------------------------------------------


def unverified_issuer(assertion: str) -> str:
    """The `iss` claimed, to find the client's keys (nothing in it is trusted before verification)."""
    if len(assertion) > MAX_ASSERTION_BYTES:
        raise _client_error("client_assertion too large")
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise _client_error("client_assertion is not a JWT") from None
    if header.get("alg") not in ALGORITHMS:
        raise _client_error("client_assertion must be signed with RS384 or ES384")
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,62}", issuer):
        raise _client_error("client_assertion has no valid iss")
    return issuer


def _keys(jwks: dict[str, Any], kid: object) -> list[Any]:
    keys = []
    for entry in jwks.get("keys", []) if isinstance(jwks, dict) else []:
        try:
            key = jwt.PyJWK.from_dict(entry)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue
        if kid is None or key.key_id == kid:
            keys.append(key)
    return keys


def verify_assertion(
    assertion: str, *, client_id: str, jwks: dict[str, Any], token_url: str, now: datetime
) -> tuple[str, datetime]:
    """(jti, exp) of a valid assertion by `client_id`; OAuthError invalid_client otherwise."""
    header = jwt.get_unverified_header(assertion)
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise _client_error("client_assertion must be signed with RS384 or ES384")
    for key in _keys(jwks, header.get("kid")):
        try:
            claims = jwt.decode(
                assertion,
                key.key,
                algorithms=[alg],
                audience=token_url,
                issuer=client_id,
                leeway=LEEWAY,
                options={"require": ["iss", "sub", "aud", "exp", "jti"]},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError:
            raise _client_error("client_assertion has expired") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise _client_error("client_assertion is not valid for this token endpoint") from None
        return _checked_claims(claims, client_id, now)
    raise _client_error("client_assertion is not signed by a key registered for the client")


def _checked_claims(claims: dict[str, Any], client_id: str, now: datetime) -> tuple[str, datetime]:
    if claims.get("sub") != client_id:
        raise _client_error("client_assertion sub must equal iss")
    exp = claims["exp"]
    if not isinstance(exp, int | float) or exp != exp:
        raise _client_error("client_assertion exp is not a number")
    expires = datetime.fromtimestamp(exp, tz=now.tzinfo)
    if expires > now + ASSERTION_MAX_AHEAD + LEEWAY:
        raise _client_error("client_assertion exp is more than five minutes ahead")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 1 <= len(jti) <= 255 or not jti.isprintable():
        raise _client_error("client_assertion jti is missing or invalid")
    return jti, expires


# --- tokens --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Client:
    id: str
    jwks: dict[str, Any]
    scopes: tuple[Scope, ...]


@dataclass(frozen=True, slots=True)
class TokenHolder:
    client_id: str
    scopes: tuple[Scope, ...]


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def enabled_client(client_id: str) -> Steps[Client | None]:
    row = yield Sql(
        "SELECT id, jwks, scopes FROM system_clients WHERE id = %s AND NOT disabled",
        (client_id,),
        fetch="one",
    )
    if row is None:
        return None
    registered = []
    for text in row[2]:
        try:
            registered.append(parse_scope(text))
        except OAuthError:
            continue  # a scope registered before Hemma offered it grants nothing
    return Client(str(row[0]), row[1], tuple(registered))


def issue_token(
    client: Client, *, jti: str, jti_expires: datetime, asked: tuple[Scope, ...], now: datetime
) -> Steps[str]:
    """Record the assertion's jti (refused if seen before) and hand out a token for `asked`."""
    fresh = yield Sql(
        "INSERT INTO fhir_assertion_jtis (client_id, jti, expires_at) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        (client.id, jti, jti_expires),
        fetch="one",
    )
    if fresh is None:
        raise OAuthError(401, "invalid_client", "client_assertion jti has been used before")
    token = secrets.token_urlsafe(32)
    yield Sql(
        "INSERT INTO fhir_access_tokens (token_sha256, client_id, scopes, issued_at, expires_at)"
        " VALUES (%s, %s, %s, %s, %s)",
        (
            digest(token),
            client.id,
            [scope_text(s) for s in asked],
            now,
            now + timedelta(seconds=TOKEN_SECONDS),
        ),
    )
    return token


def scope_text(scope: Scope) -> str:
    return f"system/{scope.resource_type}.{''.join(p for p in 'cruds' if p in scope.permissions)}"


def token_holder(token: str, at: datetime) -> Steps[TokenHolder | None]:
    """Who holds `token` now: None when unknown, expired, revoked or its client disabled."""
    if not 20 <= len(token) <= 100:
        return None
    row = yield Sql(
        "SELECT t.client_id, t.scopes FROM fhir_access_tokens t JOIN system_clients c ON c.id = t.client_id"
        " WHERE t.token_sha256 = %s AND t.revoked_at IS NULL AND t.expires_at > %s AND NOT c.disabled",
        (digest(token), at),
        fetch="one",
    )
    return None if row is None else TokenHolder(str(row[0]), parse_scopes(" ".join(row[1])))
