"""Every resource type Hemma's FHIR API emits, built from facts and validated twice: by fhir.resources'
R4B models (which built it) and by the `fhirclient` library's own R4 models, strictly, from the JSON a
consumer receives. And the FHIR specification's vital-signs examples, mapped to Hemma's vocabulary
and built back: same code, value, unit and effective time. Pure: no database."""

from __future__ import annotations

import importlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from core.vitals import VITALS, Vital
from fhir_api import capability, codes, resources
from fhir_api.search import Refusal, parse, parse_date

T0 = datetime(2026, 5, 4, 8, 30, 15, 123456, tzinfo=UTC)
PATIENT = uuid.UUID("5b8f8f5e-3f4e-4d53-9a61-0c1c2a4a7e11")
PROVIDER = resources.Provider("region", "Regionen", "SE2321000016-0001")


def stay(**changes: Any) -> resources.StayFacts:
    facts = resources.StayFacts(
        patient_id=PATIENT,
        display_name="Oskar Lindqvist",
        personal_number="19430512-1237",
        birth_year=1943,
        care_reason="Hjärtsvikt",
        enrolled_at=T0 - timedelta(days=9),
        discharged_at=None,
        discharge_outcome=None,
        pathway="hjartsvikt",
        provider=PROVIDER,
        last_updated=T0,
    )
    return resources.StayFacts(**{**{f: getattr(facts, f) for f in facts.__slots__}, **changes})


def reading(vital: Vital, value: float, **changes: Any) -> resources.Reading:
    base = {
        "patient_id": PATIENT,
        "measurement_id": uuid.uuid4(),
        "vital": vital,
        "time": T0,
        "value": value,
        "quality": (),
        "gateway_id": "kit-0042",
        "device_address": "AA:BB:CC:00:00:01",
        "device_id": "12.7",
        "stored_at": T0 + timedelta(seconds=3),
    }
    return resources.Reading(**{**base, **changes})


def every_resource() -> list[Any]:
    plan = resources.PlanFacts(
        PATIENT,
        True,
        T0 - timedelta(days=9),
        None,
        (("body_weight", 1440), ("spo2", 240), ("unknown_vital", 90)),
        (("weight_gain", "Ta en extra tablett och ring."),),
        T0,
    )
    stored_qr = {
        "resourceType": "QuestionnaireResponse",
        "id": str(uuid.uuid4()),
        "status": "completed",
        "questionnaire": "https://hemma.se/fhir/Questionnaire/hemma-hf-daily|1.0",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "authored": T0.isoformat(),
        "item": [
            {
                "linkId": "breathless",
                "text": "Andfåddhet?",
                "answer": [{"valueCoding": {"code": "much-more"}}],
            }
        ],
    }
    return [
        resources.patient(stay()),
        resources.patient(stay(personal_number="19300171-2383", discharged_at=T0, discharge_outcome="died")),
        resources.encounter(stay()),
        resources.encounter(stay(discharged_at=T0, discharge_outcome="transferred_to_hospital")),
        *(resources.observation(reading(v, VITALS[v].plausible_min + 1)) for v in codes.VITAL_KEYS),
        resources.observation(reading(Vital.SYSTOLIC_BP, 128, diastolic=78, quality=("body_movement",))),
        resources.observation(reading(Vital.RESPIRATORY_RATE, 18, gateway_id="manual", device_id=None)),
        resources.observation(reading(Vital.SPO2, 91, device_id=None, quality=("signal_questionable",))),
        resources.manual_observation(
            resources.ManualFacts(7, PATIENT, "acvpu", T0, "C", None, None, "nurse", T0)
        ),
        resources.manual_observation(
            resources.ManualFacts(7, PATIENT, "o2", T0, None, True, 2.0, "nurse", T0)
        ),
        resources.manual_observation(
            resources.ManualFacts(8, PATIENT, "o2", T0, None, False, None, "patient", T0)
        ),
        resources.device(
            resources.KitDeviceFacts(
                "12.7",
                PATIENT,
                "AA:BB:CC:00:00:01",
                "kit-0042",
                "A&D Company",
                "UA-651BLE",
                "Blodtrycksmätare A&D UA-651BLE",
                ("blood_pressure", "battery_level"),
                True,
                T0,
            )
        ),
        resources.flag(
            resources.AlertFacts(
                41,
                PATIENT,
                "spo2_low",
                "high",
                "open",
                "physiological",
                "SpO₂ 85 % under gränsen 88 %",
                T0,
                None,
                T0,
            )
        ),
        resources.flag(
            resources.AlertFacts(
                42,
                PATIENT,
                "gateway_offline",
                "low",
                "resolved",
                "technical",
                "Hemlådan har inte hörts av",
                T0,
                T0 + timedelta(hours=1),
                T0,
            )
        ),
        resources.questionnaire_response(stored_qr, T0),
        resources.care_plan(plan),
        capability.capability_statement("http://127.0.0.1:8000/fhir", "0.1.0", T0),
    ]


