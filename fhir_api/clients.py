"""System clients (SMART Backend Services): register, disable, enable, list. The one writer of
system_clients.

`hemma fhir client ...`, `hemma demo` and the admin's page `/admin/system-clients`
(dashboard.admin_system_clients) run these (storage.steps, in one transaction with the access-log
row of the change, care.acting.admin_audited: the admin named by `by`, else the CLI's operator,
named by the OS user). A refusal is a ClientProblem with a code, so the page looks its Swedish text
up by code and the CLI prints the English message.
A client's keys are public keys only (a JWK Set, or a PEM turned into one): a private key is refused,
since Hemma must never hold what would let it sign as the client. Disabling a client ends its tokens
at once (smart.token_holder joins the client) and revokes them as well.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from care.acting import Origin, acting_admin, admin_audited
from care.permissions import AdminAction
from fhir_api.search import RESOURCE_TYPES
from fhir_api.smart import WRITABLE, OAuthError, parse_scope
from storage.steps import Sql, Steps

MANAGE: Final = AdminAction.MANAGE_SYSTEM_CLIENTS
CLIENT_ID: Final = re.compile(r"[a-z0-9][a-z0-9._-]{1,62}")  # system_clients.id CHECK (migration 0018)
NAME_LENGTH: Final = (2, 200)


class ClientProblemCode(StrEnum):
    INVALID = "invalid"  # a constraint of the table (or a file the CLI could not read)
    CLIENT_ID = "client_id"
    NAME = "name"
    NO_PROVIDER = "no_provider"
    EXISTS = "exists"
    NOT_PEM = "not_pem"
    PRIVATE_KEY = "private_key"
    RSA_TOO_SHORT = "rsa_too_short"
    KEY_TYPE = "key_type"
    JWKS_SHAPE = "jwks_shape"
    JWKS_KEY_TYPE = "jwks_key_type"
    JWKS_UNREADABLE = "jwks_unreadable"
    NO_SCOPE = "no_scope"
    BAD_SCOPE = "bad_scope"
    UNKNOWN_TYPE = "unknown_type"
    NO_WARD = "no_ward"


class ClientProblem(ValueError):
    """A registration Hemma refuses; the text names the field, never a key. `code` is what the
    dashboard looks its Swedish text up by."""

    def __init__(self, message: str, code: ClientProblemCode = ClientProblemCode.INVALID) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class SystemClient:
    id: str
    name: str
    provider_id: str
    scopes: tuple[str, ...]
    wards: tuple[str, ...]
    disabled: bool


def jwks_from_pem(pem: bytes) -> dict[str, Any]:
    """A public key in PEM (RSA at least 2048 bits, or EC P-384) as a JWK Set with a `kid`."""
    if b"PRIVATE KEY-----" in pem:
        raise ClientProblem(
            "--public-key holds a private key: register the public key only", ClientProblemCode.PRIVATE_KEY
        )
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):  # TypeError: cryptography's answer to some malformed PEM
        raise ClientProblem(
            "--public-key must be a PEM public key (a private key is never registered)",
            ClientProblemCode.NOT_PEM,
        ) from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ClientProblem("RSA keys must have at least 2048 bits", ClientProblemCode.RSA_TOO_SHORT)
        jwk = json.loads(RSAAlgorithm.to_jwk(key))
        jwk["alg"] = "RS384"
    elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP384R1):
        jwk = json.loads(ECAlgorithm.to_jwk(key))
        jwk["alg"] = "ES384"
    else:
        raise ClientProblem("the key must be RSA (RS384) or EC P-384 (ES384)", ClientProblemCode.KEY_TYPE)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    jwk["kid"] = hashlib.sha256(der).hexdigest()[:16]
    return {"keys": [jwk]}


def check_jwks(jwks: object) -> dict[str, Any]:
    """A JWK Set of public RSA or EC keys, each usable with PyJWT."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ClientProblem(
            "the JWK Set must be an object with a non-empty `keys` list", ClientProblemCode.JWKS_SHAPE
        )
    for entry in jwks["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC"):
            raise ClientProblem("every key must be an RSA or EC JWK", ClientProblemCode.JWKS_KEY_TYPE)
        if any(part in entry for part in ("d", "p", "q", "dp", "dq", "qi")):
            raise ClientProblem(
                "the JWK Set holds a private key: register the public key only", ClientProblemCode.PRIVATE_KEY
            )
        try:
            jwt.PyJWK.from_dict(entry)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            raise ClientProblem(
                "a key of the JWK Set cannot be read", ClientProblemCode.JWKS_UNREADABLE
            ) from None
    return jwks


def check_scopes(scopes: list[str]) -> list[str]:
    if not scopes:
        raise ClientProblem(
            "give at least one --scope, e.g. system/Observation.rs", ClientProblemCode.NO_SCOPE
        )
    for text in scopes:
        try:
            scope = parse_scope(text)
        except OAuthError as exc:
            raise ClientProblem(f"--scope: {exc.description}", ClientProblemCode.BAD_SCOPE) from None
        if scope.resource_type != "*" and scope.resource_type not in (*RESOURCE_TYPES, *WRITABLE):
            # A scope for a type Hemma never serves grants nothing: an operator's typing error.
            raise ClientProblem(
                f"--scope: Hemma's FHIR API has no resource type {scope.resource_type}",
                ClientProblemCode.UNKNOWN_TYPE,
            )
    return scopes


