"""Refuse state-changing requests and websockets that a browser says come from another site.

Defence in depth beside the CSRF tokens (issue 8, finding 12): every POST (and any other unsafe
method) and every websocket must not carry a browser's sign of another origin. The signs, each
checked when present:

* `Sec-Fetch-Site` (sent by current browsers): only `same-origin` (or `none`, user-initiated);
* `Origin`: its host and port must be this request's `Host` (`null`, an opaque origin such as a
  sandboxed frame's, is refused);
* `Referer`, when there is no `Origin`: the same.

A request with none of them is not from a browser page (a script, the tests): the CSRF token still
decides. Host, not scheme, is compared: behind the TLS proxy the dashboard itself sees plain HTTP.
The proxy must pass the original Host header (deploy/README.md). Our pages send `Referrer-Policy:
same-origin` for this reason: under `no-referrer` a browser sends `Origin: null` with form posts.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REFUSED_MESSAGE = (
    "Förfrågan kom inte från Hemmas egna sidor och nekades. Öppna sidan igen och försök på nytt."
)


def from_this_site(headers: Headers) -> bool:
    """False when the browser's headers say the request was made by a page of another origin."""
    host = (headers.get("host") or "").lower()
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is not None:
        return _host_of(origin) == host
    referer = headers.get("referer")
    if referer is not None:
        return _host_of(referer) == host
    return True


def _host_of(url: str) -> str | None:
    try:
        return urlsplit(url).netloc.lower() or None
    except ValueError:
        return None


class SameOriginWrites:
    """Pure ASGI middleware: an unsafe method from another origin gets 403 before any route runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS or from_this_site(Headers(scope=scope)):
            await self.app(scope, receive, send)
            return
        app = scope["app"]
        app.state.metrics.csrf_rejections += 1
        log.warning("refused a cross-site %s %s", scope["method"], scope["path"])
        await _refusal(Request(scope, receive))(scope, receive, send)


def _refusal(request: Request) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": REFUSED_MESSAGE}, status_code=403)
    templates = request.app.state.templates
    context = {"staff": None, "csrf": "", "message": REFUSED_MESSAGE, "status_code": 403}
    return templates.TemplateResponse(request, "error.html", context, status_code=403)
