"""E-mail channel: a plain-text Swedish message over SMTP (smtplib), with no patient identity in it.

Mail passes through relays and sits in mailboxes outside the hospital, so the subject and
body hold only the priority, ward, rule, the rule's short message, times and the deep link.
The Message-ID is derived from `Notification.key`, so a retried send is the same message to
the receiving side, and `X-Hemma-Alert-Id` lets a mail filter or a ticket system thread the
mails of one alert. `Auto-Submitted: auto-generated` (RFC 3834) keeps auto-replies away.
"""

from __future__ import annotations

import smtplib
import ssl
from datetime import tzinfo
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Literal

from alerts.texts_sv import PRIORITY_SV
from core.settings import get_settings
from paging.notify.base import (
    DeliveryFailed,
    DeliveryResult,
    Notification,
    Recipient,
    outcome_of,
)

ALERT_ID_HEADER = "X-Hemma-Alert-Id"
Security = Literal["none", "starttls", "tls"]


def compose(notification: Notification, *, sender: str, message_domain: str, zone: tzinfo) -> EmailMessage:
    """The mail for one notification, its times in `zone` (the site's, as the dashboard shows them).
    Pure: the Date is when the escalation decided to notify."""
    n = notification

    def local(which: str) -> str:
        return getattr(n, which).astimezone(zone).strftime("%Y-%m-%d %H:%M")

    priority = PRIORITY_SV[n.priority]
    mail = EmailMessage()
    mail["Subject"] = f"Hemma: larm med {priority.lower()} prioritet – {n.ward_id}"
    mail["From"] = sender
    mail["To"] = formataddr((n.recipient.name, n.recipient.email or ""))
    mail["Date"] = format_datetime(n.escalated_at)
    mail["Message-ID"] = f"<{n.key}@{message_domain}>"
    mail[ALERT_ID_HEADER] = str(n.alert_id)
    mail["X-Hemma-Priority"] = n.priority.label
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(
        "\n".join(
            [
                f"Larm i Hemma som kräver din bedömning (eskaleringsnivå {n.escalation_level}).",
                "",
                f"Prioritet:   {priority}",
                f"Avdelning:   {n.ward_id}",
                f"Regel:       {n.rule}",
                f"Meddelande:  {n.message}",
                f"Larmet kom:  {local('raised_at')}",
                f"Eskalerat:   {local('escalated_at')}",
                "",
                "Öppna larmet i Hemma (inloggning krävs):",
                n.link,
                "",
                "Meddelandet innehåller inga uppgifter om patientens identitet; de visas i Hemma.",
                "Svara inte på detta automatiska meddelande.",
            ]
        )
        + "\n"
    )
    return mail


class EmailChannel:
    """SMTP delivery. `security`: "starttls" (default), "tls" (implicit, port 465) or "none" (local relay)."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        sender: str,
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        message_domain: str | None = None,
        zone: tzinfo | None = None,
    ) -> None:
        if username is not None and security == "none":
            raise ValueError("SMTP login without TLS would send the password in clear: use starttls or tls")
        if not (username or "").isascii() or not (password or "").isascii():
            # smtplib encodes the AUTH PLAIN/LOGIN exchange as ASCII: anything else fails on every send.
            raise ValueError("SMTP username and password must be ASCII")
        self._host = host
        self._port = port
        self._sender = sender
        self._security = security
        self._username = username
        self._password = password
        self._timeout_s = timeout_s
        self._ssl_context = ssl_context
        self._message_domain = message_domain or sender.rpartition("@")[2] or "hemma.invalid"
        # The site's zone (HEMMA_SITE_TIMEZONE); the escalator passes it from its settings.
        self._zone = zone or get_settings().site_zone()

    def address(self, recipient: Recipient) -> str | None:
        return recipient.email

    def send(self, notification: Notification) -> DeliveryResult:
        return outcome_of(self.name, self._deliver, notification)

    def _deliver(self, notification: Notification) -> str:
        if notification.recipient.email is None:
            raise DeliveryFailed("recipient has no e-mail address", permanent=True)
        domain, zone = self._message_domain, self._zone
        mail = compose(notification, sender=self._sender, message_domain=domain, zone=zone)
        try:
            with self._connect() as smtp:
                if self._security == "starttls":
                    smtp.starttls(context=self._context())
                if self._username is not None:
                    smtp.login(self._username, self._password or "")
                smtp.send_message(mail)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryFailed(
                f"SMTP {exc.smtp_code}: login refused, check the credentials", permanent=True
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryFailed("SMTP server does not offer STARTTLS or AUTH", permanent=True) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            code = min(code for code, _ in exc.recipients.values())
            raise DeliveryFailed(f"SMTP {code}: recipient refused", permanent=code >= 500) from exc
        except smtplib.SMTPResponseException as exc:
            # Sender, data or greeting refused: 5xx is final, 4xx is "try again later" (RFC 5321 §4.2.1).
            raise DeliveryFailed(
                f"SMTP {exc.smtp_code}: {type(exc).__name__}", permanent=exc.smtp_code >= 500
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryFailed(f"TLS certificate rejected: {exc.verify_message}", permanent=True) from exc
        except TimeoutError as exc:
            raise DeliveryFailed(f"no answer within {self._timeout_s:g} s", permanent=False) from exc
        except ConnectionRefusedError as exc:
            raise DeliveryFailed("connection refused", permanent=False) from exc
        except OSError as exc:  # smtplib.SMTPException is an OSError: disconnects, TLS and network errors
            raise DeliveryFailed(f"SMTP error: {type(exc).__name__}", permanent=False) from exc
        return f"SMTP accepted by {self._host}"

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        if self._security == "tls":
            return smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout_s, context=self._context())
        return smtplib.SMTP(self._host, self._port, timeout=self._timeout_s)
