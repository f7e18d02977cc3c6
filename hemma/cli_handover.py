"""`hemma ward handover WARD [--shift 2026-12-06-natt]`: the shift's handover summary as plain text.

The same summary as the dashboard's page (care.handover, care.shifts), for a printer or a terminal at
the report: patients by acuity, what happened during the shift, open items now. Names only, never a
personnummer. One access-log row per patient shown, as the operator (the OS user who ran it).

Imports are lazy (hemma.cli): the parser is built on the standard library alone.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from hemma import cli_care

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from care.handover import Handover


def add_commands(wsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Under `hemma ward`."""
    h = wsub.add_parser("handover", help="the shift's handover summary (plain text, names only)")
    h.add_argument("ward_id")
    h.add_argument(
        "--shift",
        help="a shift that has begun, e.g. 2026-12-06-natt (dag 07-15, kvall 15-21, natt 21-07 local);"
        " default the current one",
    )
    h.set_defaults(func=ward_handover)


def ward_handover(args: argparse.Namespace) -> int:
    from care import access_log
    from care.acting import execute
    from care.handover import handover
    from care.shifts import current_shift, parse_shift
    from core.settings import get_settings

    zone = get_settings().site_zone()
    origin = cli_care._cli_origin()
    with cli_care._connect() as conn:
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        shift = parse_shift(args.shift, now, zone) if args.shift else current_shift(now, zone)
        with conn.transaction():
            summary = execute(conn, handover(args.ward_id, shift, now))
            access_log.write(conn, (
                access_log.AccessRecord(
                    staff_user_id=None, username=access_log.OPERATOR, patient_id=pid,
                    action=access_log.HANDOVER, context=f"ward:{args.ward_id} shift:{shift.name} cli",
                    entry_point=origin.entry_point, os_user=origin.os_user,
                ) for pid in summary.patient_ids
            ))  # fmt: skip
    print(plain_text(summary, zone))
    return 0


def plain_text(summary: Handover, zone: ZoneInfo) -> str:
    """The summary as lines of text: a heading per patient, then its events in order."""
    until = summary.until.astimezone(zone)
    lines = [f"Överlämning {summary.ward_id}: {summary.shift.label_sv(zone)} (t.o.m. {until:%H:%M})", ""]
    if not summary.patients:
        lines.append("Inget nytt under skiftet och inget som väntar.")
    for p in summary.patients:
        counts = (
            (p.open_high_alerts, "öppna höga larm"),
            (p.open_requests, "öppna kontaktförfrågningar"),
            (p.unread_messages, "olästa meddelanden"),
        )
        now = [f"{count} {word}" for count, word in counts if count]
        state = " · ".join((["utskriven"] if p.discharged else []) + now)
        lines.append(f"{p.name} [{p.level.word_sv}]" + (f" – {state}" if state else ""))
        for e in p.events:
            by = f" – {e.by}" if e.by else ""
            lines.append(f"  {e.at.astimezone(zone):%H:%M} {e.text}{by}")
            if e.note:
                lines.append(f"        »{e.note}«")
        lines.append("")
    return "\n".join(lines).rstrip()
