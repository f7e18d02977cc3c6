"""The Swedish text of every alert, rendered from what the rule found (`alerts.facts`).

Staff read these on the ward overview, in the alert history and in pages to the physician on call,
so they are written once, here: the rules compute, this module words. The texts are stored with
each alert (`alerts.message`); changing one changes what new alerts say, never what old ones said.
Values are written as staff read them (`core.vitals.VitalInfo.format`: decimal comma, display unit).
"""

from __future__ import annotations

from alerts.facts import (
    BatteryLow,
    ClockNotSet,
    ConfigNotApplied,
    ContactRequestOpen,
    DeviceSilent,
    Facts,
    GatewayOffline,
    LimitKind,
    MissingVital,
    News2Risk,
    ReceiptsOverdue,
    SymptomsReported,
    ThresholdBreach,
    TrendRise,
    TrendSlope,
    WeightAboveBaseline,
    WeightGain3d,
)
from alerts.model import Priority
from core.vitals import VITALS

H, M = Priority.HIGH, Priority.MEDIUM

# The ward default of each threshold key and severity (alerts.thresholds.WARD_DEFAULT_RULES), as the
# NEWS2 band it stands for (RCP 2017 chart 1).
WARD_THRESHOLD_TEXT: dict[tuple[str, Priority], str] = {
    ("spo2_low", H): "Syremättnad ≤ 91 %",
    ("spo2_low", M): "Syremättnad 92–93 %",
    ("pulse_high", H): "Puls ≥ 131/min",
    ("pulse_high", M): "Puls 111–130/min",
    ("pulse_low", H): "Puls ≤ 40/min",
    ("heart_rate_high", H): "Hjärtfrekvens ≥ 131/min",
    ("heart_rate_high", M): "Hjärtfrekvens 111–130/min",
    ("heart_rate_low", H): "Hjärtfrekvens ≤ 40/min",
    ("systolic_low", H): "Systoliskt blodtryck ≤ 90 mmHg",
    ("systolic_low", M): "Systoliskt blodtryck 91–100 mmHg",
    ("systolic_high", H): "Systoliskt blodtryck ≥ 220 mmHg",
    ("temperature_high", M): "Temperatur ≥ 39,1 °C",
    ("temperature_low", H): "Temperatur ≤ 35,0 °C",
    ("resp_rate_high", H): "Andningsfrekvens ≥ 25/min",
    ("resp_rate_high", M): "Andningsfrekvens 21–24/min",
    ("resp_rate_low", H): "Andningsfrekvens ≤ 8/min",
}
# NEWS2 scale 2 (alerts.judge.SCALE_2_SPO2_LIMITS): ≤83 % scores 3, 84-85 % scores 2.
SCALE_2_TEXT: dict[Priority, str] = {H: "Syremättnad ≤ 83 % (skala 2)", M: "Syremättnad 84–85 % (skala 2)"}
TREND_TEXT: dict[str, str] = {
    "trend:spo2_falling": "Syremättnaden sjunker",
    "trend:systolic_falling": "Systoliskt blodtryck sjunker",
    "trend:resting_pulse_rising": "Vilopulsen stiger",
}
# How the patient asked for contact (contract.KitEvent.source, or the app: care.contact), in the alert
# text and on the card.
CONTACT_SOURCE_SV = {"button": "knappen", "app": "appen"}
# What the patient reported, by the flag code an answer option carries (care/questionnaires/data:
# the Hemma extension `alert-flag`), as staff read it after "Patienten rapporterar:". The one list of
# known flags: a questionnaire whose option names another code fails to load (care.questionnaires).
SYMPTOM_SV: dict[str, str] = {
    "breathless-worse": "mycket mer andfådd",
    "swollen-legs": "mer svullna anklar eller ben",
    "orthopnoea": "behövt fler kuddar eller sovit sittande",
    "dizzy": "yrsel",
    "fainted": "har svimmat",
    "cough-worse": "mycket mer hosta",
    "sputum-more": "mer slem",
    "sputum-colour": "slemmet har ändrat färg",
    "reliever-more": "tagit snabbverkande inhalator oftare",
    "activities-limited": "orkar inte sina vanliga sysslor",
    "feeling-worse": "mår sämre",
}
# NEWS2 clinical risk by its label (alerts.news2.RISK_LABELS): alert texts, the record, the ward's chips.
NEWS2_RISK_SV = {"low": "låg", "low-medium": "låg–medel", "medium": "medel", "high": "hög"}


