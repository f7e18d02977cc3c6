"""The production broker configuration (deploy/mosquitto/mosquitto.conf and acl) on a real Mosquitto.

deploy/mosquitto/selftest.sh starts a throw-away mosquitto from the production files (only paths,
ports and accounts rewritten) and runs verify_acl.py against it twice: with the hemma-verify
account an operator uses on a live broker, and with hemma-ingest itself. Among its checks are the
takeover findings of the review (issue 8): a kit's credentials with client id hemma-ingest or
another kit's id must not disconnect that client, fire its last will or discard ingest's
session; and the receipts topic: a kit reads only its own, writes none.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BROKER_DIR = ROOT / "deploy" / "mosquitto"


def _required_binary(name: str, *fallbacks: str) -> str:
    found = shutil.which(name) or next((p for p in fallbacks if Path(p).exists()), None)
    if found is None:
        pytest.fail(
            f"{name} not found: the broker configuration test starts its own mosquitto with the "
            f"production config. Install Debian's mosquitto package (make test does so as root)."
        )
    return found


def test_production_config_passes_verify_acl() -> None:
    mosquitto = _required_binary("mosquitto", "/usr/sbin/mosquitto")
    mosquitto_passwd = _required_binary("mosquitto_passwd", "/usr/bin/mosquitto_passwd")
    _required_binary("openssl")  # --tls: the gateway listener runs with its certfile/keyfile lines
    env = dict(os.environ, MOSQUITTO=mosquitto, MOSQUITTO_PASSWD=mosquitto_passwd, PYTHON=sys.executable)
    run = subprocess.run(
        ["bash", str(BROKER_DIR / "selftest.sh"), "--tls"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    # Two complete runs (hemma-verify, then hemma-ingest), every check passed; 44 checks each today.
    passed = [int(n) for n in re.findall(r"^(\d+) passed, 0 failed$", output, re.MULTILINE)]
    assert len(passed) == 2 and min(passed) >= 44, output
    for account in ("hemma-verify", "hemma-ingest"):
        for line in (
            f"PASS  {account} stays connected",
            "PASS  selftest-gw-b stays connected",
            "PASS  selftest-gw-b's last will is not fired",
            f"PASS  {account} reconnects (clean start off) and the broker still has its session",
            "PASS  it receives the 3 messages queued while it was away",
            "PASS  selftest-gw-a receives that receipt",
            "PASS  selftest-gw-a may NOT publish to hemma/v1/gw/selftest-gw-a/receipts (PUBACK 0x87)",
            "PASS  selftest-gw-a received nothing but its own receipt",
            # The config topic (issue 10): ingest writes it, a kit reads its own and writes none.
            f"PASS  {account} may publish to hemma/v1/gw/selftest-gw-a/config",
            f"PASS  {account} may publish to hemma/v1/gw/selftest-gw-b/config",
            "PASS  selftest-gw-a receives that configuration",
            "PASS  selftest-gw-b receives that configuration",
            "PASS  selftest-gw-a may NOT publish to hemma/v1/gw/selftest-gw-a/config (PUBACK 0x87)",
            "PASS  selftest-gw-a may NOT publish to hemma/v1/gw/selftest-gw-b/config (PUBACK 0x87)",
            "PASS  selftest-gw-a received nothing but its own receipt and configuration",
            "PASS  selftest-gw-b received nothing but its own receipt and configuration",
            # The events topic (issue 10, "Kontakta mig"): a kit writes its own, never another's.
            "PASS  selftest-gw-a may publish to hemma/v1/gw/selftest-gw-a/events",
            f"PASS  {account} may subscribe to hemma/v1/gw/selftest-gw-a/events",
            "PASS  selftest-gw-a may NOT publish to hemma/v1/gw/selftest-gw-b/events (PUBACK 0x87)",
        ):
            assert re.search(rf"^{re.escape(line)}", output, re.MULTILINE), f"missing: {line}\n{output}"
    assert output.count("=== verify_acl.py with ") == 2, output


def _listener_blocks(conf: str) -> list[list[str]]:
    lines = [line.strip() for line in conf.splitlines() if line.strip() and not line.startswith("#")]
    starts = [i for i, line in enumerate(lines) if line.startswith("listener ")]
    return [lines[a:b] for a, b in zip(starts, [*starts[1:], len(lines)], strict=True)]


def test_every_listener_binds_client_ids_to_usernames() -> None:
    """A listener option in Mosquitto 2.0: on the general part it would open a default listener instead."""
    conf = (BROKER_DIR / "mosquitto.conf").read_text()
    blocks = _listener_blocks(conf)
    assert [block[0] for block in blocks] == ["listener 1883", "listener 8883"]
    for block in blocks:
        assert "use_username_as_clientid true" in block, block
    before_listeners = conf.split("\nlistener ", 1)[0]
    assert not re.search(r"^use_username_as_clientid", before_listeners, re.MULTILINE)


def _acl_block(acl: str, user: str) -> list[str]:
    lines = [line.strip() for line in acl.splitlines() if line.strip() and not line.startswith("#")]
    start = lines.index(f"user {user}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("user ")), len(lines))
    return lines[start:end]


def test_verify_account_has_exactly_ingests_rights() -> None:
    """verify_acl.py checks hemma-verify on a live broker in ingest's place: the two blocks must agree."""
    acl = (BROKER_DIR / "acl").read_text()
    ingest = _acl_block(acl, "hemma-ingest")
    verify = [line.replace("hemma-verify", "hemma-ingest") for line in _acl_block(acl, "hemma-verify")]
    assert verify == ingest
    assert "topic write hemma/v1/gw/+/receipts" in ingest
    assert "topic write hemma/v1/gw/+/config" in ingest
    assert "topic read hemma/v1/gw/+/events" in ingest
    assert "topic deny hemma/v1/gw/hemma-ingest/#" in ingest


def test_verify_acl_refuses_ingests_own_account_on_a_live_broker() -> None:
    """Under the binding, hemma-ingest's connections are the running ingest's: refused unless throw-away."""
    args = (
        "--host 127.0.0.1 --port 1 --gateway verify-kit-a --other-gateway verify-kit-b --ingest hemma-ingest"
    )
    run = subprocess.run(
        [sys.executable, str(BROKER_DIR / "verify_acl.py"), *args.split()],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 2
    assert "would take over the running ingest's client id" in run.stderr
    assert "PASS" not in run.stdout and "FAIL" not in run.stdout