# Ids by type and position: the resources' own ids are random, and every pytest-xdist worker must
# collect the same test names.
_RESOURCES = every_resource()
_RESOURCE_IDS = [f"{r.get_resource_type()}-{i}" for i, r in enumerate(_RESOURCES)]


@pytest.mark.parametrize("resource", _RESOURCES, ids=_RESOURCE_IDS)
def test_every_resource_type_round_trips_through_fhir_resources_and_fhirclient(resource: Any) -> None:
    sent = json.loads(resource.model_dump_json(exclude_none=True))
    kind = sent["resourceType"]
    again = get_fhir_model_class(kind).model_validate(sent)
    assert json.loads(again.model_dump_json(exclude_none=True)) == sent
    module = importlib.import_module(f"fhirclient.models.{kind.lower()}")
    parsed = getattr(module, kind)(sent, strict=True)  # raises on anything R4 does not allow
    assert parsed.as_json()["resourceType"] == kind
    assert parsed.id == sent.get("id")


def test_every_type_the_api_serves_is_covered_here() -> None:
    from fhir_api.search import RESOURCE_TYPES

    assert {r.get_resource_type() for r in every_resource()} == {*RESOURCE_TYPES, "CapabilityStatement"}


def test_patient_identifiers_tell_personnummer_from_samordningsnummer() -> None:
    person = resources.patient(stay())
    assert person.identifier[0].system == "urn:oid:1.2.752.129.2.1.3.1"
    assert person.identifier[0].value == "194305121237"
    assert person.birthDate == "1943" and person.managingOrganization.identifier.value == "SE2321000016-0001"
    coordination = resources.patient(stay(personal_number="19300171-2383"))
    assert coordination.identifier[0].system == "urn:oid:1.2.752.129.2.1.3.3"


def test_encounter_is_home_health_with_the_discharge_disposition() -> None:
    open_stay = resources.encounter(stay())
    assert (open_stay.status, open_stay.class_fhir.code, open_stay.period.end) == ("in-progress", "HH", None)
    ended = resources.encounter(stay(discharged_at=T0, discharge_outcome="died"))
    assert ended.status == "finished"
    assert ended.hospitalization.dischargeDisposition.coding[0].code == "exp"


def test_observations_carry_loinc_mdc_ucum_the_device_and_the_quality_flags() -> None:
    spo2 = json.loads(
        resources.observation(reading(Vital.SPO2, 94, quality=("low_perfusion",))).model_dump_json()
    )
    assert [(c["system"], c["code"]) for c in spo2["code"]["coding"]] == [
        ("http://loinc.org", "2708-6"),
        ("http://loinc.org", "59408-5"),
        ("urn:iso:std:iso:11073:10101", "150456"),
    ]
    assert spo2["valueQuantity"] == {
        "value": 94.0,
        "unit": "%",
        "system": "http://unitsofmeasure.org",
        "code": "%",
    }
    assert spo2["category"][0]["coding"][0]["code"] == "vital-signs"
    assert spo2["device"] == {"reference": "Device/12.7"}
    assert "low_perfusion" in spo2["note"][0]["text"]
    bp = json.loads(resources.observation(reading(Vital.SYSTOLIC_BP, 131, diastolic=82)).model_dump_json())
    assert bp["code"]["coding"][0]["code"] == "85354-9" and "valueQuantity" not in bp
    assert [
        (c["code"]["coding"][0]["code"], c["code"]["coding"][1]["code"], c["valueQuantity"]["value"])
        for c in bp["component"]
    ] == [("8480-6", "150021", 131.0), ("8462-4", "150022", 82.0)]
    pulse = resources.observation(reading(Vital.PULSE_RATE, 72))
    assert [c.code for c in pulse.code.coding] == ["8867-4", "149530"]


