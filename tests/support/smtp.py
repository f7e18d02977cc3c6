"""A real SMTP server for tests: aiosmtpd's handler that keeps what it receives."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session


class Mailbox:
    """aiosmtpd handler: keeps what it receives; `refuse_rcpt` makes it refuse recipients with that reply."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse_rcpt: str | None = None

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(e.original_content or b"", policy=email.policy.default)  # type: ignore[misc]
            for e in self.envelopes
        ]
