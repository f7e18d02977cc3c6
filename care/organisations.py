"""Care providers and care units (issue 12, "Organisations"): who Hemma's readers work for.

A care provider (vårdgivare: the region, primary care, a private provider; the municipality as the
provider of kommunal hälso- och sjukvård) has care units (vårdenheter); a staff account belongs to a
unit, and through it every access-log row names the reader's provider (migration 0018's trigger).
Added by an admin (AdminAction.MANAGE_ORGANISATIONS) on `/admin/organisations` or by the operator
with `hemma org`; both run these commands, which write the admin's log row in the same transaction.
Never deleted: the access log refers to them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from care.acting import Origin, acting_admin, admin_audited
from care.permissions import AdminAction
from care.refusals import RefusalCode, Refused
from storage.steps import Sql, Steps

MANAGE = AdminAction.MANAGE_ORGANISATIONS
ORG_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")  # care_providers.id and care_units.id CHECK
# The HSA-id (the national directory's identity of a person, provider or unit): the CHECK of
# migration 0018, "SE" + the organisation number (ten digits) + "-" + a local part.
HSA_ID = re.compile(r"SE[0-9]{10}-[0-9A-Za-z]{1,31}")
NAME_LENGTH = (2, 200)
KINDS_SV: Mapping[str, str] = MappingProxyType(
    {
        "region": "Region",
        "primary_care": "Primärvård",
        "municipality": "Kommun",
        "private": "Privat vårdgivare",
    }
)


@dataclass(frozen=True, slots=True)
class CareProvider:
    id: str
    name: str
    kind: str
    hsa_id: str | None

    @property
    def kind_sv(self) -> str:
        return KINDS_SV.get(self.kind, self.kind)


@dataclass(frozen=True, slots=True)
class CareUnit:
    id: str
    provider_id: str
    provider_name: str
    name: str
    hsa_id: str | None


def check_org_id(org_id: str) -> str:
    if not ORG_ID.fullmatch(org_id):
        raise Refused(RefusalCode.ORG_ID_FORM, org_id=org_id[:64])
    return org_id


def check_hsa_id(hsa_id: str | None) -> str | None:
    """The HSA-id as stored (None for none given); refused unless it has the catalogue's form."""
    if hsa_id is None or not hsa_id.strip():
        return None
    given = hsa_id.strip()
    if not HSA_ID.fullmatch(given):
        raise Refused(RefusalCode.HSA_ID_FORM, hsa_id=given[:50])
    return given


def check_name(name: str) -> str:
    text = " ".join(name.split())
    low, high = NAME_LENGTH
    if not low <= len(text) <= high or not text.isprintable():
        raise Refused(RefusalCode.ORG_NAME, minimum=low, maximum=high)
    return text


def _hsa_free(hsa_id: str | None) -> Steps[None]:
    """An HSA-id names one person, provider or unit: refused when any of them holds it already."""
    if hsa_id is None:
        return
    row = yield Sql(
        "SELECT 1 FROM care_providers WHERE hsa_id = %(h)s UNION ALL"
        " SELECT 1 FROM care_units WHERE hsa_id = %(h)s UNION ALL"
        " SELECT 1 FROM staff_users WHERE hsa_id = %(h)s LIMIT 1",
        {"h": hsa_id},
        fetch="one",
    )
    if row is not None:
        raise Refused(RefusalCode.HSA_ID_TAKEN, hsa_id=hsa_id)


def add_provider(
    *, provider_id: str, name: str, kind: str, hsa_id: str | None = None, by: str | None = None,
    origin: Origin | None = None,
) -> Steps[CareProvider]:  # fmt: skip
    """A new care provider. `by` an admin, or None for the CLI's operator."""
    staff = yield from acting_admin(by, MANAGE)
    check_org_id(provider_id)
    text = check_name(name)
    if kind not in KINDS_SV:
        raise Refused(RefusalCode.ORG_KIND, known=tuple(KINDS_SV))
    hsa = check_hsa_id(hsa_id)
    found = yield Sql("SELECT 1 FROM care_providers WHERE id = %s", (provider_id,), fetch="one")
    if found is not None:
        raise Refused(RefusalCode.ORG_EXISTS, org_id=provider_id)
    yield from _hsa_free(hsa)
    yield Sql(
        "INSERT INTO care_providers (id, name, kind, hsa_id) VALUES (%s, %s, %s, %s)",
        (provider_id, text, kind, hsa),
    )
    yield from admin_audited(origin, staff=staff, action=MANAGE,
                             context=f"provider:{provider_id} add kind:{kind}")  # fmt: skip
    return CareProvider(provider_id, text, kind, hsa)


