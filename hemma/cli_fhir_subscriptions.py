"""`hemma fhir subscription`: the operator's side of FHIR push (issue 12, fhir_api.subscriptions).

    hemma fhir subscription add --client ID --criteria 'Flag?status=active' --endpoint URL
                                [--reason TEXT] [--secret-file FILE]
    hemma fhir subscription list [--client ID]
    hemma fhir subscription off ID
    hemma fhir subscription on ID      (resume one in error, from where it stopped)

`add` checks the subscription as `POST /fhir/Subscription` does (one checker); without
--secret-file it makes a signing secret and prints it once, for the receiver to verify
X-Hemma-Signature with. Each change is logged as the operator's (the OS user). Imports are lazy.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from hemma import cli_care


def add_commands(fsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = fsub.add_parser("subscription", help="push to a system: FHIR Subscriptions (rest-hook)")
    ssub = s.add_subparsers(dest="subscription_action", required=True)
    a = ssub.add_parser("add", help="subscribe a system client to changes")
    a.add_argument("--client", required=True, help="the system client that receives (its reach applies)")
    a.add_argument("--criteria", required=True, help="e.g. 'Flag?status=active'")
    a.add_argument("--endpoint", required=True, help="https URL (http only to this machine)")
    a.add_argument("--reason", default="Push från Hemma")
    a.add_argument("--secret-file", type=Path, help="the HMAC secret (default: a new one, printed once)")
    a.set_defaults(func=subscription_add)
    lst = ssub.add_parser("list", help="subscriptions, their status and deliveries")
    lst.add_argument("--client")
    lst.set_defaults(func=subscription_list)
    for status, text in (("off", "stop pushing"), ("on", "resume a subscription (after an error)")):
        p = ssub.add_parser(status, help=text)
        p.add_argument("subscription_id")
        p.set_defaults(func=subscription_status, status="active" if status == "on" else "off")


def subscription_add(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from care.acting import execute
    from core.settings import get_settings
    from fhir_api import subscriptions
    from fhir_api.search import Refusal

    printed = args.secret_file is None
    secret = secrets.token_urlsafe(32) if printed else args.secret_file.read_text(encoding="utf-8").strip()
    body = subscriptions.request_body(args.criteria, args.endpoint, secret, args.reason)
    try:
        new = subscriptions.checked_request(body, get_settings().site_zone())
        with cli_care._connect() as conn:
            stored = execute(
                conn,
                subscriptions.create(
                    new, client_id=args.client, now=datetime.now(UTC), origin=cli_care._cli_origin(),
                    by_operator=True,
                ),
            )  # fmt: skip
    except Refusal as refusal:
        print(f"hemma: {refusal.text}", file=sys.stderr)
        return 2
    print(f"subscription {stored.id} for {stored.client_id}: {stored.criteria} -> {stored.endpoint}")
    if printed:
        print(f"signing secret (shown once): {secret}")
    return 0


def subscription_list(args: argparse.Namespace) -> int:
    from care.acting import execute
    from fhir_api import subscriptions

    with cli_care._connect() as conn:
        found = execute(conn, subscriptions.find_own(args.client))
    for s in found:
        last = s.last_delivered_at.isoformat(timespec="seconds") if s.last_delivered_at else "-"
        error = f"\terror: {s.last_error}" if s.last_error else ""
        print(f"{s.id}\t{s.client_id}\t{s.status}\t{s.criteria}\t{s.endpoint}\tevents {s.events_delivered}"
              f"\tlast delivered {last}\tfailures {s.failures}{error}")  # fmt: skip
    return 0


def subscription_status(args: argparse.Namespace) -> int:
    from care.acting import execute
    from fhir_api import subscriptions

    with cli_care._connect() as conn:
        stored = execute(
            conn,
            subscriptions.set_status(
                args.subscription_id, args.status, client_id=None, origin=cli_care._cli_origin()
            ),
        )
    if stored is None:
        print(f"hemma: no subscription {args.subscription_id}", file=sys.stderr)
        return 2
    print(f"subscription {stored.id}: {stored.status}")
    return 0
