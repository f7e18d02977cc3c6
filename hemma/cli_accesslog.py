"""`hemma accesslog seal [--verify]` and `hemma accesslog check [--from DAY] [--to DAY]`: the access
log's daily hash chain (care.access_log_seals, migration 0022). Run by the deploy timer as the
services' database role (deploy/README.md, "Access log seals"). Imports are lazy, as in hemma.cli_care.

Exit codes: 0 all well; 1 a difference (the first day and row id named on stderr) or a row added to a
sealed day; 2 a refused command (hemma.cli).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

from hemma.cli_care import _connect


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a day (YYYY-MM-DD, UTC): {text!r}") from exc


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("accesslog", help="the access log's daily hash chain: seal and check")
    asub = p.add_subparsers(dest="action", required=True)
    s = asub.add_parser(
        "seal", help="seal every complete (UTC) day not yet sealed; safe to run twice at once"
    )
    s.add_argument("--verify", action="store_true", help="then check every sealed day (as `check`)")
    s.set_defaults(func=seal)
    c = asub.add_parser("check", help="recompute the sealed days and name the first row that differs")
    c.add_argument("--from", dest="from_day", type=_day, help="first UTC day (default: the first sealed)")
    c.add_argument("--to", dest="to_day", type=_day, help="last UTC day (default: the last sealed)")
    c.set_defaults(func=check)


def seal(args: argparse.Namespace) -> int:
    from care import access_log_seals

    with _connect() as conn:
        report = access_log_seals.seal(conn)
        for day in report.sealed:
            print(f"sealed {day.isoformat()}")
        if not report.sealed:
            print(
                "nothing to seal"
                + (f": sealed through {report.through.isoformat()}" if report.through else "")
            )
        for added in report.added:
            print(f"hemma: {added.describe()}", file=sys.stderr)
        status = 1 if report.added else 0
        if args.verify:
            status = max(status, _report_check(access_log_seals.check(conn)))
    return status


def check(args: argparse.Namespace) -> int:
    from care import access_log_seals

    if args.from_day and args.to_day and args.from_day > args.to_day:
        raise ValueError("--from is after --to")
    with _connect() as conn:
        return _report_check(access_log_seals.check(conn, from_day=args.from_day, to_day=args.to_day))


def _report_check(report: object) -> int:
    from care.access_log_seals import CheckReport

    assert isinstance(report, CheckReport)
    if report.difference is not None:
        print(f"hemma: access log check failed: {report.difference.describe()}", file=sys.stderr)
        return 1
    through = report.intact_through.isoformat() if report.intact_through else "-"
    start = f" from {report.from_day.isoformat()}" if report.from_day else ""
    print(f"access log intact: {report.days} sealed days checked{start}, through {through}")
    return 0
