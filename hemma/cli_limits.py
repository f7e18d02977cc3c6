"""`hemma limits replay`: try a personal limit or SpO2 scale on a patient's stored readings (issue 11).

    hemma limits replay PATIENT --rule spo2_low --priority high --limit 85 [--period 7d] --by USER
    hemma limits replay PATIENT --spo2-scale 2 --by USER [--json]

The same decision as the record's "Pröva gränsen" (care.limit_replay): the engine's own kernels over the
stored readings, the limits in force beside the proposal, one access-log row; nothing is saved (`hemma
threshold set` and `hemma order spo2-scale` save). Imports are lazy (hemma.cli).
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import TYPE_CHECKING

from hemma import cli_care

if TYPE_CHECKING:
    from collections.abc import Callable


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], patient_id: Callable[[str], uuid.UUID]
) -> None:
    p = sub.add_parser("limits", help="try alert limits before setting them")
    lsub = p.add_subparsers(dest="action", required=True)
    r = lsub.add_parser(
        "replay", help="what a proposed limit or SpO2 scale would have done to the patient's alerts"
    )
    r.add_argument("patient", type=patient_id, help="patient id (uuid)")
    r.add_argument("--rule", help="threshold rule key, e.g. spo2_low")
    r.add_argument("--priority", choices=["high", "medium", "low"])
    r.add_argument("--limit", type=float, help="in the vital's canonical unit")
    r.add_argument("--spo2-scale", type=int, choices=[1, 2], help="try NEWS2 SpO2 scale 1 or 2")
    r.add_argument("--period", default="7d", choices=["24h", "7d", "14d"], help="default 7d")
    r.add_argument("--by", required=True, help="username of the nurse or physician")
    r.add_argument("--json", action="store_true", help="print the outcome as JSON")
    r.set_defaults(func=limits_replay)


def limits_replay(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.limit_replay import Proposal, key_summary_sv, outcome_json, replay_limit
    from core.settings import get_settings

    limits = {args.priority: args.limit} if args.priority is not None and args.limit is not None else {}
    proposal = Proposal(args.rule, limits, args.spo2_scale)
    with cli_care._connect() as conn:
        outcome = execute(conn, replay_limit(patient_id=args.patient, by=args.by, proposal=proposal,
                                             period=args.period, origin=cli_care._cli_origin()))  # fmt: skip
    zone = get_settings().site_zone()
    if args.json:
        print(json.dumps(outcome_json(outcome, zone), ensure_ascii=False, indent=2))
        return 0
    for key in outcome.keys:
        print(key_summary_sv(key, outcome.period, zone))
    print(f"({outcome.readings} stored readings replayed with the engine's rules; nothing was saved)")
    return 0
