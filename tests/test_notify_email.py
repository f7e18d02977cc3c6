"""E-mail channel against a real SMTP server (aiosmtpd, in-process): plain, STARTTLS and login, TLS."""

from __future__ import annotations

import random
import shutil
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from alerts.model import Priority
from core.contract import AlertMessage
from devservices.services import free_port
from paging.notify import (
    DeliveryResult,
    Dispatcher,
    EmailChannel,
    Notification,
    Recipient,
    RetryPolicy,
    notification_for_alert,
)
from paging.notify.email import ALERT_ID_HEADER
from tests.support.smtp import Mailbox

T0 = datetime(2025, 3, 4, 13, 7, tzinfo=UTC)
PATIENT_ID = uuid.UUID("5f0c3c2e-2b7e-4d36-9a55-0e4f6f1c9a01")
# Who the patient is, as the database knows it: none of it may reach a mailbox.
PATIENT_NAME = "Astrid Lindqvist"
PERSONAL_NUMBER = "19480101-1234"


def _check_login(
    server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"hemma", b"ratt-losenord")
    # handled=False: aiosmtpd itself answers a failed login (535).
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def smtp_plain(mailbox: Mailbox) -> Iterator[int]:
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command line."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not installed")
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def _client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


@pytest.fixture
def smtp_starttls(mailbox: Mailbox, certificate: tuple[Path, Path]) -> Iterator[int]:
    port = free_port()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, tls_context=_server_context(certificate),
        require_starttls=True, auth_required=True, authenticator=_check_login,
    )  # fmt: skip
    controller.start()
    yield port
    controller.stop()


def notification(recipient: Recipient, *, message: str = "SpO₂ 86 %: under gränsen 88 %") -> Notification:
    alert = AlertMessage(
        v=1, alert_id=1234, ward_id="avd-7", patient_id=PATIENT_ID, rule="threshold:spo2", priority="high",
        state="open", message=message, at=T0 - timedelta(minutes=6),
    )  # fmt: skip
    return notification_for_alert(
        alert, recipient, dashboard_url="https://hemma.region.example/", escalated_at=T0, escalation_level=2
    )


BERG = Recipient("Dr. Åsa Berg", email="asa.berg@region.example")


def test_mail_has_the_alert_headers_and_a_swedish_body_without_patient_identity(
    smtp_plain: int, mailbox: Mailbox
) -> None:
    channel = EmailChannel(
        "127.0.0.1", smtp_plain, sender="hemma@region.example", security="none", timeout_s=5
    )
    n = notification(BERG)

    assert channel.send(n) == DeliveryResult(True, "email", 1, "SMTP accepted by 127.0.0.1", False)

    [envelope] = mailbox.envelopes
    assert envelope.mail_from == "hemma@region.example"
    assert envelope.rcpt_tos == ["asa.berg@region.example"]
    [mail] = mailbox.messages()
    assert mail["Subject"] == "Hemma: larm med hög prioritet – avd-7"
    [to] = mail["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Dr. Åsa Berg", "asa.berg@region.example")
    assert mail[ALERT_ID_HEADER] == "1234"
    assert mail["Message-ID"] == f"<{n.key}@region.example>"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Date"] == "Tue, 04 Mar 2025 13:07:00 +0000"
    body = mail.get_content()
    assert mail.get_content_type() == "text/plain"
    assert body.splitlines()[:13] == [
        "Larm i Hemma som kräver din bedömning (eskaleringsnivå 2).",
        "",
        "Prioritet:   Hög",
        "Avdelning:   avd-7",
        "Regel:       threshold:spo2",
        "Meddelande:  SpO₂ 86 %: under gränsen 88 %",
        "Larmet kom:  2025-03-04 14:01",  # Swedish local time (CET in March)
        "Eskalerat:   2025-03-04 14:07",
        "",
        "Öppna larmet i Hemma (inloggning krävs):",
        "https://hemma.region.example/alerts/1234",
        "",
        "Meddelandet innehåller inga uppgifter om patientens identitet; de visas i Hemma.",
    ]
    raw = bytes(mailbox.envelopes[0].original_content or b"").decode("utf-8", "replace")
    for secret in (PATIENT_NAME, PERSONAL_NUMBER, PERSONAL_NUMBER.replace("-", ""), str(PATIENT_ID)):
        assert secret not in raw and secret not in body


def test_a_personnummer_in_a_rule_message_never_reaches_the_mailbox(
    smtp_plain: int, mailbox: Mailbox
) -> None:
    channel = EmailChannel(
        "127.0.0.1", smtp_plain, sender="hemma@region.example", security="none", timeout_s=5
    )
    n = notification(BERG, message=f"Vikt +2,4 kg ({PATIENT_NAME} {PERSONAL_NUMBER})")
    assert n.message == "Larm – öppna Hemma för detaljer"

    assert channel.send(n).ok
    raw = bytes(mailbox.envelopes[0].original_content or b"").decode("utf-8", "replace")
    assert PERSONAL_NUMBER not in raw and PATIENT_NAME not in raw
    assert "Meddelande:  Larm – öppna Hemma för detaljer" in mailbox.messages()[0].get_content()


