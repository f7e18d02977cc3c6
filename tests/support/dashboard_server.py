"""Run the dashboard in-process on a free port, for API, browser and end-to-end tests."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator

import httpx
import uvicorn
from websockets.sync.client import ClientConnection, connect

from core.settings import Settings
from dashboard.app import SESSION_COOKIE, create_app
from devservices.services import free_port


@contextlib.contextmanager
def running_dashboard(settings: Settings, *, startup_timeout: float = 20.0) -> Iterator[str]:
    """Start uvicorn on a background thread; yields the base URL, e.g. http://127.0.0.1:41234.

    The lifespan (migrations, pool, LISTEN) has completed when this yields. On exit the
    server shuts down gracefully (websockets are closed, the pool and LISTEN connection too).
    """
    host, port = "127.0.0.1", free_port()
    app = create_app(settings.model_copy(update={"dashboard_host": host, "dashboard_port": port}))
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"dashboard-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("dashboard server exited during startup (see the log above)")
        if time.monotonic() > deadline:
            server.should_exit = True
            thread.join(5)
            raise TimeoutError(f"dashboard did not start within {startup_timeout:.0f} s")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        if thread.is_alive():
            raise RuntimeError("dashboard server did not stop within 15 s")


@contextlib.contextmanager
def logged_in(base_url: str, username: str, password: str) -> Iterator[httpx.Client]:
    """An httpx client holding a dashboard session (fails the test if the login is refused)."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        response = post_login(client, username, password)
        if response.status_code != 303:
            raise AssertionError(f"login as {username} refused: HTTP {response.status_code}")
        yield client


def login_token(client: httpx.Client) -> str:
    """The login form's CSRF token, bound to the pre-login cookie this client now holds."""
    html = client.get("/login").text
    match = re.search(r'<input type="hidden" name="csrf" value="([^"]+)">', html)
    if not match:
        raise AssertionError("no CSRF token in the login form")
    return match.group(1)


def post_login(client: httpx.Client, username: str, password: str, **fields: str) -> httpx.Response:
    """Log in as a browser does: fetch the form for its token, then post it (extra form `fields`)."""
    data = {"username": username, "password": password, "csrf": login_token(client), **fields}
    return client.post("/login", data=data)


def csrf_token(client: httpx.Client, page: str = "/") -> str:
    """The per-session CSRF token embedded in a dashboard page."""
    html = client.get(page, follow_redirects=True).text
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    if not match:
        raise AssertionError(f"no CSRF token on {page}")
    return match.group(1)


def ward_socket(
    client: httpx.Client | None, base_url: str, ward_id: str, origin: str | None = None
) -> ClientConnection:
    """A websocket to /ws/wards/{ward_id} carrying the client's session cookie (none when client is None)."""
    cookie = client.cookies.get(SESSION_COOKIE) if client is not None else None
    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"} if cookie else {}
    url = base_url.replace("http://", "ws://", 1) + f"/ws/wards/{ward_id}"
    return connect(url, additional_headers=headers, origin=origin, open_timeout=10)  # type: ignore[arg-type]


def watched_page(browser, problems: list[str], **context_options):  # type: ignore[no-untyped-def]
    """(context, page) in a Swedish 1440x900 browser context; console and script errors go to `problems`."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="sv-SE", **context_options)
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return context, page


def log_in_page(page, base_url: str, path: str, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    """Open `path`, log in on the page it redirects to, and wait to be back on `path`."""
    page.goto(base_url + path)
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**" + path)