def check_client_id(client_id: str) -> str:
    if not CLIENT_ID.fullmatch(client_id):
        raise ClientProblem(
            "the client id must be 2-63 characters: a-z, digits, '.', '_' and '-'",
            ClientProblemCode.CLIENT_ID,
        )
    return client_id


def check_name(name: str) -> str:
    text = " ".join(name.split())
    low, high = NAME_LENGTH
    if not low <= len(text) <= high or not text.isprintable():
        raise ClientProblem(f"the name must be {low}-{high} printable characters", ClientProblemCode.NAME)
    return text


def register_client(
    *, client_id: str, name: str, provider_id: str, jwks: dict[str, Any], scopes: list[str],
    wards: list[str], origin: Origin | None, by: str | None = None, replace: bool = True,
) -> Steps[SystemClient]:  # fmt: skip
    """Create the client, or (`replace`, the CLI's way) replace its name, keys, scopes and wards (and
    enable it again). `replace` False (the admin's page): an id already taken is refused (EXISTS).
    `by` an admin, or None for the CLI's operator."""
    staff = yield from acting_admin(by, MANAGE)
    check_client_id(client_id)
    name = check_name(name)
    check_jwks(jwks)
    check_scopes(scopes)
    provider = yield Sql("SELECT 1 FROM care_providers WHERE id = %s", (provider_id,), fetch="one")
    if provider is None:
        raise ClientProblem(f"no care provider {provider_id[:64]}", ClientProblemCode.NO_PROVIDER)
    conflict = (
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, provider_id = EXCLUDED.provider_id,"
        " jwks = EXCLUDED.jwks, scopes = EXCLUDED.scopes, disabled = false"
        if replace
        else " ON CONFLICT (id) DO NOTHING"
    )
    try:
        created = yield Sql(
            "INSERT INTO system_clients (id, name, provider_id, jwks, scopes) VALUES (%s, %s, %s, %s, %s)"
            + conflict
            + " RETURNING id",
            (client_id, name, provider_id, json.dumps(jwks), scopes),
            fetch="one",
        )
    except Exception as exc:  # psycopg's refusal of a constraint: the operator's field, never the row
        raise ClientProblem(
            "the client id, name or care provider is not valid (or the provider is unknown)"
        ) from exc
    if created is None:
        raise ClientProblem(f"a system client {client_id} exists already", ClientProblemCode.EXISTS)
    rows = yield Sql(
        "SELECT ward_id FROM system_client_wards WHERE client_id = %s", (client_id,), fetch="all"
    )
    old = {r[0] for r in rows}
    for ward in sorted(set(wards) - old):
        exists = yield Sql("SELECT 1 FROM wards WHERE id = %s", (ward,), fetch="one")
        if exists is None:
            raise ClientProblem(f"--ward: no ward {ward[:64]}", ClientProblemCode.NO_WARD)
        yield Sql("INSERT INTO system_client_wards (client_id, ward_id) VALUES (%s, %s)", (client_id, ward))
    if old - set(wards):
        # system_client_wards is a plain link table: a ward taken away is no longer read.
        yield Sql(
            "DELETE FROM system_client_wards WHERE client_id = %s AND NOT ward_id = ANY(%s)",
            (client_id, wards),
        )
    yield from admin_audited(origin, staff=staff, action=MANAGE,
                             context=f"system_client:{client_id} registered")  # fmt: skip
    return SystemClient(client_id, name, provider_id, tuple(scopes), tuple(sorted(wards)), False)


def disable_client(client_id: str, *, origin: Origin | None, by: str | None = None) -> Steps[bool]:
    """Shut the client out at once: its tokens stop working (and are revoked) and it gets no new ones."""
    staff = yield from acting_admin(by, MANAGE)
    row = yield Sql(
        "UPDATE system_clients SET disabled = true WHERE id = %s RETURNING id", (client_id,), fetch="one"
    )
    if row is None:
        return False
    yield Sql(
        "UPDATE fhir_access_tokens SET revoked_at = now() WHERE client_id = %s AND revoked_at IS NULL",
        (client_id,),
    )
    yield from admin_audited(origin, staff=staff, action=MANAGE,
                             context=f"system_client:{client_id} disabled")  # fmt: skip
    return True


def enable_client(client_id: str, *, origin: Origin | None, by: str | None = None) -> Steps[bool]:
    """Let a disabled client ask for tokens again. The tokens it held stay revoked (disable_client):
    it signs a new assertion, as after any token's five minutes."""
    staff = yield from acting_admin(by, MANAGE)
    row = yield Sql(
        "UPDATE system_clients SET disabled = false WHERE id = %s RETURNING id", (client_id,), fetch="one"
    )
    if row is None:
        return False
    yield from admin_audited(origin, staff=staff, action=MANAGE,
                             context=f"system_client:{client_id} enabled")  # fmt: skip
    return True


def list_clients() -> Steps[list[SystemClient]]:
    rows = yield Sql(
        "SELECT c.id, c.name, c.provider_id, c.scopes, c.disabled,"
        " coalesce(array_agg(w.ward_id ORDER BY w.ward_id) FILTER (WHERE w.ward_id IS NOT NULL), '{}')"
        " FROM system_clients c LEFT JOIN system_client_wards w ON w.client_id = c.id"
        " GROUP BY c.id ORDER BY c.id",
        fetch="all",
    )
    return [SystemClient(r[0], r[1], r[2], tuple(r[3]), tuple(r[5]), bool(r[4])) for r in rows]
