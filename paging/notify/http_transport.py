"""One HTTP POST with a bounded timeout, and what its outcome means for a retry (webhook and push share it).

Built on http.client rather than a client library so that the alert engine needs no extra
dependency, and so that redirects are never followed: a signed webhook or a push to a
topic that answers 3xx is misconfigured, and following it could hand the payload to a host
nobody chose.
"""

from __future__ import annotations

import http.client
import ssl
from urllib.parse import urlsplit

from paging.notify.base import DeliveryFailed

# Read at most this much of a reply: we only need to drain it politely, never to store it.
_MAX_REPLY_BYTES = 64 * 1024
# Client errors that say "not now" rather than "never" (RFC 9110 §15.5.9, RFC 6585 §4, RFC 8470 §5.2).
RETRYABLE_4XX = frozenset({408, 425, 429})


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout_s: float,
    ssl_context: ssl.SSLContext | None = None,
) -> str:
    """POST `body` to `url`; returns a short detail on 2xx, raises DeliveryFailed otherwise.

    `timeout_s` bounds the connection and every read (http.client's socket timeout), so a
    receiver that accepts and then stalls costs at most about twice `timeout_s`.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryFailed(f"not an http(s) URL: {parts.scheme}://{parts.hostname}", permanent=True)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl_context or ssl.create_default_context()
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout_s, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    try:
        conn.request("POST", target, body=body, headers={**headers, "Content-Length": str(len(body))})
        reply = conn.getresponse()
        reply.read(_MAX_REPLY_BYTES)
        status, reason = reply.status, reply.reason
    except ssl.SSLCertVerificationError as exc:
        raise DeliveryFailed(f"TLS certificate rejected: {exc.verify_message}", permanent=True) from exc
    except TimeoutError as exc:
        raise DeliveryFailed(f"no answer within {timeout_s:g} s", permanent=False) from exc
    except ConnectionRefusedError as exc:
        raise DeliveryFailed("connection refused", permanent=False) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryFailed(f"network error: {type(exc).__name__}", permanent=False) from exc
    finally:
        conn.close()
    return classify_status(status, reason)


def classify_status(status: int, reason: str) -> str:
    """2xx is delivered; 5xx and the retryable 4xx are temporary; other 3xx/4xx will not get better."""
    # The reason phrase is the receiver's text: keep it short and printable before it reaches a log.
    reason = "".join(ch for ch in reason[:60] if ch.isprintable())
    detail = f"HTTP {status} {reason}".strip()
    if 200 <= status < 300:
        return detail
    if 300 <= status < 400:
        raise DeliveryFailed(f"{detail}: redirects are not followed, fix the URL", permanent=True)
    if 400 <= status < 500 and status not in RETRYABLE_4XX:
        raise DeliveryFailed(detail, permanent=True)
    raise DeliveryFailed(detail, permanent=False)