def test_retries_send_the_same_message_id(smtp_plain: int, mailbox: Mailbox) -> None:
    channel = EmailChannel(
        "127.0.0.1", smtp_plain, sender="hemma@region.example", security="none", timeout_s=5
    )
    channel.send(notification(BERG))
    channel.send(notification(BERG))
    channel.send(notification(Recipient("Dr. Nils Ek", email="nils.ek@region.example")))
    ids = [m["Message-ID"] for m in mailbox.messages()]
    assert ids[0] == ids[1] != ids[2]


def test_starttls_and_login(smtp_starttls: int, mailbox: Mailbox, certificate: tuple[Path, Path]) -> None:
    channel = EmailChannel(
        "127.0.0.1", smtp_starttls, sender="hemma@region.example", security="starttls",
        username="hemma", password="ratt-losenord", ssl_context=_client_context(certificate), timeout_s=5,
    )  # fmt: skip
    assert channel.send(notification(BERG)).ok
    assert mailbox.messages()[0][ALERT_ID_HEADER] == "1234"


def test_wrong_password_is_a_permanent_failure(
    smtp_starttls: int, mailbox: Mailbox, certificate: tuple[Path, Path]
) -> None:
    channel = EmailChannel(
        "127.0.0.1", smtp_starttls, sender="hemma@region.example", username="hemma", password="fel",
        ssl_context=_client_context(certificate), timeout_s=5,
    )  # fmt: skip
    result = channel.send(notification(BERG))
    assert (result.ok, result.permanent) == (False, True)
    assert result.detail == "SMTP 535: login refused, check the credentials"
    assert mailbox.envelopes == []


def test_an_untrusted_certificate_is_a_permanent_failure(smtp_starttls: int, mailbox: Mailbox) -> None:
    channel = EmailChannel(
        "127.0.0.1", smtp_starttls, sender="hemma@region.example", username="hemma", password="ratt-losenord",
        timeout_s=5,
    )  # fmt: skip
    result = channel.send(notification(BERG))
    assert (result.ok, result.permanent) == (False, True)
    assert result.detail.startswith("TLS certificate rejected")
    assert mailbox.envelopes == []


def test_implicit_tls(mailbox: Mailbox, certificate: tuple[Path, Path]) -> None:
    port = free_port()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, ssl_context=_server_context(certificate)
    )
    controller.start()
    try:
        channel = EmailChannel(
            "127.0.0.1", port, sender="hemma@region.example", security="tls",
            ssl_context=_client_context(certificate), timeout_s=5,
        )  # fmt: skip
        assert channel.send(notification(BERG)).ok
    finally:
        controller.stop()
    assert len(mailbox.envelopes) == 1


@pytest.mark.parametrize(
    ("reply", "permanent"), [("550 5.1.1 No such user", True), ("450 4.2.1 Mailbox busy", False)]
)
def test_refused_recipient_5xx_is_permanent_4xx_is_not(
    smtp_plain: int, mailbox: Mailbox, reply: str, permanent: bool
) -> None:
    mailbox.refuse_rcpt = reply
    channel = EmailChannel(
        "127.0.0.1", smtp_plain, sender="hemma@region.example", security="none", timeout_s=5
    )
    result = channel.send(notification(BERG))
    assert (result.ok, result.permanent, result.detail) == (
        False,
        permanent,
        f"SMTP {reply[:3]}: recipient refused",
    )


def test_login_in_clear_is_refused_at_configuration() -> None:
    with pytest.raises(ValueError, match="in clear"):
        EmailChannel(
            "127.0.0.1", 25, sender="hemma@region.example", security="none", username="u", password="p"
        )


def test_mail_server_down_is_retried_then_raises_the_technical_alarm() -> None:
    class Clock:
        def __init__(self) -> None:
            self.current, self.sleeps = T0, list[float]()

        def now(self) -> datetime:
            return self.current

        def sleep(self, seconds: float) -> None:
            self.sleeps.append(seconds)
            self.current += timedelta(seconds=seconds)

    clock = Clock()
    channel = EmailChannel(
        "127.0.0.1", free_port(), sender="hemma@region.example", security="none", timeout_s=2
    )
    dispatcher = Dispatcher(
        [channel], clock=clock, policy=RetryPolicy(max_attempts=2), failure_threshold=2, rng=random.Random(1)
    )
    outcome = dispatcher.dispatch(notification(BERG))
    assert [(a.attempt, a.ok, a.permanent, a.detail) for a in outcome.attempts] == [
        (1, False, False, "connection refused"),
        (2, False, False, "connection refused"),
    ]
    assert [(a.rule, a.priority) for a in outcome.alarms] == [("notification_failing:email", Priority.MEDIUM)]
    assert "e-post" in outcome.alarms[0].message and len(clock.sleeps) == 1


def test_the_mail_shows_times_in_the_site_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """HEMMA_SITE_TIMEZONE decides the body's clock (a site in Helsinki reads 15:01, not 14:01)."""
    from core.settings import get_settings
    from paging.notify.email import compose

    n = notification(BERG)
    helsinki = compose(n, sender="hemma@region.example", message_domain="x", zone=ZoneInfo("Europe/Helsinki"))
    assert "Larmet kom:  2025-03-04 15:01" in helsinki.get_content()

    monkeypatch.setenv("HEMMA_SITE_TIMEZONE", "Europe/Helsinki")
    get_settings.cache_clear()
    try:
        channel = EmailChannel("127.0.0.1", 1, sender="hemma@region.example", security="none")
    finally:
        get_settings.cache_clear()
    assert channel._zone == ZoneInfo("Europe/Helsinki")