def add_unit(
    *, unit_id: str, provider_id: str, name: str, hsa_id: str | None = None, by: str | None = None,
    origin: Origin | None = None,
) -> Steps[CareUnit]:  # fmt: skip
    """A new care unit of an existing provider."""
    staff = yield from acting_admin(by, MANAGE)
    check_org_id(unit_id)
    text = check_name(name)
    hsa = check_hsa_id(hsa_id)
    provider = yield Sql("SELECT name FROM care_providers WHERE id = %s", (provider_id,), fetch="one")
    if provider is None:
        raise Refused(RefusalCode.NO_CARE_PROVIDER, provider_id=provider_id[:64])
    found = yield Sql("SELECT 1 FROM care_units WHERE id = %s", (unit_id,), fetch="one")
    if found is not None:
        raise Refused(RefusalCode.ORG_EXISTS, org_id=unit_id)
    yield from _hsa_free(hsa)
    yield Sql(
        "INSERT INTO care_units (id, provider_id, name, hsa_id) VALUES (%s, %s, %s, %s)",
        (unit_id, provider_id, text, hsa),
    )
    yield from admin_audited(origin, staff=staff, action=MANAGE,
                             context=f"unit:{unit_id} add provider:{provider_id}")  # fmt: skip
    return CareUnit(unit_id, provider_id, str(provider[0]), text, hsa)


@dataclass(frozen=True, slots=True)
class WardUnit:
    """A ward and the care unit it belongs to (wards.care_unit_id)."""

    ward_id: str
    ward_name: str
    unit_id: str


def set_ward_unit(
    *, ward_id: str, unit_id: str, by: str | None = None, origin: Origin | None = None
) -> Steps[WardUnit]:
    """Move a ward to a care unit, and so to that unit's care provider: whose ward it is for the
    partners' grants, FHIR's Organization and the printed documents. The access log's past rows keep
    the provider they were written under."""
    staff = yield from acting_admin(by, MANAGE)
    yield from unit_exists(unit_id)
    row = yield Sql(
        "UPDATE wards SET care_unit_id = %s WHERE id = %s RETURNING name", (unit_id, ward_id), fetch="one"
    )
    if row is None:
        raise Refused(RefusalCode.NO_WARD, ward_id=ward_id[:64])
    yield from admin_audited(origin, staff=staff, action=MANAGE,
                             context=f"ward:{ward_id} unit:{unit_id}")  # fmt: skip
    return WardUnit(ward_id, str(row[0]), unit_id)


def ward_units() -> Steps[list[WardUnit]]:
    """Every ward with its care unit, by name. No patient data: read without a log row."""
    rows = yield Sql("SELECT id, name, care_unit_id FROM wards ORDER BY lower(name), id", (), fetch="all")
    return [WardUnit(*r) for r in rows]


def providers() -> Steps[list[CareProvider]]:
    """Every care provider, the region's own first. No patient data: read without a log row."""
    rows = yield Sql(
        "SELECT id, name, kind, hsa_id FROM care_providers ORDER BY kind <> 'region', lower(name), id",
        (),
        fetch="all",
    )
    return [CareProvider(*r) for r in rows]


def units() -> Steps[list[CareUnit]]:
    """Every care unit with its provider's name, by provider and name."""
    rows = yield Sql(
        "SELECT u.id, u.provider_id, p.name, u.name, u.hsa_id FROM care_units u"
        " JOIN care_providers p ON p.id = u.provider_id"
        " ORDER BY p.kind <> 'region', lower(p.name), lower(u.name), u.id",
        (),
        fetch="all",
    )
    return [CareUnit(*r) for r in rows]


def unit_exists(unit_id: str) -> Steps[None]:
    row = yield Sql("SELECT 1 FROM care_units WHERE id = %s", (unit_id,), fetch="one")
    if row is None:
        raise Refused(RefusalCode.NO_CARE_UNIT, unit_id=unit_id[:64])
