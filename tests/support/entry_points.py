"""One decision through both entry points: the `hemma` CLI (a subprocess, as an operator runs it) and
the dashboard's API (as a logged-in member of staff), and the check that a refusal reads the same."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx

from care import texts_sv
from care.refusals import Refused
from dashboard.refusals import HTTP
from tests.support.dashboard_server import logged_in
from tests.support.ward_seed import PASSWORD


def hemma_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HEMMA_DATABASE_URL=database_url)
    return subprocess.run(
        [sys.executable, "-m", "hemma.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def post_as(base_url: str, username: str, path: str, body: dict[str, Any]) -> httpx.Response:
    from tests.test_dashboard_engine_api import Staff

    with logged_in(base_url, username, PASSWORD) as client:
        return Staff(client).post(path, body)


def same_refusal(cli: subprocess.CompletedProcess[str], http: httpx.Response, refusal: Refused) -> None:
    """The CLI's line is the code's English text, the API's answer its status and Swedish text."""
    status, field = HTTP[refusal.code]
    assert (cli.returncode, cli.stderr.strip()) == (2, f"hemma: {refusal}"), cli.stderr
    expected = {"detail": texts_sv.text(refusal.refusal)} | ({"field": field} if status == 422 else {})
    assert (http.status_code, http.json()) == (status, expected), http.text
