"""`hemma patient summary PATIENT [--html FILE]`: the end-of-stay summary (care.stay_summary) from the
command line: plain text on the terminal (names only, no personnummer, as `hemma ward handover`), or
the printable document (dashboard.stay_summary_document, the page the record links to) written to FILE.
One access-log row (`stay_summary`, context `cli` or `cli html`) as the operator, the OS user who ran it.
Imports are lazy (hemma.cli): the parser is built on the standard library alone.
"""

from __future__ import annotations

import argparse
import uuid
from typing import TYPE_CHECKING

from hemma import cli_care

if TYPE_CHECKING:
    from collections.abc import Callable


def add_commands(
    psub: argparse._SubParsersAction[argparse.ArgumentParser], patient_id: Callable[[str], uuid.UUID]
) -> None:
    """Under `hemma patient`."""
    s = psub.add_parser("summary", help="the summary of the patient's stay (preliminary while admitted)")
    s.add_argument("patient", type=patient_id, help="patient id (uuid)")
    s.add_argument("--html", metavar="FILE", help="write the printable document (A4 HTML) to FILE instead")
    s.set_defaults(func=patient_summary)


def patient_summary(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime
    from pathlib import Path

    from care import access_log
    from care.acting import execute
    from care.stay_summary import stay_summary
    from care.stay_summary_text import plain_text
    from core.settings import get_settings

    zone = get_settings().site_zone()
    origin = cli_care._cli_origin()
    with cli_care._connect() as conn, conn.transaction():
        summary = execute(conn, stay_summary(args.patient))
        access_log.write(conn, [access_log.AccessRecord(
            staff_user_id=None, username=access_log.OPERATOR, patient_id=args.patient,
            action=access_log.STAY_SUMMARY, context="cli html" if args.html else "cli",
            entry_point=origin.entry_point, os_user=origin.os_user,
        )])  # fmt: skip
    if not args.html:
        print(plain_text(summary, zone))
        return 0
    from dashboard.stay_summary_document import render_document

    html = render_document(summary, zone=zone, printed_at=datetime.now(UTC), reader=origin.os_user or "hemma",
                           embed_stylesheet=True)  # fmt: skip
    Path(args.html).write_text(html, encoding="utf-8")
    print(f"wrote the summary of patient {args.patient}'s stay to {args.html}")
    return 0
