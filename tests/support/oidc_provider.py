"""A real OpenID Connect provider for tests: `oidc-provider-mock` (Authlib's provider on Flask and
werkzeug) on a free local port in a thread, standing in for Inera's IdP. Its users' claims are set
over its HTTP API (PUT /users/{sub}); the "login" is a POST of the subject to its authorization form.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx


@contextlib.contextmanager
def running_oidc_provider() -> Iterator[str]:
    """Yields the issuer URL, e.g. http://localhost:41234 (the mock names itself by the Host asked for)."""
    from authlib.deprecate import AuthlibDeprecationWarning

    with warnings.catch_warnings():
        # The mock imports authlib.jose, which Authlib itself now calls deprecated (use joserfc).
        warnings.simplefilter("ignore", AuthlibDeprecationWarning)
        import oidc_provider_mock

    # require_nonce: an authorization request without a nonce is refused by the provider too.
    with oidc_provider_mock.run_server_in_thread(require_nonce=True) as server:
        yield f"http://localhost:{server.server_port}"


def set_user(issuer: str, sub: str, claims: dict[str, Any]) -> None:
    """The claims the provider puts into this subject's ID token (and userinfo)."""
    response = httpx.put(f"{issuer}/users/{quote(sub, safe='')}", json=claims, timeout=10)
    assert response.status_code == 204, response.text


def authorize(client: httpx.Client, authorization_url: str, sub: str) -> httpx.Response:
    """The person "logs in" at the provider: its form posted with the subject; the provider's answer
    (a redirect to Hemma's callback with code and state) is not followed."""
    return client.post(authorization_url, data={"sub": sub}, follow_redirects=False)
