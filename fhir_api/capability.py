"""What Hemma's FHIR server says about itself: the CapabilityStatement (`GET /fhir/metadata`) and the
SMART configuration (`GET /fhir/.well-known/smart-configuration`). Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir.resources.R4B.capabilitystatement import (
    CapabilityStatement,
    CapabilityStatementRest,
    CapabilityStatementRestResource,
    CapabilityStatementRestResourceInteraction,
    CapabilityStatementRestResourceOperation,
    CapabilityStatementRestResourceSearchParam,
    CapabilityStatementRestSecurity,
    CapabilityStatementSoftware,
)
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.extension import Extension

from fhir_api.search import PARAMETERS, RESOURCE_TYPES
from fhir_api.smart import ALGORITHMS

_TYPES = {
    "_id": "token", "_lastUpdated": "date", "_count": "number", "_offset": "number", "_format": "string",
    "patient": "reference", "subject": "reference", "code": "token", "date": "date", "category": "token",
    "status": "token", "identifier": "token",
}  # fmt: skip
_SMART_SECURITY = "http://terminology.hl7.org/CodeSystem/restful-security-service"
_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def capability_statement(base: str, version: str, published: datetime) -> CapabilityStatement:
    resources = [
        CapabilityStatementRestResource(
            type=kind,
            interaction=[
                CapabilityStatementRestResourceInteraction(code="read"),
                CapabilityStatementRestResourceInteraction(code="search-type"),
            ],
            searchParam=[
                CapabilityStatementRestResourceSearchParam(name=name, type=_TYPES[name])
                for name in sorted(PARAMETERS[kind] - {"_count", "_offset", "_format"})
            ],
            operation=[
                CapabilityStatementRestResourceOperation(
                    name="everything",
                    definition="http://hl7.org/fhir/OperationDefinition/Encounter-everything",
                ),
                # The end-of-stay summary as a document Bundle (fhir_api.stay_document): Hemma's own.
                CapabilityStatementRestResourceOperation(
                    name="summary", definition="https://hemma.se/fhir/OperationDefinition/Encounter-summary"
                ),
            ]
            if kind == "Encounter"
            else None,
        )
        for kind in RESOURCE_TYPES
    ]
    # Push (fhir_api.subscriptions): a client's own rest-hook subscriptions on Flag, Observation, Encounter.
    resources.append(
        CapabilityStatementRestResource(
            type="Subscription",
            interaction=[
                CapabilityStatementRestResourceInteraction(code=code)
                for code in ("create", "read", "search-type", "delete")
            ],
            searchParam=[CapabilityStatementRestResourceSearchParam(name="status", type="token")],
        )
    )
    security = CapabilityStatementRestSecurity(
        service=[CodeableConcept(coding=[Coding(system=_SMART_SECURITY, code="SMART-on-FHIR")])],
        description="SMART Backend Services: client_credentials with a JWT signed RS384 or ES384",
        extension=[
            Extension(
                url=_OAUTH_URIS,
                extension=[Extension(url="token", valueUri=f"{base}/auth/token")],
            )
        ],
    )
    return CapabilityStatement(
        status="active",
        date=published,
        kind="instance",
        software=CapabilityStatementSoftware(name="Hemma", version=version),
        fhirVersion="4.0.1",
        format=["application/fhir+json"],
        rest=[CapabilityStatementRest(mode="server", security=security, resource=resources)],
    )


def smart_configuration(base: str) -> dict[str, Any]:
    """SMART App Launch 2.x, 2.1: the discovery document (plain JSON, not a FHIR resource)."""
    return {
        "token_endpoint": f"{base}/auth/token",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "scopes_supported": [f"system/{t}.rs" for t in RESOURCE_TYPES]
        + [f"system/{t}.read" for t in RESOURCE_TYPES]
        + ["system/Subscription.cruds", "system/Subscription.write"],
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
    }
