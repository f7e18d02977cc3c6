"""`hemma patient admit` and `hemma ward criteria`: admission (care.admission) from the command line.

* `patient admit --ward W --name N --personal-number YYYYMMDD-NNNN --reason R --pathway P --kit K
  --confirmed all|1,2,... [--override-reason ...] [--level red|yellow|green --level-reason ...] --by U`:
  the same command as the dashboard's admission page;
* `ward criteria W` shows the ward's inclusion checklist, numbered as `--confirmed` counts it;
  `ward criteria W --set ITEM --set ITEM ... --by PHYSICIAN` replaces it.

Imports are lazy (hemma.cli): the parser is built on the standard library alone.
"""

from __future__ import annotations

import argparse

from hemma import cli_care


def add_patient_commands(psub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Under `hemma patient`."""
    a = psub.add_parser("admit", help="admit a patient on a pathway, with the ward's checklist and a kit")
    a.add_argument("--ward", required=True)
    a.add_argument("--name", required=True)
    a.add_argument("--personal-number", required=True, help="12 digits, YYYYMMDD-NNNN (or samordningsnummer)")
    a.add_argument("--reason", required=True, help="diagnosis or care reason (3 to 200 characters)")
    a.add_argument("--pathway", required=True, help="hjartsvikt, kol, infektion-iv-antibiotika, ...")
    a.add_argument("--kit", required=True, help="a free kit (gateway id)")
    a.add_argument(
        "--confirmed", required=True, help="the checklist items confirmed: 'all', or their numbers 1,2,..."
    )
    a.add_argument("--override-reason", help="a physician admitting over unconfirmed items: why")
    a.add_argument("--level", help="red, yellow or green (physicians; nurses leave it to a physician)")
    a.add_argument("--level-reason", help="why this level (default: the pathway, at admission)")
    a.add_argument("--by", required=True, help="username of the nurse or physician")
    a.set_defaults(func=patient_admit)


def add_ward_commands(wsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Under `hemma ward`."""
    c = wsub.add_parser("criteria", help="show, or (physicians) replace, the ward's inclusion checklist")
    c.add_argument("ward_id")
    c.add_argument("--set", action="append", metavar="ITEM", help="an item, in order (repeat)")
    c.add_argument("--by", help="username of the physician (with --set)")
    c.set_defaults(func=ward_criteria)


def _confirmed(text: str, items: list[str]) -> list[str]:
    if text.strip().lower() == "all":
        return list(items)
    try:
        numbers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit("hemma patient admit: --confirmed is 'all' or item numbers, e.g. 1,2,4") from None
    if any(not 1 <= n <= len(items) for n in numbers):
        raise SystemExit(f"hemma patient admit: the ward's checklist has items 1 to {len(items)}")
    return [items[n - 1] for n in numbers]


def patient_admit(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.admission import admit
    from care.inclusion import criteria

    with cli_care._connect() as conn:
        items = execute(conn, criteria(args.ward))
        done = execute(conn, admit(
            ward_id=args.ward, display_name=args.name, personal_number=args.personal_number,
            care_reason=args.reason, pathway_id=args.pathway, gateway_id=args.kit,
            confirmed=_confirmed(args.confirmed, items), override_reason=args.override_reason,
            level=args.level, level_reason=args.level_reason, by=args.by, origin=cli_care._cli_origin(),
        ))  # fmt: skip
    level = done.level.value if done.level else f"none yet (plan as {done.provisional_level})"
    plan = ", ".join(f"{vital.value} every {minutes} min" for vital, minutes in done.plan)
    print(f"patient {done.patient_id} admitted on {done.ward_id} ({done.pathway}) with kit {done.gateway_id}")
    print(f"care level: {level}; plan: {plan}")
    return 0


def ward_criteria(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.inclusion import criteria, set_criteria

    with cli_care._connect() as conn:
        if args.set:
            if not args.by:
                raise SystemExit("hemma ward criteria: --set needs --by (a physician of the ward)")
            execute(conn, set_criteria(ward_id=args.ward_id, items=args.set, by=args.by))
        items = execute(conn, criteria(args.ward_id))
    for number, item in enumerate(items, start=1):
        print(f"{number}. {item}")
    return 0