# --- the specification's vital-signs examples ------------------------------------------------------
# No installed package ships the FHIR examples (fhir.resources and fhirclient carry models only), so
# these are the R4 vital-signs examples written down from the specification's pages with their
# official ids (observation-example-<id>.json), cut to the elements that map to Hemma: code, value,
# unit, effective time, status and category. Narrative, performer and reference ranges are left out.


def _example(id_: str, codings: list[tuple[str, str]], effective: str, value: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "id": id_,
        "status": "final",
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
        "category": [{"coding": [{"system": codes.OBSERVATION_CATEGORY, "code": "vital-signs"}]}],
        "code": {"coding": [{"system": s, "code": c} for s, c in codings]},
        "subject": {"reference": "Patient/example"},
        "effectiveDateTime": effective,
    }
    if isinstance(value, list):
        body["component"] = [
            {
                "code": {"coding": [{"system": codes.LOINC, "code": code}]},
                "valueQuantity": {"value": v, "unit": "mmHg", "system": codes.UCUM, "code": "mm[Hg]"},
            }
            for code, v in value
        ]
    else:
        v, unit = value
        body["valueQuantity"] = {"value": v, "unit": unit, "system": codes.UCUM, "code": unit}
    return body


SPEC_EXAMPLES = [
    _example(
        "satO2",
        [(codes.LOINC, "2708-6"), (codes.LOINC, "59408-5"), (codes.MDC, "150456")],
        "2014-12-05T09:30:10+01:00",
        (95, "%"),
    ),
    _example("heart-rate", [(codes.LOINC, "8867-4")], "1999-07-02", (44, "/min")),
    _example("respiratory-rate", [(codes.LOINC, "9279-1")], "1999-07-02", (26, "/min")),
    _example("body-temperature", [(codes.LOINC, "8310-5")], "1999-07-02", (36.5, "Cel")),
    _example("blood-pressure", [(codes.LOINC, "85354-9")], "2012-09-17", [("8480-6", 107), ("8462-4", 60)]),
]


def _as_reading(example: Any) -> resources.Reading:
    """The example in Hemma's vocabulary (a date without a time is midnight UTC)."""
    codings = [(c.system, c.code) for c in example.code.coding]
    effective = example.effectiveDateTime
    at = (
        effective
        if isinstance(effective, datetime)
        else datetime(effective.year, effective.month, effective.day, tzinfo=UTC)
    )
    if codings[0] == (codes.LOINC, codes.BP_PANEL_LOINC):
        parts = {c.code.coding[0].code: float(c.valueQuantity.value) for c in example.component}
        return reading(Vital.SYSTOLIC_BP, parts["8480-6"], diastolic=parts["8462-4"], time=at)
    vital = codes.vital_for_codings(codings)
    assert vital is not None, codings
    assert example.valueQuantity.code == VITALS[vital].ucum  # the examples use Hemma's canonical units
    return reading(vital, float(example.valueQuantity.value), time=at)


