"""Code systems and the few code tables FHIR needs beyond Hemma's vocabulary. Pure.

The vital signs' LOINC codes, UCUM units and MDC reference ids are core.vitals' (VITALS): this module
adds only what FHIR exchange needs besides them: the numeric IEEE 11073-10101 codes of those MDC
reference ids (FHIR's `urn:iso:std:iso:11073:10101` system carries the number, not the name), the
blood-pressure panel of the vital-signs profile, the device specialisations of the Personal Health
Device IG, the discharge dispositions and the flag priorities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from core.vitals import VITALS, Vital

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
MDC: Final = "urn:iso:std:iso:11073:10101"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
VITAL_SIGNS_PROFILE: Final = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
# The vital-signs profile's value set (FHIR R4 observation-vitalsignresult) as far as Hemma's vitals
# go: a reading whose LOINC code is not in it (capillary glucose) claims neither the profile nor the
# vital-signs category.
VITAL_SIGNS_LOINC: Final = frozenset(
    {"2708-6", "59408-5", "8867-4", "8480-6", "8462-4", "8478-0", "8310-5", "29463-7", "9279-1", "85354-9"}
)
BP_PROFILE: Final = "http://hl7.org/fhir/StructureDefinition/bp"
ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DISCHARGE_DISPOSITION: Final = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
FLAG_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/flag-category"
FLAG_PRIORITY_EXTENSION: Final = "http://hl7.org/fhir/StructureDefinition/flag-priority"
FLAG_PRIORITY: Final = "http://hl7.org/fhir/flag-priority-code"
# Swedish identities (Skatteverket's numbers as the Swedish FHIR profiles name them; HSA-id, Inera).
PERSONNUMMER: Final = "urn:oid:1.2.752.129.2.1.3.1"
SAMORDNINGSNUMMER: Final = "urn:oid:1.2.752.129.2.1.3.3"
# The HSA-id's OID (Inera's HSA catalogue, as RIV-TA services write root="1.2.752.129.2.1.4.1").
HSA_ID: Final = "urn:oid:1.2.752.129.2.1.4.1"
BLUETOOTH_ADDRESS: Final = "urn:ietf:rfc:7042"  # an EUI-48, as the PHD IG identifies a device by it
# Hemma's own codes, where no standard one fits (alert rules, manual observations, quality flags).
HEMMA: Final = "https://hemma.se/fhir"
HEMMA_ALERT_RULE: Final = f"{HEMMA}/CodeSystem/alert-rule"
HEMMA_ALERT_CONDITION: Final = f"{HEMMA}/CodeSystem/alert-condition"
HEMMA_OBSERVATION: Final = f"{HEMMA}/CodeSystem/observation"
HEMMA_QUALITY: Final = f"{HEMMA}/CodeSystem/quality-flag"
HEMMA_PLAN: Final = f"{HEMMA}/CodeSystem/care-plan-activity"
HEMMA_STAY_SUMMARY: Final = f"{HEMMA}/stay-summary"  # Composition.identifier of a stay's summary
HEMMA_SUMMARY_SECTION: Final = f"{HEMMA}/CodeSystem/stay-summary-section"  # care.stay_summary.SECTIONS
HEMMA_STATISTIC: Final = f"{HEMMA}/CodeSystem/observation-statistic"  # first, last: none in HL7's
OBSERVATION_STATISTICS: Final = "http://terminology.hl7.org/CodeSystem/observation-statistics"
ORGANIZATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/organization-type"
RFC_3986: Final = "urn:ietf:rfc:3986"  # an identifier that is a URI (a document's urn:uuid)

# IEEE 11073-10101 numeric codes of core.vitals' MDC reference ids (as the PHD IG and the FHIR
# vital-signs examples write them: satO2 carries 150456).
MDC_CODES: Final[dict[str, str]] = {
    "MDC_PULS_OXIM_SAT_O2": "150456",
    "MDC_PULS_OXIM_PULS_RATE": "149530",
    "MDC_ECG_HEART_RATE": "147842",
    "MDC_PRESS_BLD_NONINV": "150020",
    "MDC_PRESS_BLD_NONINV_SYS": "150021",
    "MDC_PRESS_BLD_NONINV_DIA": "150022",
    "MDC_PRESS_BLD_NONINV_MEAN": "150023",
    "MDC_TEMP_BODY": "150364",
    "MDC_MASS_BODY_ACTUAL": "188736",
    "MDC_RESP_RATE": "151562",
    "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD": "160184",
}

# The vital-signs profile's blood-pressure panel: systolic and diastolic are components of one
# Observation (http://hl7.org/fhir/StructureDefinition/bp), never two.
BP_PANEL_LOINC: Final = "85354-9"
BP_PANEL_MDC: Final = "MDC_PRESS_BLD_NONINV"
BP_PANEL_DISPLAY: Final = "Blodtryck"
OXYGEN_FLOW_LOINC: Final = "3151-8"  # Inhaled oxygen flow rate


@dataclass(frozen=True, slots=True)
class ObservationKind:
    """One kind of Observation Hemma emits: a vital (or the BP panel), or a manual observation."""

    key: str  # the suffix of the Observation's id, and what `code` searches find
    vitals: tuple[str, ...]  # observations.vital rows it is built from ('' for manual ones)


# Short keys in Observation ids ("<measurement uuid>.<key>"): FHIR ids allow [A-Za-z0-9.-] only.
VITAL_KEYS: Final[dict[Vital, str]] = {
    Vital.SPO2: "spo2",
    Vital.PULSE_RATE: "pr",
    Vital.HEART_RATE: "hr",
    Vital.SYSTOLIC_BP: "bp",  # the panel, with the diastolic of the same measurement
    Vital.MEAN_ARTERIAL_PRESSURE: "map",
    Vital.BODY_TEMPERATURE: "temp",
    Vital.BODY_WEIGHT: "weight",
    Vital.RESPIRATORY_RATE: "rr",
    Vital.GLUCOSE: "glu",
}
KEY_VITALS: Final[dict[str, Vital]] = {key: vital for vital, key in VITAL_KEYS.items()}
# Manual observations that live only in manual_observations (consciousness, air or oxygen).
MANUAL_ACVPU: Final = "acvpu"
MANUAL_OXYGEN: Final = "o2"
MANUAL_KEYS: Final = (MANUAL_ACVPU, MANUAL_OXYGEN)


def observation_codings(key: str) -> tuple[tuple[str, str], ...]:
    """(system, code) of every coding an Observation of `key` carries, LOINC first."""
    if key == MANUAL_ACVPU:
        return ((HEMMA_OBSERVATION, "acvpu"),)
    if key == MANUAL_OXYGEN:
        return ((LOINC, OXYGEN_FLOW_LOINC), (HEMMA_OBSERVATION, "supplemental-oxygen"))
    if key == "bp":
        return ((LOINC, BP_PANEL_LOINC), (MDC, MDC_CODES[BP_PANEL_MDC]))
    info = VITALS[KEY_VITALS[key]]
    codings = [(LOINC, info.loinc), *((LOINC, extra) for extra in info.loinc_also)]
    if info.mdc is not None and info.mdc in MDC_CODES:
        codings.append((MDC, MDC_CODES[info.mdc]))
    return tuple(codings)


ALL_OBSERVATION_KEYS: Final = (*VITAL_KEYS.values(), *MANUAL_KEYS)


def keys_for_token(system: str | None, code: str | None) -> frozenset[str]:
    """The Observation kinds a `code` search token matches: `code`, `system|code`, `|code` (no
    system: never Hemma's, which always has one), or `system|` (every code of the system)."""
    found = set()
    for key in ALL_OBSERVATION_KEYS:
        for sys_, c in observation_codings(key):
            if system is not None and system != "" and sys_ != system:
                continue
            if system == "":  # `|code`: a code without a system; Hemma's codes always have one
                continue
            if code is None or code == c:
                found.add(key)
    return frozenset(found)


# Discharge outcomes (patients.discharge_outcome) as HL7's discharge dispositions.
DISCHARGE_DISPOSITIONS: Final[dict[str, tuple[str, str]]] = {
    "stayed_home": ("home", "Kvar i hemmet"),
    "transferred_to_hospital": ("other-hcf", "Överflyttad till sjukhus"),
    "died": ("exp", "Avliden"),
    "other": ("oth", "Annat"),
}

# Alert priority as the flag-priority extension's code (PH high, PM medium, PL low).
FLAG_PRIORITIES: Final[dict[str, tuple[str, str]]] = {
    "high": ("PH", "Hög prioritet"),
    "medium": ("PM", "Medelhög prioritet"),
    "low": ("PL", "Låg prioritet"),
}

# The PHD IG's device specialisations (MDC_DEV_SPEC_PROFILE_*), by the decoder of a profile's
# measurement characteristic (device_profiles/profiles/*.json).
DEVICE_TYPES: Final[dict[str, tuple[str, str]]] = {
    "plx_spot_check": ("528388", "Pulsoximeter"),
    "plx_continuous": ("528388", "Pulsoximeter"),
    "bci_oximeter": ("528388", "Pulsoximeter"),
    "blood_pressure": ("528391", "Blodtrycksmätare"),
    "temperature": ("528392", "Termometer"),
    "weight": ("528399", "Våg"),
    "body_composition": ("528404", "Kroppssammansättningsvåg"),
    "glucose": ("528401", "Glukosmätare"),
    "heart_rate": ("528425", "Pulsmätare"),
}


def vital_for_codings(codings: Sequence[tuple[str | None, str | None]]) -> Vital | None:
    """Hemma's vital for an Observation's codings from elsewhere (a partner's reading, the FHIR
    specification's examples): an MDC code first (one per vital), then LOINC, where 8867-4 is the
    heart rate unless an MDC code says pulse oximetry."""
    by_mdc = {code: vital for vital, info in VITALS.items() if (code := MDC_CODES.get(info.mdc or ""))}
    for system, code in codings:
        if system == MDC and code in by_mdc:
            return by_mdc[code]
    by_loinc: dict[str, Vital] = {}
    for vital, info in VITALS.items():
        for loinc in (info.loinc, *info.loinc_also):
            by_loinc.setdefault(loinc, vital)
    by_loinc["8867-4"] = Vital.HEART_RATE
    for system, code in codings:
        if system == LOINC and code in by_loinc:
            return by_loinc[code]
    return None
