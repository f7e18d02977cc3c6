"""`hemma ward ladder`: the ward's escalation ladder across care providers (care.escalation_ladder).

* `ward ladder show W` prints the ladder in force, one step a line, and the ward's phone;
* `ward ladder set W --step home_visit_partner:10 --step ward_physician=karin.ek:10 --step on_call:10
  [--phone "040-33 10 00"] --by PHYSICIAN` replaces it (the same command as the dashboard's
  /wards/W/eskalering; audited with the OS user); `set W --by PHYSICIAN` with no step removes it, and
  the ward's alerts go to the on-call rota alone, as before.

Imports are lazy (hemma.cli): the parser is built on the standard library alone.
"""

from __future__ import annotations

import argparse

from hemma import cli_care


def add_ward_commands(wsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Under `hemma ward`."""
    p = wsub.add_parser("ladder", help="the ward's escalation ladder: municipal nurse, physicians, on call")
    lsub = p.add_subparsers(dest="ladder_action", required=True)
    s = lsub.add_parser("show", help="the ladder in force")
    s.add_argument("ward_id")
    s.set_defaults(func=ladder_show)
    t = lsub.add_parser("set", help="replace the ladder (physicians of the ward); no --step removes it")
    t.add_argument("ward_id")
    t.add_argument(
        "--step", action="append", default=[], metavar="TARGET[=USER]:MINUTES",
        help="home_visit_partner:10, ward_physician[=USERNAME]:10 or on_call:10, in order (repeat)",
    )  # fmt: skip
    t.add_argument("--phone", help="the ward's phone number, shown to the receivers")
    t.add_argument("--by", required=True, help="username of the physician")
    t.set_defaults(func=ladder_set)


def _print(ladder: object) -> None:
    from care.escalation_ladder import Ladder

    if not isinstance(ladder, Ladder) or not ladder.steps:
        print("no ladder: high alerts escalate to the on-call rota (levels 1-3)")
    else:
        for step in ladder.steps:
            who = step.target.value + (f"={step.physician_name}" if step.physician_name else "")
            print(f"{step.position}. {who}: {step.minutes} min")
    if isinstance(ladder, Ladder):
        print(
            f"phone: {ladder.ward_phone or '-'}; set by {ladder.set_by} at {ladder.set_at:%Y-%m-%d %H:%M %Z}"
        )


def ladder_show(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.escalation_ladder import ladder

    with cli_care._connect() as conn:
        _print(execute(conn, ladder(args.ward_id)))
    return 0


def ladder_set(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.escalation_ladder import parse_step, set_ladder

    steps = [parse_step(text) for text in args.step]
    with cli_care._connect() as conn:
        done = execute(conn, set_ladder(ward_id=args.ward_id, steps=steps, phone=args.phone, by=args.by,
                                        origin=cli_care._cli_origin()))  # fmt: skip
    _print(done)
    return 0
