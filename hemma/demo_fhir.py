"""`hemma demo`'s FHIR part (issue 12): a journal system registered for the demo ward, and a query to try.

The demo system client `demo-journal` belongs to the region and reads the demo ward. Its private key
is made once into the data directory (readable by its owner only) and kept for the next run; its
public key is registered through the same command as `hemma fhir client add`. The demo prints a
`hemma fhir token` command and a curl of the heart-failure patient's weights by LOINC code.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

DEMO_CLIENT = "demo-journal"
DEMO_SCOPES = [f"system/{t}.rs" for t in ("Patient", "Encounter", "Observation", "Device", "Flag",
                                          "QuestionnaireResponse", "CarePlan")]  # fmt: skip
WEIGHT = "http://loinc.org%7C29463-7"  # LOINC body weight; the `|` of a token written as %7C in a URL


def demo_key(data_dir: Path) -> Path:
    """The demo client's private key (EC P-384, ES384), made on the first run."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = data_dir / f"fhir-{DEMO_CLIENT}.pem"
    if not path.exists():
        key = ec.generate_private_key(ec.SECP384R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
    return path


def seed_fhir_client(conn: Any, data_dir: Path, ward_id: str) -> Path:
    """Register `demo-journal` for the ward with the data directory's key; returns the key's path."""
    from cryptography.hazmat.primitives import serialization

    from care.acting import execute
    from fhir_api.clients import jwks_from_pem, register_client

    path = demo_key(data_dir)
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    execute(conn, register_client(client_id=DEMO_CLIENT, name="Journalsystemet (demo)", provider_id="region",
                                  jwks=jwks_from_pem(public), scopes=DEMO_SCOPES, wards=[ward_id],
                                  origin=None))  # fmt: skip
    return path


def example_lines(
    database_url: str, data_dir: Path, ward_id: str, dashboard_url: str, patients: int
) -> list[str]:
    """What the demo prints: how to get a token and read the heart-failure patient's weights."""
    import psycopg

    from simulator.homes import demo_roster

    story = next((p for p in demo_roster(patients) if p.scenario == "heart_failure"), None)
    with psycopg.connect(database_url, autocommit=True) as conn:
        key = seed_fhir_client(conn, data_dir, ward_id)
        row = None
        if story is not None:
            row = conn.execute(
                "SELECT patient_id FROM gateways WHERE id = %s", (story.gateway_id,)
            ).fetchone()
    base = f"{dashboard_url.rstrip('/')}/fhir"
    lines = [
        f"FHIR R4 (SMART Backend Services): {base}/metadata; the demo journal system is {DEMO_CLIENT}",
        f"  TOKEN=$(hemma fhir token --client {DEMO_CLIENT} --key {shlex.quote(str(key))} --url {base})",
    ]
    if row is not None:
        query = f"{base}/Observation?patient={row[0]}&code={WEIGHT}"
        lines.append(f"  curl -H \"Authorization: Bearer $TOKEN\" '{query}'")
        name = story.display_name if story else ""
        lines.append(f"  ({name}'s weights, newest first, as a FHIR searchset Bundle)")
    return lines
