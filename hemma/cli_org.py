"""`hemma org provider add|list`, `hemma org unit add|list` (care.organisations) and `hemma share
grant|revoke|list|block|unblock` (care.sharing): organisations and shared care at the command line, the
same commands as the dashboard's /admin/organisations page and the record's "Delad vård" section.

Organisations are the operator's (no `--by`: the OS user is named in the log); grants and blocks are a
nurse's or physician's (`--by`). Refusals print care.texts_en's English by code (hemma.cli). Imports
are lazy: the parser is built on the standard library.
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
    sub: argparse._SubParsersAction[argparse.ArgumentParser], patient_id: Callable[[str], uuid.UUID]
) -> None:
    p = sub.add_parser("org", help="care providers and care units (organisations staff belong to)")
    osub = p.add_subparsers(dest="what", required=True)
    pr = osub.add_parser("provider", help="care providers: the region, primary care, a municipality")
    prsub = pr.add_subparsers(dest="action", required=True)
    a = prsub.add_parser("add", help="add a care provider")
    a.add_argument("provider_id", help="id: 2-63 characters a-z, 0-9 and -")
    a.add_argument("--name", required=True)
    a.add_argument("--kind", required=True, choices=["region", "primary_care", "municipality", "private"])
    a.add_argument("--hsa-id", help="the provider's HSA-id, e.g. SE2120001124-1234")
    a.set_defaults(func=provider_add)
    prsub.add_parser("list", help="every care provider").set_defaults(func=provider_list)
    un = osub.add_parser("unit", help="care units of a provider")
    unsub = un.add_subparsers(dest="action", required=True)
    a = unsub.add_parser("add", help="add a care unit")
    a.add_argument("unit_id", help="id: 2-63 characters a-z, 0-9 and -")
    a.add_argument("--provider", required=True, help="care provider id")
    a.add_argument("--name", required=True)
    a.add_argument("--hsa-id", help="the unit's HSA-id")
    a.set_defaults(func=unit_add)
    unsub.add_parser("list", help="every care unit").set_defaults(func=unit_list)
    wa = osub.add_parser("ward", help="which care unit (and so care provider) a ward belongs to")
    wasub = wa.add_subparsers(dest="action", required=True)
    a = wasub.add_parser("set-unit", help="move a ward to a care unit")
    a.add_argument("ward_id")
    a.add_argument("--unit", required=True, help="care unit id")
    a.set_defaults(func=ward_set_unit)
    wasub.add_parser("list", help="every ward with its care unit").set_defaults(func=ward_list)

    p = sub.add_parser("share", help="a partner's time-boxed access to one patient, and the patient's block")
    ssub = p.add_subparsers(dest="action", required=True)
    g = ssub.add_parser("grant", help="give a partner account access to a patient (consent recorded)")
    g.add_argument("--patient", required=True, type=patient_id, help="patient id (uuid)")
    g.add_argument("--partner", required=True, help="username of the partner account")
    g.add_argument("--purpose", required=True, choices=["read", "read_contact", "home_visit"])
    period = g.add_mutually_exclusive_group()
    period.add_argument("--days", type=int, help="1-90 days from now (default 14)")
    period.add_argument("--until", type=_aware, help="end, ISO 8601 with offset, within 90 days")
    g.add_argument("--consent-by", required=True, choices=["patient", "representative"])
    g.add_argument("--consent-note", help="how the consent was given")
    g.add_argument("--note", help="why (the purpose in words)")
    g.add_argument("--by", required=True, help="username of the nurse or physician")
    g.set_defaults(func=share_grant)
    r = ssub.add_parser("revoke", help="end a grant now")
    r.add_argument("grant_id", type=int)
    r.add_argument("--reason")
    r.add_argument("--by", required=True)
    r.set_defaults(func=share_revoke)
    ls = ssub.add_parser("list", help="a patient's grants and blocks (logged as a read)")
    ls.add_argument("--patient", required=True, type=patient_id)
    ls.add_argument("--by", required=True)
    ls.set_defaults(func=share_list)
    b = ssub.add_parser("block", help="the patient's block (spärr) against a provider or all others")
    b.add_argument("--patient", required=True, type=patient_id)
    b.add_argument("--provider", help="care provider id (omit for every other provider)")
    b.add_argument("--note")
    b.add_argument("--by", required=True)
    b.set_defaults(func=share_block)
    u = ssub.add_parser("unblock", help="lift a block")
    u.add_argument("block_id", type=int)
    u.add_argument("--by", required=True)
    u.set_defaults(func=share_unblock)


def _aware(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("use ISO 8601 with an offset, e.g. 2026-12-20T16:00+01:00") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError("give the time's offset, e.g. 2026-12-20T16:00+01:00")
    return at


def provider_add(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.organisations import add_provider

    with cli_care._connect() as conn:
        done = execute(conn, add_provider(provider_id=args.provider_id, name=args.name, kind=args.kind,
                                          hsa_id=args.hsa_id, origin=cli_care._cli_origin()))  # fmt: skip
    print(f"care provider {done.id} added ({done.kind})")
    return 0


def provider_list(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.organisations import providers

    with cli_care._connect() as conn:
        for p in execute(conn, providers()):
            print(f"{p.id}\t{p.kind}\t{p.hsa_id or '-'}\t{p.name}")
    return 0


def unit_add(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.organisations import add_unit

    with cli_care._connect() as conn:
        done = execute(conn, add_unit(unit_id=args.unit_id, provider_id=args.provider, name=args.name,
                                      hsa_id=args.hsa_id, origin=cli_care._cli_origin()))  # fmt: skip
    print(f"care unit {done.id} added to {done.provider_id}")
    return 0


def unit_list(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.organisations import units

    with cli_care._connect() as conn:
        for u in execute(conn, units()):
            print(f"{u.id}\t{u.provider_id}\t{u.hsa_id or '-'}\t{u.name}")
    return 0


def ward_set_unit(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.organisations import set_ward_unit

    with cli_care._connect() as conn:
        done = execute(
            conn, set_ward_unit(ward_id=args.ward_id, unit_id=args.unit, origin=cli_care._cli_origin())
        )
    print(f"ward {done.ward_id} belongs to care unit {done.unit_id}")
    return 0


def ward_list(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.organisations import ward_units

    with cli_care._connect() as conn:
        for w in execute(conn, ward_units()):
            print(f"{w.ward_id}\t{w.unit_id}\t{w.ward_name}")
    return 0


def share_grant(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.sharing import DEFAULT_DAYS, grant_partner_access

    days = args.days if args.days is not None or args.until is not None else DEFAULT_DAYS
    with cli_care._connect() as conn:
        done = execute(conn, grant_partner_access(
            patient_id=args.patient, partner=args.partner, purpose=args.purpose, days=days, until=args.until,
            consent_by=args.consent_by, consent_note=args.consent_note, purpose_note=args.note, by=args.by,
            origin=cli_care._cli_origin(),
        ))  # fmt: skip
    print(
        f"grant {done.id}: {done.partner} ({done.provider_id}) {done.purpose}"
        f" until {done.valid_until.isoformat()}"
    )
    return 0


def share_revoke(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.sharing import revoke_partner_access

    with cli_care._connect() as conn:
        execute(conn, revoke_partner_access(grant_id=args.grant_id, reason=args.reason, by=args.by,
                                            origin=cli_care._cli_origin()))  # fmt: skip
    print(f"grant {args.grant_id} revoked")
    return 0


def share_list(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.sharing import sharing_of

    with cli_care._connect() as conn:
        grants, blocks = execute(
            conn, sharing_of(patient_id=args.patient, by=args.by, origin=cli_care._cli_origin())
        )
    for g in grants:
        state = "in force" if g.in_force else "revoked" if g.revoked_at else "not in force"
        print(f"grant {g.id}\t{g.partner}\t{g.provider_id}\t{g.purpose}\t{g.valid_from.isoformat()}"
              f" - {g.valid_until.isoformat()}\t{state}")  # fmt: skip
    for b in blocks:
        print(
            f"block {b.id}\t{b.provider_id or 'all'}\t{b.recorded_at.isoformat()}"
            f"\t{'lifted' if b.lifted_at else 'in force'}"
        )
    return 0


def share_block(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.sharing import record_block

    with cli_care._connect() as conn:
        done = execute(conn, record_block(patient_id=args.patient, provider_id=args.provider, note=args.note,
                                          by=args.by, origin=cli_care._cli_origin()))  # fmt: skip
    print(
        f"block {done.id} against {done.provider_id or 'every other provider'};"
        f" {done.grants_voided} grant(s) void"
    )
    return 0


def share_unblock(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.sharing import lift_block

    with cli_care._connect() as conn:
        execute(conn, lift_block(block_id=args.block_id, by=args.by, origin=cli_care._cli_origin()))
    print(f"block {args.block_id} lifted")
    return 0
