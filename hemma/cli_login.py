"""`hemma staff sessions | logout | totp-reset` (issue 12): an account's logins seen and ended from
the command line, as the admin's staff page does (care.staff_sessions, care.two_factor), run as the
CLI's operator (the OS user, in the access log). Imports are lazy, as in hemma.cli_care."""

from __future__ import annotations

import argparse

from hemma.cli_care import _cli_origin, _connect


def staff_sessions(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.staff_sessions import live_sessions_of

    with _connect() as conn:
        sessions = execute(conn, live_sessions_of(args.username, by=None))
    if not sessions:
        print(f"{args.username} has no live session")
        return 0
    print(f"{'id':>8}  {'started (UTC)':<20} {'last seen (UTC)':<20} {'address':<40} method")
    for s in sessions:
        started = s.started_at.astimezone(tz=None).strftime("%Y-%m-%d %H:%M:%S")
        seen = s.last_seen_at.astimezone(tz=None).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{s.id:>8}  {started:<20} {seen:<20} {s.client_address or '-':<40} {s.method}")
    return 0


def staff_logout(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.staff_sessions import end_sessions

    with _connect() as conn:
        ended = execute(conn, end_sessions(username=args.username, by=None, origin=_cli_origin(),
                                           session_id=args.session))  # fmt: skip
    print(f"{ended} session(s) of {args.username} ended; their pages and live updates stop at once")
    return 0


def staff_totp_reset(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.two_factor import reset_two_factor

    with _connect() as conn:
        had = execute(conn, reset_two_factor(username=args.username, by=None, origin=_cli_origin()))
    done = "two-factor removed" if had else "had no two-factor"
    print(f"{args.username}: {done}; their sessions have ended")
    return 0


def add_commands(ssub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The three subcommands under `hemma staff`."""
    s = ssub.add_parser("sessions", help="list an account's live dashboard sessions")
    s.add_argument("username")
    s.set_defaults(func=staff_sessions)
    lo = ssub.add_parser("logout", help="end an account's sessions at once (all, or --session ID)")
    lo.add_argument("username")
    lo.add_argument("--session", type=int, help="end only this session (its id from `hemma staff sessions`)")
    lo.set_defaults(func=staff_logout)
    t = ssub.add_parser(
        "totp-reset", help="remove an account's TOTP two-factor (lost phone); ends its sessions"
    )
    t.add_argument("username")
    t.set_defaults(func=staff_totp_reset)
