"""`hemma patient level|review`: the care level and reviews (care.care_levels), from the command line.

* `patient level PATIENT red|yellow|green --reason ... --by PHYSICIAN`: the same command as the
  record's care level form (physicians only);
* `patient review PATIENT [--note ...] --by USER`: "granskad", as the record's review form.

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
    p = psub.add_parser("level", help="set the patient's care level (physicians): how often to review")
    p.add_argument("patient", type=patient_id, help="patient id (uuid)")
    p.add_argument("level", help="red (every 8 h), yellow (24 h) or green (72 h)")
    p.add_argument("--reason", required=True, help="why this level (3 to 300 characters)")
    p.add_argument("--by", required=True, help="username of the physician")
    p.set_defaults(func=patient_level)
    r = psub.add_parser("review", help="mark the patient reviewed (granskad), with an optional note")
    r.add_argument("patient", type=patient_id, help="patient id (uuid)")
    r.add_argument("--note", help="what the review found (at most 500 characters)")
    r.add_argument("--by", required=True, help="username of the nurse or physician")
    r.set_defaults(func=patient_review)


def patient_level(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.care_levels import LEVELS, set_level

    with cli_care._connect() as conn:
        done = execute(conn, set_level(patient_id=args.patient, level=args.level, reason=args.reason,
                                       by=args.by, origin=cli_care._cli_origin()))  # fmt: skip
    every = LEVELS[done.level].review_every
    print(f"care level {done.level.value} set for patient {done.patient_id}; review every {every}")
    return 0


def patient_review(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.care_levels import review

    with cli_care._connect() as conn:
        done = execute(conn, review(patient_id=args.patient, note=args.note, by=args.by,
                                    origin=cli_care._cli_origin()))  # fmt: skip
    print(f"patient {done.patient_id} reviewed at {done.reviewed_at.isoformat()}")
    return 0
