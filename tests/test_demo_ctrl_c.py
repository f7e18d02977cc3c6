"""Ctrl-C on `hemma demo` stops every part quietly and leaves nothing running (review finding 13, issue 8).

The demo runs as a terminal runs a command: a session and process group of its own, SIGINT at its
default action, and the Ctrl-C is a SIGINT to the whole process group. It uses the test's
database (HEMMA_DATABASE_URL) to start fast, and starts its own mosquitto child as `make demo`
does. Before the fix every part received that SIGINT at once: the broker died under the
gateways (a warning each), parts still importing printed KeyboardInterrupt tracebacks, and the
dashboard, given a second SIGINT by the demo, printed the lifespan's CancelledError as ERROR.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from devservices import services
from hemma.demo import DEMO_WARD
from tests.support.dashboard_server import logged_in, ward_socket
from tests.support.waiting import wait_until

# Resets SIGINT to its default before the demo starts, as a shell does for a foreground command
# (a test runner may itself have been started with SIGINT ignored, which a child would inherit).
AS_A_TERMINAL_STARTS_IT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, '-m', 'hemma.cli', *sys.argv[1:]])"
)
STOP_WITHIN_S = 45


def _processes_of(data_dir: Path) -> list[psutil.Process]:
    """Every live process of this demo: they all carry its HEMMA_DATA_DIR (mosquitto inherits it too)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get("HEMMA_DATA_DIR") == str(data_dir):
                found.append(proc)
        except psutil.Error:  # gone meanwhile, or not ours to read
            continue
    return found


def _describe(procs: list[psutil.Process]) -> list[str]:
    described = []
    for proc in procs:
        try:
            described.append(f"{proc.pid} {' '.join(proc.cmdline())[:100]}")
        except psutil.Error:
            described.append(f"{proc.pid} (gone)")
    return described


def _start_demo(tmp_path: Path, database_url: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    data_dir = tmp_path / "demo"
    output = tmp_path / "demo-output.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEMMA_")}
    env.update(
        HEMMA_DATABASE_URL=database_url,
        HEMMA_DATA_DIR=str(data_dir),
        HEMMA_DASHBOARD_PORT=str(services.free_port()),
    )
    args = ["demo", "--patients", "6", "--speed", "60", "--interval", "2"]
    with output.open("wb") as sink:
        demo = subprocess.Popen(
            [sys.executable, "-c", AS_A_TERMINAL_STARTS_IT, *args],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, which the Ctrl-C below goes to
        )
    return demo, data_dir, output


def _text(output: Path) -> str:
    return output.read_text(encoding="utf-8", errors="replace")


def _wait_for_line(demo: subprocess.Popen[bytes], output: Path, line: str) -> None:
    """Wait until the demo prints `line`; fail with what it printed if it ends first or takes too long."""

    def printed_or_ended() -> bool:
        if demo.poll() is not None:
            printed = _text(output)[-3000:]
            raise AssertionError(f"the demo ended ({demo.returncode}) before {line!r}:\n{printed}")
        return line in _text(output)

    try:
        wait_until(printed_or_ended, timeout=90, what=repr(line))
    except AssertionError as failed:
        if "the demo ended" in str(failed):
            raise
        raise AssertionError(f"{failed}; the demo printed:\n{_text(output)[-3000:]}") from None


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["running", "starting"])
def test_ctrl_c_stops_the_demo_quietly(tmp_path: Path, database_url: str, moment: str) -> None:
    demo, data_dir, output = _start_demo(tmp_path, database_url)
    sockets = []
    try:
        if moment == "running":
            # A nurse has the ward open: the dashboard's live workers and a websocket are busy.
            _wait_for_line(demo, output, "Ctrl-C stops everything")
            base_url = re.search(r"^Dashboard: (\S+)", _text(output), re.MULTILINE).group(1)  # type: ignore[union-attr]
            username, password = re.search(r"login as (\S+) / (\S+) ", _text(output)).groups()  # type: ignore[union-attr]
            with logged_in(base_url, username, password) as client:
                sockets.append(ward_socket(client, base_url, DEMO_WARD, origin=base_url))
            assert '"type":"snapshot"' in sockets[0].recv(timeout=10)
            time.sleep(2)  # readings flow, the simulator's gateways are connected
            parts = _processes_of(data_dir)
            # The demo, mosquitto, ingest, the dashboard, the escalator and the simulator.
            assert len(parts) == 6, _describe(parts)
        else:
            # Right when the parts are being started (that line is printed just before).
            _wait_for_line(demo, output, "Escalation:")
            time.sleep(0.3)
        interrupted_at = len(_text(output))
        os.killpg(demo.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        started = time.monotonic()
        demo.wait(timeout=STOP_WITHIN_S)
        took = time.monotonic() - started
        deadline = time.monotonic() + 3
        while (left := _processes_of(data_dir)) and time.monotonic() < deadline:
            time.sleep(0.1)
        left_over = _describe(left)
    finally:
        for socket in sockets:
            socket.close()
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        for proc in _processes_of(data_dir):
            proc.kill()  # never leave a stray part behind, whatever the outcome
    text = _text(output)
    after = text[interrupted_at:]
    assert demo.returncode == 0, text[-3000:]
    for noise in ("Traceback", "CancelledError", "ERROR"):
        assert noise not in text, text[-3000:]
    assert "WARNING" not in after, after
    assert "Stopped." in after, after
    assert len(after.strip().splitlines()) <= 6, after
    assert took < STOP_WITHIN_S
    assert left_over == []
