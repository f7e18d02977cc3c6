"""`hemma fhir`: the system clients of the FHIR API and an access token for an operator (issue 12).

    hemma fhir client add ID --name NAME --provider PROVIDER (--public-key PEM | --jwks FILE)
                             --scope system/Observation.rs ... [--ward WARD ...]
    hemma fhir client disable ID
    hemma fhir client enable ID
    hemma fhir client list
    hemma fhir token --client ID --key PRIVATE.pem [--scope ...] [--url BASE]
    hemma fhir subscription add|list|off|on ...   (hemma.cli_fhir_subscriptions)

`client add` and `disable` run fhir_api.clients (the operator's change, logged with the OS user);
`token` does what a region's system does: signs a client assertion (RS384 or ES384, five minutes,
a fresh jti) with the client's private key, posts it to the token endpoint and prints the access
token, so an operator can try a query with curl. Imports are lazy (hemma.cli).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hemma import cli_care, cli_fhir_subscriptions


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("fhir", help="FHIR API: system clients (SMART Backend Services) and access tokens")
    fsub = p.add_subparsers(dest="action", required=True)
    c = fsub.add_parser("client", help="the systems that may read FHIR")
    csub = c.add_subparsers(dest="client_action", required=True)
    a = csub.add_parser("add", help="register a system client (or replace its keys, scopes and wards)")
    a.add_argument("client_id")
    a.add_argument("--name", required=True)
    a.add_argument("--provider", required=True, help="its care provider's id (care_providers)")
    keys = a.add_mutually_exclusive_group(required=True)
    keys.add_argument("--public-key", type=Path, help="PEM public key (RSA >= 2048 bits or EC P-384)")
    keys.add_argument("--jwks", type=Path, help="a JWK Set file of public keys")
    a.add_argument("--scope", action="append", default=[], help="e.g. system/Observation.rs (repeat)")
    a.add_argument("--ward", action="append", default=[], help="a ward whose patients it reads (repeat)")
    a.set_defaults(func=client_add)
    d = csub.add_parser("disable", help="shut a client out at once: its tokens stop working")
    d.add_argument("client_id")
    d.set_defaults(func=client_disable)
    e = csub.add_parser("enable", help="let a disabled client ask for tokens again")
    e.add_argument("client_id")
    e.set_defaults(func=client_enable)
    csub.add_parser("list", help="the registered clients").set_defaults(func=client_list)
    t = fsub.add_parser("token", help="sign a client assertion and print an access token")
    t.add_argument("--client", required=True)
    t.add_argument("--key", required=True, type=Path, help="the client's private key (PEM)")
    t.add_argument("--scope", action="append", default=[], help="default: every scope of the client")
    t.add_argument("--url", help="the FHIR base (default: HEMMA_DASHBOARD_URL + /fhir)")
    t.set_defaults(func=token)
    cli_fhir_subscriptions.add_commands(fsub)  # `hemma fhir subscription ...`: push (issue 12)


def client_add(args: argparse.Namespace) -> int:
    from care.acting import execute
    from fhir_api.clients import ClientProblem, jwks_from_pem, register_client

    if args.public_key is not None:
        jwks = jwks_from_pem(args.public_key.read_bytes())
    else:
        try:
            jwks = json.loads(args.jwks.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ClientProblem("--jwks must be a readable JSON file") from exc
    with cli_care._connect() as conn:
        steps = register_client(client_id=args.client_id, name=args.name, provider_id=args.provider,
                                jwks=jwks, scopes=args.scope, wards=args.ward,
                                origin=cli_care._cli_origin())  # fmt: skip
        client = execute(conn, steps)
    scopes, wards = " ".join(client.scopes), ", ".join(client.wards) or "-"
    print(f"system client {client.id} registered: scopes {scopes}; wards {wards}")
    return 0


def client_disable(args: argparse.Namespace) -> int:
    from care.acting import execute
    from fhir_api.clients import disable_client

    with cli_care._connect() as conn:
        found = execute(conn, disable_client(args.client_id, origin=cli_care._cli_origin()))
    if not found:
        print(f"hemma: no system client {args.client_id}", file=sys.stderr)
        return 2
    print(f"system client {args.client_id} disabled; its tokens no longer work")
    return 0


def client_enable(args: argparse.Namespace) -> int:
    from care.acting import execute
    from fhir_api.clients import enable_client

    with cli_care._connect() as conn:
        found = execute(conn, enable_client(args.client_id, origin=cli_care._cli_origin()))
    if not found:
        print(f"hemma: no system client {args.client_id}", file=sys.stderr)
        return 2
    print(f"system client {args.client_id} enabled; it may ask for tokens again")
    return 0


def client_list(args: argparse.Namespace) -> int:
    from care.acting import execute
    from fhir_api.clients import list_clients

    with cli_care._connect() as conn:
        clients = execute(conn, list_clients())
    for c in clients:
        state = "disabled" if c.disabled else "enabled"
        scopes, wards = " ".join(c.scopes), ", ".join(c.wards) or "-"
        print(f"{c.id}\t{c.name}\t{c.provider_id}\t{state}\t{scopes}\twards: {wards}")
    return 0


def token(args: argparse.Namespace) -> int:
    from core.settings import get_settings
    from fhir_api.assertion import request_token

    base = args.url or get_settings().dashboard_url.rstrip("/") + "/fhir"
    answer = request_token(base, args.client, args.key.read_bytes(), scopes=args.scope)
    print(answer)
    return 0
