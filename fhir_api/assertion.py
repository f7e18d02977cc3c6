"""The client's side of SMART Backend Services: sign a client assertion and trade it for a token.

What a region's journal system does before each batch of reads; Hemma uses it in `hemma fhir token`
(operators and the demo) and the tests. The `kid` is the one `clients.jwks_from_pem` gives the same
key, so the server finds the key without trying each one.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir_api.smart import ASSERTION_TYPE


class TokenRefused(RuntimeError):
    """The token endpoint said no: its RFC 6749 error code and description (never a key)."""


def key_id(private_pem: bytes) -> tuple[str, str]:
    """(alg, kid) for a private key in PEM: RS384 for RSA, ES384 for EC P-384."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        alg = "RS384"
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        alg = "ES384"
    else:
        raise ValueError("the key must be an RSA or EC private key")
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return alg, hashlib.sha256(der).hexdigest()[:16]


def sign_assertion(
    client_id: str, private_pem: bytes, token_url: str, *, now: datetime | None = None, lifetime_s: int = 240
) -> str:
    """A client assertion: iss = sub = the client, aud = the token URL, a fresh jti, exp soon."""
    alg, kid = key_id(private_pem)
    issued = now or datetime.now(UTC)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "jti": str(uuid.uuid4()),
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=lifetime_s)).timestamp()),
    }
    return jwt.encode(claims, private_pem, algorithm=alg, headers={"kid": kid})


def request_token(base: str, client_id: str, private_pem: bytes, *, scopes: list[str] | None = None) -> str:
    """POST a signed assertion to `<base>/auth/token`; the access token, or TokenRefused."""
    token_url = f"{base.rstrip('/')}/auth/token"
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": sign_assertion(client_id, private_pem, token_url),
    }
    if scopes:
        form["scope"] = " ".join(scopes)
    response = httpx.post(token_url, data=form, timeout=10)
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200 or "access_token" not in body:
        raise TokenRefused(f"token refused: HTTP {response.status_code} {body.get('error', '')}".strip())
    return str(body["access_token"])