def render(facts: Facts) -> str:
    """The alert text for what a rule found."""
    match facts:
        case ThresholdBreach():
            return _threshold(facts)
        case News2Risk(total=total, incomplete=incomplete, risk=risk):
            shown = f"≥ {total} (ofullständig)" if incomplete else str(total)
            return f"NEWS2 {shown}: {NEWS2_RISK_SV[risk]} risk"
        case WeightGain3d(gain_kg=gain, limit_kg=limit, reported=reported):
            text = f"Viktökning {gain:.1f} kg på 3 dygn (gräns {limit:g} kg)".replace(".", ",")
            return f"{text}; {_reported(reported)}" if reported else text
        case WeightAboveBaseline(excess_kg=excess, limit_kg=limit):
            return f"Vikten {excess:.1f} kg över patientens baslinje (gräns {limit:.1f} kg)".replace(".", ",")
        case TrendSlope():
            change = VITALS[facts.vital].format(facts.change).replace("−", "")
            return (
                f"{TREND_TEXT[facts.rule]}: {change} på {facts.span_h:.0f} h"
                f" (gräns {abs(facts.limit_change):g} på {facts.window_h:g} h)"
            )
        case TrendRise():
            rise = VITALS[facts.vital].format(facts.rise)
            return f"{TREND_TEXT[facts.rule]}: +{rise} mot föregående {facts.reference_days} dygn"
        case MissingVital():
            what = "Ingen tillförlitlig mätning" if facts.never else "Ingen ny tillförlitlig mätning"
            label = VITALS[facts.vital].short
            return f"{what} av {label} på {_duration(facts.age_s)} (planerad var {_duration(facts.every_s)})"
        case DeviceSilent(device=device, silent_s=silent):
            return f"Enheten {device} har inte hörts av på {_duration(silent)}"
        case GatewayOffline(offline_s=offline):
            return f"Hemenheten har varit offline i {_duration(offline)}"
        case ReceiptsOverdue(waited_s=waited, measurements=count):
            counted = "" if count is None else f" ({count:.0f} mätningar)"
            waited_for = _duration(waited)
            return f"Mätvärden från hemenheten har inte bekräftats som mottagna på {waited_for}{counted}"
        case BatteryLow(device=device, percent=percent):
            return f"Låg batterinivå i {device}: {percent:.0f} %"
        case ClockNotSet(device=device):
            return f"Klockan i {device} är inte ställd"
        case ConfigNotApplied(version=version, applied=applied, waited_s=waited):
            has = "ingen" if applied is None else f"version {applied}"
            return (
                f"Hemenheten har inte tillämpat konfiguration version {version} på {_duration(waited)}"
                f" (har {has})"
            )
        case ContactRequestOpen(waited_s=waited, source=source):
            how = CONTACT_SOURCE_SV.get(source, source)
            return f"Patienten har bett om kontakt för {_duration(waited)} sedan ({how})"
        case SymptomsReported(symptoms=symptoms):
            text = _reported(symptoms)
            return text[:1].upper() + text[1:]
    raise TypeError(f"no Swedish text for {type(facts).__name__}")  # pragma: no cover - mypy sees all


def _threshold(facts: ThresholdBreach) -> str:
    """ "Puls ≥ 131/min: 135 /min" while beyond the limit; held by hysteresis (back inside, but not yet by
    the margin), the newest value is not presented as if it breached: "Puls ≥ 131/min; senast 128 /min"."""
    info = VITALS[facts.vital]
    if facts.limit_kind is LimitKind.PERSONAL:
        side = "under" if facts.direction == "below" else "över"
        text = f"{info.display} {side} personlig gräns {info.format(facts.limit)}"
    elif facts.limit_kind is LimitKind.SCALE_2:
        text = SCALE_2_TEXT[facts.priority]
    else:
        text = WARD_THRESHOLD_TEXT[(facts.rule, facts.priority)]
    value = info.format(facts.value)
    return f"{text}: {value}" if facts.beyond else f"{text}; senast {value}"


def _reported(symptoms: tuple[str, ...]) -> str:
    """ "patienten rapporterar: mycket mer andfådd, yrsel" (a code without words is shown as it is)."""
    return "patienten rapporterar: " + ", ".join(SYMPTOM_SV.get(code, code) for code in symptoms)


def _duration(seconds: float) -> str:
    """Hours from an hour and a half on, minutes below: "5 h", "20 min"."""
    return f"{seconds / 3600:.0f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"
