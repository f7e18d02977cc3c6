"""The SQL behind FHIR reads and searches: Hemma's rows as fhir_api.resources' facts, within reach.

Every resource type is one source (a SELECT whose columns include `patient_id` and `last_updated`)
joined to the client's reach (fhir_api.reach) before any condition, count or LIMIT, so what a search
counts, pages and returns is only what the client may read. A read is a search by `_id`. The answer
carries the patients it showed with the grant that allowed each (the access log's rows).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from fhir.resources.R4B.resource import Resource

from alerts.store import SHOWN_SQL
from core.vitals import Vital
from device_profiles.catalogue import load_profiles
from fhir_api import codes, resources
from fhir_api.reach import reach_sql
from fhir_api.search import DateBound, Search, as_patient_uuid
from storage.steps import Sql, Steps


@dataclass(frozen=True, slots=True)
class Found:
    resources: list[Resource]
    total: int
    patients: dict[uuid.UUID, int | None]  # patient shown -> partner grant that allowed it (or None)


# --- sources -------------------------------------------------------------------------------------

_STAY = (
    "SELECT p.id AS patient_id, p.id::text AS fhir_id, p.display_name, p.personal_number, p.birth_year,"
    " p.care_reason, p.enrolled_at, p.discharged_at, p.discharge_outcome, a.pathway,"
    " cp.id AS provider_id, cp.name AS provider_name, cp.hsa_id AS provider_hsa,"
    " greatest(p.enrolled_at, p.discharged_at) AS last_updated, p.enrolled_at AS sort_time"
    " FROM patients p JOIN wards w ON w.id = p.ward_id JOIN care_units cu ON cu.id = w.care_unit_id"
    " JOIN care_providers cp ON cp.id = cu.provider_id LEFT JOIN admissions a ON a.patient_id = p.id"
)
# The alerts people are shown (alerts.store.SHOWN_SQL): never 'pending', never one withdrawn.
_ALERTS = (
    "SELECT a.id::text AS fhir_id, a.id, a.patient_id, a.rule, a.priority, a.state, a.condition, a.message,"
    " a.opened_at, a.resolved_at, a.updated_at AS last_updated, a.opened_at AS sort_time FROM alerts a"
    " WHERE" + SHOWN_SQL
)
_DEVICES = (
    "SELECT kd.id || '.' || ka.id AS fhir_id, ka.patient_id, kd.address, kd.gateway_id, kd.profile,"
    " (ka.ends_at IS NULL AND kd.removed_at IS NULL) AS active,"
    " greatest(kd.added_at, kd.removed_at, ka.starts_at, ka.ends_at) AS last_updated,"
    " greatest(kd.added_at, ka.starts_at) AS sort_time"
    " FROM kit_assignments ka JOIN kit_devices kd ON kd.gateway_id = ka.gateway_id"
    " AND kd.added_at < coalesce(ka.ends_at, 'infinity')"
    " AND coalesce(kd.removed_at, 'infinity') > ka.starts_at"
)
_RESPONSES = (
    "SELECT q.response_id::text AS fhir_id, q.patient_id, q.response, q.authored_at AS last_updated,"
    " q.authored_at AS sort_time FROM questionnaire_responses q"
)
_PLANS = (
    "SELECT p.id AS patient_id, p.id::text AS fhir_id, p.enrolled_at, p.discharged_at,"
    " (SELECT coalesce(json_agg(json_build_array(m.vital, m.every_minutes) ORDER BY m.vital), '[]')"
    "  FROM monitoring_plans m WHERE m.patient_id = p.id) AS monitoring,"
    " (SELECT coalesce(json_agg(json_build_array(s.rule, s.text) ORDER BY s.rule), '[]')"
    "  FROM self_care_instructions s WHERE s.patient_id = p.id) AS self_care,"
    " greatest(p.enrolled_at, p.discharged_at,"
    "  (SELECT max(m.set_at) FROM monitoring_plans m WHERE m.patient_id = p.id),"
    "  (SELECT max(s.set_at) FROM self_care_instructions s WHERE s.patient_id = p.id)) AS last_updated,"
    " p.enrolled_at AS sort_time FROM patients p"
)
# Readings (diastolic rows travel inside the systolic's panel) and what only manual_observations holds.
_OBSERVATIONS = (
    "SELECT o.measurement_id::text || '.' || k.key AS fhir_id, o.patient_id, o.time AS sort_time,"
    " o.stored_at AS last_updated, o.vital, o.value, o.quality, o.measurement_id, o.gateway_id,"
    " o.device_id AS address, NULL::bigint AS manual_id, NULL::text AS consciousness,"
    " NULL::boolean AS on_oxygen, NULL::float8 AS oxygen_l_min, NULL::text AS source"
    " FROM observations o JOIN (VALUES "
    + ", ".join(f"('{v.value}', '{k}')" for v, k in codes.VITAL_KEYS.items())
    + ") AS k (vital, key) ON k.vital = o.vital"
    " UNION ALL SELECT 'm' || m.id || '.acvpu', m.patient_id, m.time, m.entered_at, 'acvpu', NULL,"
    " '{}', NULL, NULL, NULL, m.id, m.consciousness, NULL, NULL, m.source FROM manual_observations m"
    " WHERE m.consciousness IS NOT NULL"
    " UNION ALL SELECT 'm' || m.id || '.o2', m.patient_id, m.time, m.entered_at, 'o2', NULL, '{}', NULL,"
    " NULL, NULL, m.id, NULL, m.on_oxygen, m.oxygen_l_min, m.source FROM manual_observations m"
    " WHERE m.on_oxygen IS NOT NULL"
)
# For the page's readings only: the diastolic of a BP panel and the Device the reading came from
# (the kit's device at that address, in the lend of the kit to this patient at that time).
_OBSERVATION_PAGE_EXTRA = (
    " LEFT JOIN LATERAL (SELECT d.value AS diastolic, d.quality AS diastolic_quality FROM observations d"
    "  WHERE page.vital = 'systolic_bp' AND d.measurement_id = page.measurement_id"
    "  AND d.vital = 'diastolic_bp' AND d.time = page.sort_time LIMIT 1) dia ON true"
    " LEFT JOIN LATERAL (SELECT kd.id || '.' || ka.id AS device_fhir_id FROM kit_devices kd"
    "  JOIN kit_assignments ka ON ka.gateway_id = kd.gateway_id AND ka.patient_id = page.patient_id"
    "  AND ka.starts_at <= page.sort_time AND coalesce(ka.ends_at, 'infinity') > page.sort_time"
    "  WHERE page.manual_id IS NULL AND kd.gateway_id = page.gateway_id AND kd.address = page.address"
    "  AND kd.added_at <= page.sort_time AND coalesce(kd.removed_at, 'infinity') > page.sort_time"
    "  ORDER BY kd.added_at DESC LIMIT 1) dev ON true"
)


@dataclass(frozen=True, slots=True)
class Source:
    sql: str
    build: Callable[[dict[str, Any]], Resource]
    page_extra: str = ""


def _provider(row: dict[str, Any]) -> resources.Provider:
    return resources.Provider(row["provider_id"], row["provider_name"], row["provider_hsa"])


def _stay(row: dict[str, Any]) -> resources.StayFacts:
    names = ("patient_id", "display_name", "personal_number", "birth_year", "care_reason", "enrolled_at",
             "discharged_at", "discharge_outcome", "pathway", "last_updated")  # fmt: skip
    return resources.StayFacts(provider=_provider(row), **{n: row[n] for n in names})


def _observation(row: dict[str, Any]) -> Resource:
    if row["manual_id"] is not None:
        return resources.manual_observation(
            resources.ManualFacts(
                id=row["manual_id"],
                patient_id=row["patient_id"],
                key=row["vital"],
                time=row["sort_time"],
                consciousness=row["consciousness"],
                on_oxygen=row["on_oxygen"],
                oxygen_l_min=row["oxygen_l_min"],
                source=row["source"],
                entered_at=row["last_updated"],
            )
        )
    return resources.observation(
        resources.Reading(
            patient_id=row["patient_id"],
            measurement_id=row["measurement_id"],
            vital=Vital(row["vital"]),
            time=row["sort_time"],
            value=row["value"],
            quality=tuple(row["quality"]),
            gateway_id=row["gateway_id"],
            device_address=row["address"],
            device_id=row["device_fhir_id"],
            stored_at=row["last_updated"],
            diastolic=row["diastolic"],
            diastolic_quality=tuple(row["diastolic_quality"] or ()),
        )
    )


@cache
def _profiles() -> dict[str, Any]:
    return {p.id: p for p in load_profiles()}


def _device(row: dict[str, Any]) -> Resource:
    profile = _profiles().get(row["profile"])
    decoders = tuple(c.decoder for c in profile.characteristics) if profile else ()
    return resources.device(
        resources.KitDeviceFacts(
            device_id=row["fhir_id"],
            patient_id=row["patient_id"],
            address=row["address"],
            gateway_id=row["gateway_id"],
            manufacturer=profile.manufacturer if profile else None,
            model=profile.model if profile else None,
            label_sv=(profile.label_sv or None) if profile else None,
            decoders=decoders,
            active=row["active"],
            last_updated=row["last_updated"],
        )
    )


def _flag(row: dict[str, Any]) -> Resource:
    return resources.flag(
        resources.AlertFacts(
            id=row["id"],
            patient_id=row["patient_id"],
            rule=row["rule"],
            priority=row["priority"],
            state=row["state"],
            condition=row["condition"],
            message=row["message"],
            opened_at=row["opened_at"],
            resolved_at=row["resolved_at"],
            updated_at=row["last_updated"],
        )
    )


def _plan(row: dict[str, Any]) -> Resource:
    return resources.care_plan(
        resources.PlanFacts(
            patient_id=row["patient_id"],
            in_care=row["discharged_at"] is None,
            enrolled_at=row["enrolled_at"],
            discharged_at=row["discharged_at"],
            monitoring=tuple((str(v), int(n)) for v, n in _json(row["monitoring"])),
            self_care=tuple((str(r), str(t)) for r, t in _json(row["self_care"])),
            last_updated=row["last_updated"],
        )
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


SOURCES: dict[str, Source] = {
    "Patient": Source(_STAY, lambda row: resources.patient(_stay(row))),
    "Encounter": Source(_STAY, lambda row: resources.encounter(_stay(row))),
    "Observation": Source(_OBSERVATIONS, _observation, _OBSERVATION_PAGE_EXTRA),
    "Device": Source(_DEVICES, _device),
    "Flag": Source(_ALERTS, _flag),
    "QuestionnaireResponse": Source(
        _RESPONSES, lambda row: resources.questionnaire_response(_json(row["response"]), row["last_updated"])
    ),
    "CarePlan": Source(_PLANS, _plan),
}


# --- conditions ----------------------------------------------------------------------------------


def _date_condition(column: str, bound: DateBound, name: str, params: dict[str, Any]) -> str:
    """FHIR 3.1.1.4.2 over the range [start, end): gt after the range, ge from its start, lt before
    its start, le before its end, eq within it."""
    params[f"{name}_start"], params[f"{name}_end"] = bound.start, bound.end
    start, end = f"%({name}_start)s", f"%({name}_end)s"
    if bound.op in ("gt", "le") and bound.end is None:
        return "false" if bound.op == "gt" else "true"
    match bound.op:
        case "gt":
            return f"{column} >= {end}"
        case "ge":
            return f"{column} >= {start}"
        case "lt":
            return f"{column} < {start}"
        case "le":
            return f"{column} < {end}"
    return f"{column} >= {start}" + (f" AND {column} < {end}" if bound.end is not None else "")


def _conditions(search: Search, params: dict[str, Any]) -> list[str]:
    where: list[str] = []
    if search.patient is not None:
        params["patient"] = as_patient_uuid(search.patient)
        where.append("src.patient_id = %(patient)s")
    if search.ids is not None:
        params["ids"] = list(search.ids)
        where.append("src.fhir_id = ANY(%(ids)s)")
        if search.resource_type == "Observation":  # the measurement's index first
            mids = [as_patient_uuid(i.split(".")[0]) for i in search.ids]
            params["mids"] = [m for m in mids if m is not None]
            manual = [i[1:].split(".")[0] for i in search.ids if i.startswith("m")]
            params["manual_ids"] = [int(m) for m in manual if m.isdigit() and len(m) < 19]
            where.append("(src.measurement_id = ANY(%(mids)s) OR src.manual_id = ANY(%(manual_ids)s))")
    for n, bound in enumerate(search.last_updated):
        where.append(_date_condition("src.last_updated", bound, f"lu{n}", params))
    for n, bound in enumerate(search.dates):
        where.append(_date_condition("src.sort_time", bound, f"d{n}", params))
    if search.changed_after is not None:
        params["after_at"], params["after_id"] = search.changed_after
        where.append(f"(src.last_updated, src.fhir_id {_BYTES}) > (%(after_at)s, %(after_id)s {_BYTES})")
    where += _type_conditions(search, params)
    return where


# Ids compared byte by byte (ASCII), as Python compares them: a locale's collation skips '.' and '-'.
_BYTES = 'COLLATE "C"'


def _type_conditions(search: Search, params: dict[str, Any]) -> list[str]:
    kind = search.resource_type
    if kind == "Observation":
        keys = search.kinds if search.kinds is not None else frozenset(codes.ALL_OBSERVATION_KEYS)
        params["vitals"] = sorted(codes.KEY_VITALS[k].value if k in codes.KEY_VITALS else k for k in keys)
        return ["src.vital = ANY(%(vitals)s)"]
    if kind == "Flag" and search.status is not None:
        return ["src.state " + ("= 'resolved'" if search.status == "inactive" else "<> 'resolved'")]
    if kind == "Encounter" and search.status is not None:
        return ["src.discharged_at IS " + ("NULL" if search.status == "in-progress" else "NOT NULL")]
    if kind == "Patient" and search.personal_number is not None:
        coordination = int(search.personal_number[6:8]) > 60
        if search.coordination is not None and search.coordination != coordination:
            return ["false"]
        params["personal_number"] = search.personal_number
        return ["src.personal_number = %(personal_number)s"]
    return []


# --- running a search ----------------------------------------------------------------------------


def find(search: Search, *, client_id: str, at: datetime) -> Steps[Found]:
    """One page of `search`, within the client's reach at `at`, and its total."""
    source = SOURCES[search.resource_type]
    params: dict[str, Any] = {"client": client_id, "at": at}
    where = _conditions(search, params)
    body = (
        f"WITH reach AS ({reach_sql()}) SELECT src.*, r.partner_grant_id FROM ({source.sql}) src"
        " JOIN reach r ON r.patient_id = src.patient_id" + (" WHERE " + " AND ".join(where) if where else "")
    )
    count_row = yield Sql(f"SELECT count(*) FROM ({body}) counted", params, fetch="one")
    total = int(count_row[0]) if count_row else 0
    rows: list[dict[str, Any]] = []
    if search.count > 0 and search.offset < total:
        params["limit"], params["offset"] = search.count, search.offset
        order = "{0}.sort_time DESC, {0}.fhir_id"
        if search.changed_after is not None:  # the push: oldest change first, as its cursor moves
            order = "{0}.last_updated, {0}.fhir_id " + _BYTES
        paged = (
            f"SELECT * FROM ({body} ORDER BY {order.format('src')}"
            " LIMIT %(limit)s OFFSET %(offset)s)"
            f" page{source.page_extra} ORDER BY {order.format('page')}"
        )
        rows = yield from _dict_rows(paged, params)
    built = [source.build(row) for row in rows]
    return Found(built, total, {row["patient_id"]: row["partner_grant_id"] for row in rows})


def _dict_rows(query: str, params: dict[str, Any]) -> Steps[list[dict[str, Any]]]:
    # Column names come back through a one-column JSON row: storage.steps hands rows as tuples.
    rows = yield Sql(f"SELECT to_jsonb(x) FROM ({query}) x", params, fetch="all")
    return [_typed(json.loads(r[0]) if isinstance(r[0], str) else r[0]) for r in rows]


_TIMES = ("enrolled_at", "discharged_at", "last_updated", "sort_time", "opened_at", "resolved_at")


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    for name in _TIMES:
        if row.get(name) is not None:
            row[name] = datetime.fromisoformat(row[name])
    for name in ("patient_id", "measurement_id"):
        if row.get(name) is not None:
            row[name] = uuid.UUID(row[name])
    return row