@pytest.mark.parametrize("example", SPEC_EXAMPLES, ids=lambda e: e["id"])
def test_the_specifications_vital_signs_examples_round_trip(example: dict[str, Any]) -> None:
    from fhir.resources.R4B.observation import Observation

    parsed = Observation.model_validate(example)
    built = json.loads(resources.observation(_as_reading(parsed)).model_dump_json(exclude_none=True))
    sent_codes = {(c["system"], c["code"]) for c in example["code"]["coding"]}
    assert sent_codes <= {(c["system"], c["code"]) for c in built["code"]["coding"]}
    assert built["category"][0]["coding"][0]["code"] == "vital-signs"
    if "component" in example:
        assert [
            (c["code"]["coding"][0]["code"], c["valueQuantity"]["value"], c["valueQuantity"]["code"])
            for c in built["component"]
        ] == [
            (c["code"]["coding"][0]["code"], c["valueQuantity"]["value"], c["valueQuantity"]["code"])
            for c in example["component"]
        ]
    else:
        assert built["valueQuantity"]["value"] == example["valueQuantity"]["value"]
        assert built["valueQuantity"]["code"] == example["valueQuantity"]["code"]
    sent_at = parsed.effectiveDateTime
    built_at = datetime.fromisoformat(built["effectiveDateTime"].replace("Z", "+00:00"))
    if isinstance(sent_at, datetime):
        assert built_at == sent_at
    else:
        assert built_at.date() == sent_at


# --- search parameters (pure) ----------------------------------------------------------------------


def test_dates_are_ranges_as_long_as_their_precision() -> None:
    zone = UTC
    day = parse_date("ge2026-05-04", zone)
    assert (day.op, day.start, day.end) == (
        "ge",
        datetime(2026, 5, 4, tzinfo=UTC),
        datetime(2026, 5, 5, tzinfo=UTC),
    )
    december = parse_date("le2026-12", zone)
    assert december.end == datetime(2027, 1, 1, tzinfo=UTC)
    plus_as_space = parse_date("gt2026-05-04T10:00:00 02:00", zone)  # a URL's '+' read as a space
    assert plus_as_space.start == datetime(2026, 5, 4, 8, tzinfo=UTC)
    assert parse_date("eq9999-12-31", zone).end is None  # the range's end lies past datetime's reach
    for bad in (
        "2026-13-01",
        "0000",
        "ge2026-02-30",
        "2026-05-04T25:00",
        "NaN",
        "gt",
        "2026-05-04T10:00+15:00",
        "ge2026-05-04T10:00:00\u202e",
        "１９９９",
    ):
        with pytest.raises(Refusal):
            parse_date(bad, zone)


def test_search_parameters_are_strict() -> None:
    s = parse("Observation", [("code", "http://loinc.org|29463-7"), ("_count", "999999999999")], UTC)
    assert s.kinds == frozenset({"weight"}) and s.count == 200
    assert parse("Observation", [("code", "8867-4")], UTC).kinds == frozenset({"pr", "hr"})
    assert parse("Observation", [("code", "urn:iso:std:iso:11073:10101|")], UTC).kinds == frozenset(
        {"spo2", "pr", "hr", "bp", "map", "temp", "weight", "rr", "glu"}
    )
    assert parse("Observation", [("code", "|29463-7")], UTC).kinds == frozenset()
    found = parse("Patient", [("identifier", "urn:oid:1.2.752.129.2.1.3.1|194305121237")], UTC)
    assert (found.personal_number, found.coordination) == ("19430512-1237", False)
    for pairs in (
        [("name", "x")],
        [("code:text", "vikt")],
        [("_count", "-1")],
        [("_count", "NaN")],
        [("_offset", "99999999999")],
        [("patient", "../x")],
        [("patient", "a"), ("subject", "b")],
        [("identifier", "urn:oid:1.2.3|1")],
        [("status", "maybe")],
        [("_format", "xml")],
    ):
        kind = (
            "Patient" if pairs[0][0] == "identifier" else "Flag" if pairs[0][0] == "status" else "Observation"
        )
        with pytest.raises(Refusal):
            parse(kind, pairs, UTC)


def test_capillary_glucose_claims_neither_the_vital_signs_profile_nor_its_category() -> None:
    glucose = json.loads(resources.observation(reading(Vital.GLUCOSE, 7.2)).model_dump_json())
    assert "profile" not in glucose.get("meta", {})
    assert glucose["category"][0]["coding"][0]["code"] == "laboratory"
    weight = json.loads(resources.observation(reading(Vital.BODY_WEIGHT, 80.4)).model_dump_json())
    assert weight["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]
    assert weight["category"][0]["coding"][0]["code"] == "vital-signs"
