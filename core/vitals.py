"""The vital signs Hemma knows, in canonical units, with their codes.

One table, used by the decoders' normalisation step, the wire contract, the
alert engine and the dashboard. Codes: LOINC for the observation, UCUM for the
unit, IEEE 11073-10101 MDC where one exists. Plausibility ranges reject values
no living patient can have (they are about sensors lying, not about illness).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Vital(StrEnum):
    SPO2 = "spo2"
    PULSE_RATE = "pulse_rate"
    HEART_RATE = "heart_rate"
    SYSTOLIC_BP = "systolic_bp"
    DIASTOLIC_BP = "diastolic_bp"
    MEAN_ARTERIAL_PRESSURE = "mean_arterial_pressure"
    BODY_TEMPERATURE = "body_temperature"
    BODY_WEIGHT = "body_weight"
    RESPIRATORY_RATE = "respiratory_rate"
    GLUCOSE = "glucose"


@dataclass(frozen=True, slots=True)
class VitalInfo:
    vital: Vital
    display: str  # Swedish label shown to staff
    short: str  # column heading on the ward overview
    loinc: str
    ucum: str
    mdc: str | None
    plausible_min: float
    plausible_max: float
    decimals: int
    # Further LOINC codes an exchange partner may expect (FHIR's vital-signs profile wants 2708-6
    # on every SpO2 observation, with 59408-5 "by pulse oximetry" beside it).
    loinc_also: tuple[str, ...] = ()

    @property
    def display_unit(self) -> str:
        """The unit as staff write it (UCUM's "Cel" is "°C")."""
        return DISPLAY_UNITS.get(self.ucum, self.ucum)

    def format(self, value: float) -> str:
        """A value as Swedish staff read it: fixed decimals, decimal comma, display unit."""
        number = f"{value:.{self.decimals}f}".replace(".", ",").replace("-", "−")
        return f"{number} {self.display_unit}"


DISPLAY_UNITS = {"mm[Hg]": "mmHg", "Cel": "°C", "/min": "/min", "%": "%", "kg": "kg", "mmol/L": "mmol/L"}


VITALS: dict[Vital, VitalInfo] = {
    v.vital: v
    for v in (
        VitalInfo(
            Vital.SPO2,
            "Syremättnad",
            "SpO₂",
            "2708-6",
            "%",
            "MDC_PULS_OXIM_SAT_O2",
            40,
            100,
            0,
            loinc_also=("59408-5",),
        ),
        VitalInfo(Vital.PULSE_RATE, "Puls", "Puls", "8867-4", "/min", "MDC_PULS_OXIM_PULS_RATE", 20, 300, 0),
        VitalInfo(
            Vital.HEART_RATE, "Hjärtfrekvens", "HR", "8867-4", "/min", "MDC_ECG_HEART_RATE", 20, 300, 0
        ),
        VitalInfo(
            Vital.SYSTOLIC_BP,
            "Systoliskt blodtryck",
            "Sys",
            "8480-6",
            "mm[Hg]",
            "MDC_PRESS_BLD_NONINV_SYS",
            40,
            300,
            0,
        ),
        VitalInfo(
            Vital.DIASTOLIC_BP,
            "Diastoliskt blodtryck",
            "Dia",
            "8462-4",
            "mm[Hg]",
            "MDC_PRESS_BLD_NONINV_DIA",
            15,
            200,
            0,
        ),
        VitalInfo(
            Vital.MEAN_ARTERIAL_PRESSURE,
            "Medelartärtryck",
            "MAP",
            "8478-0",
            "mm[Hg]",
            "MDC_PRESS_BLD_NONINV_MEAN",
            20,
            250,
            0,
        ),
        VitalInfo(
            Vital.BODY_TEMPERATURE, "Kroppstemperatur", "Temp", "8310-5", "Cel", "MDC_TEMP_BODY", 25, 45, 1
        ),
        VitalInfo(
            Vital.BODY_WEIGHT, "Kroppsvikt", "Vikt", "29463-7", "kg", "MDC_MASS_BODY_ACTUAL", 2, 400, 1
        ),
        VitalInfo(
            Vital.RESPIRATORY_RATE, "Andningsfrekvens", "AF", "9279-1", "/min", "MDC_RESP_RATE", 2, 80, 0
        ),
        VitalInfo(
            Vital.GLUCOSE,
            "Glukos",
            "Glukos",
            "15074-8",
            "mmol/L",
            "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD",
            0.5,
            50,
            1,
        ),
    )
}


def plausibility_problem(vital: Vital, value: float) -> str | None:
    """Why `value` cannot be a real reading of `vital`, or None when it can."""
    info = VITALS[vital]
    if value != value:  # NaN
        return f"{vital.value} is not a number"
    if not info.plausible_min <= value <= info.plausible_max:
        return (
            f"{vital.value} {value:g} {info.ucum} outside plausible range "
            f"{info.plausible_min:g}-{info.plausible_max:g}"
        )
    return None
