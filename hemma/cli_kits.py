"""`hemma kit lend|take-back|cleaned|stock|list|register`: lending kits over a bounded time and their
stock state (care.kit_assignments, care.kit_states), the same commands as the dashboard's /kits page.

Refusals print care.texts_en's English by code (hemma.cli); the dashboard shows care.texts_sv's
Swedish for the same code. Imports are lazy (hemma.cli): the parser is built on the standard library.
"""

from __future__ import annotations

import argparse
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from hemma import cli_care

if TYPE_CHECKING:
    from collections.abc import Callable


def add_commands(
    ksub: argparse._SubParsersAction[argparse.ArgumentParser], patient_id: Callable[[str], uuid.UUID]
) -> None:
    """Under `hemma kit`."""
    k = ksub.add_parser("lend", help="lend a kit (in stock or cleaned) to a patient (nurses, physicians)")
    k.add_argument("gateway_id")
    k.add_argument("--patient", required=True, type=patient_id, help="patient id (uuid)")
    k.add_argument("--since", type=_aware, help="when the patient got it, if recorded late (within 7 days)")
    k.add_argument("--by", required=True, help="username of the nurse or physician")
    k.set_defaults(func=kit_lend)
    k = ksub.add_parser("take-back", help="take a kit back from its patient now: it is returned, to clean")
    k.add_argument("gateway_id")
    k.add_argument("--by", required=True, help="username of the nurse or physician")
    k.set_defaults(func=kit_take_back)
    k = ksub.add_parser("cleaned", help="a returned kit has been cleaned: it may be lent again")
    k.add_argument("gateway_id")
    k.add_argument("--by", required=True, help="username of the nurse, physician or IT admin")
    k.set_defaults(func=kit_cleaned)
    k = ksub.add_parser("stock", help="a cleaned kit goes back in stock")
    k.add_argument("gateway_id")
    k.add_argument("--by", required=True, help="username of the nurse, physician or IT admin")
    k.set_defaults(func=kit_stock)
    k = ksub.add_parser("register", help="a new kit joins the stock")
    k.add_argument("gateway_id")
    k.add_argument("--by", required=True, help="username of the nurse, physician or IT admin")
    k.set_defaults(func=kit_register)
    k = ksub.add_parser("list", help="the kits you may see: state, since when, and who holds it")
    k.add_argument("--by", required=True, help="your username (patients are named for your wards only)")
    k.set_defaults(func=kit_list)


def _aware(text: str) -> datetime:
    """An ISO 8601 time with its offset, e.g. 2026-03-02T08:00+01:00 (a time without one is ambiguous)."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("use ISO 8601 with an offset, e.g. 2026-03-02T08:00+01:00") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError("give the time's offset, e.g. 2026-03-02T08:00+01:00")
    return at


def kit_lend(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.kit_assignments import lend

    with cli_care._connect() as conn:
        done = execute(conn, lend(gateway_id=args.gateway_id, patient_id=args.patient, by=args.by,
                                  origin=cli_care._cli_origin(), starts_at=args.since))  # fmt: skip
    print(f"kit {done.gateway_id} lent to patient {done.patient_id} from {done.starts_at.isoformat()}")
    return 0


def kit_take_back(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.kit_assignments import take_back

    with cli_care._connect() as conn:
        done = execute(conn, take_back(gateway_id=args.gateway_id, by=args.by, origin=cli_care._cli_origin()))
    print(f"kit {done.gateway_id} taken back from patient {done.patient_id} at {done.ends_at.isoformat()};"
          " returned, to be cleaned")  # fmt: skip
    return 0


def _stock(args: argparse.Namespace, command: str) -> int:
    from care import kit_assignments
    from care.acting import execute

    steps = getattr(kit_assignments, command)(gateway_id=args.gateway_id, by=args.by)
    with cli_care._connect() as conn:
        done = execute(conn, steps)
    print(f"kit {done.gateway_id}: {done.state.value}")
    return 0


def kit_cleaned(args: argparse.Namespace) -> int:
    return _stock(args, "mark_cleaned")


def kit_stock(args: argparse.Namespace) -> int:
    return _stock(args, "back_in_stock")


def kit_register(args: argparse.Namespace) -> int:
    return _stock(args, "register_kit")


def kit_list(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.kit_assignments import list_kits

    with cli_care._connect() as conn:
        kits = execute(conn, list_kits(by=args.by, origin=cli_care._cli_origin()))
    for kit in kits:
        holder = kit.holder
        # Patient ids only (a terminal or CI transcript must not carry names); the ward hides none.
        who = f"patient {holder.patient_id or '(another ward)'}" if holder else "-"
        print(f"{kit.gateway_id}\t{kit.state.value}\tsince {kit.state_since:%Y-%m-%d %H:%M}\t{who}")
    return 0
