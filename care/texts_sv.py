"""The Swedish text staff read for each refusal, by code (the dashboard; later the patient app).

A table, not logic: each entry formats the refusal's params. Numbers use the decimal comma and the
units staff read (core.vitals' display units); times of day are never shown, only which field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from alerts.model import Priority
from alerts.texts_sv import priority_sv
from care.kit_states import STATES_SV, KitEvent, KitState
from care.permissions import refusal_sv
from care.refusals import Refusal, render_text
from care.refusals import RefusalCode as C
from core.vitals import VITALS, Vital

_Text = Callable[[Mapping[str, Any]], str]


def _number(value: float, decimals: int = 0) -> str:
    return f"{value:.{decimals}f}".replace(".", ",")


def minutes_sv(minutes: int) -> str:
    """'15 min', '1 h', '4 h', '24 h', '1 h 30 min', '7 d': lengths of time as staff say them (refusals
    here, and the dashboard's plan and snooze texts)."""
    if minutes >= 2 * 1440 and minutes % 1440 == 0:
        return f"{minutes // 1440} d"
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h" if not rest else f"{hours} h {rest} min"


_KIT_EVENTS_SV = {
    KitEvent.LEND: "lånas ut",
    KitEvent.TAKE_BACK: "tas tillbaka",
    KitEvent.CLEANED: "markeras rengjord",
    KitEvent.TO_STOCK: "läggas i lager",
}


def _kit_state_sv(p: Mapping[str, Any]) -> str:
    state = STATES_SV[KitState(p["state"])].lower()
    return f"Hemlådan kan inte {_KIT_EVENTS_SV[KitEvent(p['event'])]}: den är {state}"


def _vital_name(name: str) -> str:
    try:
        return VITALS[Vital(name)].display.lower()
    except ValueError:
        return name


def rule_label(rule: str) -> str:
    """A threshold rule key as staff name it: 'Syremättnad, låg'."""
    from alerts.thresholds import threshold_keys

    found = threshold_keys().get(rule)
    if found is None:
        return rule
    vital, direction, _ = found
    return f"{VITALS[vital].display}, {'låg' if direction == 'below' else 'hög'}"


def _priorities(labels: Sequence[str]) -> str:
    return " och ".join(priority_sv(Priority.parse(p)) for p in labels)


def _impossible_limit(p: Mapping[str, Any]) -> str:
    try:
        info = VITALS[Vital(p["vital"])]
    except ValueError:
        return "Gränsen är inte ett möjligt värde"
    value = float(p["limit"])
    number = _number(value, info.decimals if value != round(value) else 0)
    given = f" {number} {info.display_unit}" if abs(value) < 1e6 else ""  # no 300-digit numbers
    plausible = f"{_number(info.plausible_min)}–{_number(info.plausible_max)} {info.display_unit}"
    return f"Gränsen{given} är inte ett möjligt värde för {info.display.lower()} ({plausible})"


def _respiration(p: Mapping[str, Any]) -> str:
    return f"Andningsfrekvensen måste vara ett heltal mellan {p['minimum']:g} och {p['maximum']:g} /min"


TEXTS: Mapping[C, _Text] = MappingProxyType(
    {
        C.NO_ACTIVE_ACCOUNT: lambda p: "Kontot är inte aktivt. Kontakta systemförvaltningen.",
        C.ROLE: lambda p: refusal_sv(p["action"]),
        C.WARD_ACCESS: lambda p: "Behörighet saknas för avdelningen",
        C.NO_PATIENT: lambda p: "Patienten finns inte",
        C.PATIENT_DISCHARGED: lambda p: "Patienten är utskriven",
        C.WARD_ID_FORM: lambda p: "Avdelningens id är 2–63 tecken: a–z, 0–9 och -",
        C.WARD_NAME_EMPTY: lambda p: "Avdelningen behöver ett namn",
        C.ESCALATION_MINUTES: lambda p: "Eskalering efter 1 till 120 minuter",
        C.NO_WARD: lambda p: "Avdelningen finns inte",
        C.PATIENT_NAME_EMPTY: lambda p: "Patientens namn saknas",
        C.KIT_ID_FORM: lambda p: "Utrustningens id är 3–63 tecken: a–z, 0–9 och -",
        C.BIRTH_YEAR: lambda p: f"Födelseåret måste vara mellan {p['minimum']} och {p['maximum']}",
        C.KIT_LENT: lambda p: "Utrustningen är redan utlånad till en annan patient",
        C.PERSONAL_NUMBER_FORM: lambda p: (
            "Personnumret är inte giltigt: skriv det med 12 siffror, ÅÅÅÅMMDD-NNNN (kontrollsiffran"
            " och datumet prövas; samordningsnummer går bra)"
        ),
        C.PATIENT_NAME_TOO_LONG: lambda p: f"Namnet får vara högst {p['maximum']} tecken",
        C.ADMISSION_CARE_REASON: lambda p: (
            f"Skriv diagnos eller vårdorsak ({p['minimum']}–{p['maximum']} tecken)"
        ),
        C.UNKNOWN_PATHWAY: lambda p: "Välj ett vårdförlopp i listan",
        C.KIT_NOT_OFFERED: lambda p: "Välj en utrustning i listan över lediga",
        C.INCLUSION_ITEMS: lambda p: (
            f"Inklusionskriterierna: 1–20 olika punkter, en per rad, vardera 3–{p['maximum']} tecken"
        ),
        C.INCLUSION_CHANGED: lambda p: (
            "Avdelningens inklusionskriterier har ändrats sedan sidan visades. Ladda om sidan."
        ),
        C.INCLUSION_NOT_CONFIRMED: lambda p: (
            f"{p['missing']} av inklusionskriterierna är inte bekräftade. Alla krävs; en läkare kan"
            " skriva in ändå med en motivering."
        ),
        C.INCLUSION_OVERRIDE_REASON: lambda p: (
            f"Skriv varför patienten skrivs in fast alla kriterier inte är bekräftade"
            f" ({p['minimum']}–{p['maximum']} tecken)"
        ),
        C.LADDER_STEPS: lambda p: (
            f"Eskaleringstrappan har 1–{p['maximum']} steg, vart och ett 1–{p['max_minutes']} minuter"
        ),
        C.LADDER_TARGET: lambda p: "Välj vem steget går till: hembesök, avdelningens läkare eller jouren",
        C.LADDER_PHYSICIAN: lambda p: "Välj en läkare på avdelningen, eller avdelningens alla läkare",
        C.LADDER_PHONE: lambda p: "Telefonnumret skrivs med siffror, t.ex. 040-33 10 00",
        C.NO_HANDOFF: lambda p: "Larmet finns inte",
        C.PERSONAL_NUMBER_ENROLLED: lambda p: "Personnumret tillhör redan en inskriven patient",
        C.PERSONAL_NUMBER_DISCHARGED: lambda p: (
            "Personnumret tillhör en utskriven patient; att skriva in igen stöds inte än"
        ),
        C.NO_PATIENT_WITH_KIT: lambda p: "Ingen inskriven patient har utrustningen",
        C.DISCHARGE_OUTCOME: lambda p: "Välj hur vårdtillfället slutade",
        C.DISCHARGE_NOTE_TOO_LONG: lambda p: f"Anteckningen får vara högst {p['maximum']} tecken",
        C.ORG_ID_FORM: lambda p: "Id:t är 2–63 tecken: a–z, siffror och bindestreck",
        C.ORG_NAME: lambda p: f"Namnet är {p['minimum']}–{p['maximum']} tecken",
        C.ORG_KIND: lambda p: "Välj slag av vårdgivare: region, primärvård, kommun eller privat",
        C.ORG_EXISTS: lambda p: "Id:t är upptaget. Välj ett annat.",
        C.HSA_ID_FORM: lambda p: (
            "HSA-id skrivs SE, tio siffror, bindestreck och 1–31 bokstäver eller siffror,"
            " till exempel SE2321000016-1234"
        ),
        C.HSA_ID_TAKEN: lambda p: "HSA-id:t används redan av ett annat konto, en vårdgivare eller vårdenhet",
        C.NO_CARE_PROVIDER: lambda p: "Vårdgivaren finns inte",
        C.NO_CARE_UNIT: lambda p: "Vårdenheten finns inte",
        C.STAFF_TITLE: lambda p: f"Titeln är {p['minimum']}–{p['maximum']} tecken",
        C.ROLE_WITHOUT_WARDS: lambda p: (
            "Samverkanspartner och loggranskare har inga avdelningar. Avmarkera avdelningarna."
        ),
        C.NOT_A_PARTNER: lambda p: "Kontot är inte en aktiv samverkanspartner",
        C.GRANT_PURPOSE: lambda p: "Välj syfte: läsrätt, läsrätt och kontakt eller hembesök vid larm",
        C.GRANT_PERIOD: lambda p: f"Åtkomsten gäller 1–{p['maximum']} dagar och måste sluta i framtiden",
        C.GRANT_CONSENT: lambda p: "Kryssa i att patienten eller en företrädare har samtyckt",
        C.SHARING_NOTE_TOO_LONG: lambda p: f"Anteckningen får vara högst {p['maximum']} tecken",
        C.PATIENT_BLOCKED: lambda p: (
            "Patienten har spärrat sina uppgifter för den vårdgivaren. Åtkomst kan inte ges."
        ),
        C.NO_GRANT: lambda p: "Åtkomsten finns inte",
        C.GRANT_ENDED: lambda p: "Åtkomsten har redan upphört eller återkallats",
        C.NO_BLOCK: lambda p: "Spärren finns inte",
        C.BLOCK_LIFTED: lambda p: "Spärren är redan hävd",
        C.BLOCK_EXISTS: lambda p: "En sådan spärr gäller redan",
        C.BLOCK_OWN_PROVIDER: lambda p: "En spärr gäller andra vårdgivare än avdelningens egen",
        C.PARTNER_NO_ACCESS: lambda p: "Patienten finns inte",
        C.PARTNER_PURPOSE: lambda p: "Din åtkomst gäller bara läsning. Ring avdelningen.",
        C.NO_STAFF_ACCOUNT: lambda p: "Kontot finns inte",
        C.USERNAME_FORM: lambda p: "Användarnamnet är 2–64 tecken: a–z, siffror, '.', '_' eller '-'",
        C.CONTACT_EMPTY: lambda p: "Ange e-post, ntfy-ämne eller webhook-adress",
        C.CONTACT_FORM: lambda p: (
            "Kontaktuppgiften avvisades: e-post behöver @, ett ntfy-ämne bara bokstäver, siffror, - och _,"
            " en webhook-adress börjar med http:// eller https://"
        ),
        C.ONCALL_LEVEL: lambda p: "Journivån är 1, 2 eller 3",
        C.STAFF_DISABLED: lambda p: "Kontot är inaktiverat",
        C.NO_CONTACT: lambda p: "Kontaktuppgifter saknas: ingen kan söka personen",
        C.SHIFT_ZONE: lambda p: "Passets tider behöver en tidszon",
        C.SHIFT_ENDS_FIRST: lambda p: "Passet måste sluta efter att det börjar",
        C.SHIFT_TOO_LONG: lambda p: f"Ett pass får vara högst {p['days']} dagar",
        C.SHIFT_TOO_FAR_AHEAD: lambda p: "Passet måste sluta inom ett år",
        C.NO_ONCALL_SHIFT: lambda p: "Jourpasset finns inte",
        C.STAFF_ROLE_CHOICE: lambda p: (
            "Rollen är sjuksköterska, läkare, IT-administratör, samverkanspartner eller loggranskare"
        ),
        C.STAFF_NAME_EMPTY: lambda p: f"Skriv personens namn (högst {p.get('maximum', 100)} tecken)",
        C.STAFF_EXISTS: lambda p: "Användarnamnet är upptaget. Välj ett annat.",
        C.STAFF_OWN_ACCOUNT: lambda p: (
            "Du kan inte inaktivera ditt eget konto eller ta bort din egen administratörsroll"
        ),
        C.HANDOVER_SHIFT: lambda p: "Okänt skift. Välj ett skift i listan.",
        C.UNKNOWN_RULE: lambda p: "Okänd larmgräns",
        C.NO_SUCH_PRIORITY: lambda p: (
            f"{rule_label(p['rule'])} har gräns bara för prioritet {_priorities(p['has'])}"
        ),
        C.IMPOSSIBLE_LIMIT: _impossible_limit,
        C.LIMIT_REASON_MISSING: lambda p: (
            "Skriv en motivering: vem som bad om gränsen och varför (minst 3 tecken)"
        ),
        C.LIMIT_END_ZONE: lambda p: "Ogiltig tidpunkt för Gäller till",
        C.LIMIT_END_PAST: lambda p: "Gäller till måste ligga efter nu",
        C.LIMIT_END_TOO_FAR: lambda p: (
            f"Gäller till får ligga högst {p['days']} dagar fram (lämna fältet tomt för tills vidare)"
        ),
        C.NO_LIMIT: lambda p: "Larmgränsen finns inte",
        C.LIMIT_ORDER: lambda p: (
            f"{rule_label(p['rule'])}: gränsen för hög prioritet måste ligga längre från det normala än"
            " gränsen för medel"
        ),
        C.REPLAY_PERIOD: lambda p: "Välj period: senaste dygnet, 7 dygn eller 14 dygn",
        C.REPLAY_NOTHING: lambda p: "Ange en larmgräns eller en SpO₂-skala att pröva",
        C.LIMIT_ALREADY_REVOKED: lambda p: "Larmgränsen är redan återkallad",
        C.UNKNOWN_VITAL: lambda p: "Okänd mätparameter",
        C.PLAN_WHOLE_MINUTES: lambda p: "Ange intervallet i hela minuter",
        C.PLAN_RANGE: lambda p: (
            f"Intervallet måste vara mellan {minutes_sv(p['minimum_minutes'])}"
            f" och {minutes_sv(p['maximum_minutes'])}"
        ),
        C.NO_CONTACT_REQUEST: lambda p: "Kontaktförfrågan finns inte för patienten",
        C.CONTACT_REQUEST_CLOSED: lambda p: "Kontaktförfrågan är redan avslutad",
        C.CONTACT_REQUEST_TAKEN: lambda p: f"Kontaktförfrågan är redan tagen av {p['taken_by']}",
        C.CONTACT_NOTE_MISSING: lambda p: "Skriv kort vilket svar patienten fick",
        C.CONTACT_NOTE_TOO_LONG: lambda p: f"Anteckningen får vara högst {p['maximum']} tecken",
        C.NO_PLAN: lambda p: f"Det finns ingen mätplan för {_vital_name(p['vital'])}",
        C.NO_KIT: lambda p: "Utrustningen finns inte",
        C.PATIENT_WITHOUT_KIT: lambda p: "Patienten har ingen utrustning",
        C.KIT_STATE: lambda p: _kit_state_sv(p),
        C.KIT_ASSIGNMENT_OVERLAP: lambda p: "Hemlådan är utlånad under den tiden; ta tillbaka den först",
        C.PATIENT_HAS_KIT: lambda p: "Patienten har redan en hemlåda",
        C.KIT_NOT_LENT: lambda p: "Hemlådan är inte utlånad",
        C.KIT_EXISTS: lambda p: "Det finns redan en hemlåda med det id:t",
        C.KIT_LEND_START: lambda p: (
            f"Utlåningen kan börja tidigast för {p['days']} dygn sedan och inte senare än nu"
        ),
        C.DEVICE_ADDRESS_FORM: lambda p: (
            "Enhetens adress är sex hexadecimala par med kolon, t.ex. A4:C1:38:00:00:01"
        ),
        C.UNKNOWN_PROFILE: lambda p: "Okänd enhetstyp",
        C.PASSKEY_MISSING: lambda p: "Enheten paras med en kod: ange de sex siffrorna",
        C.PASSKEY_NOT_USED: lambda p: "Enheten paras utan kod: lämna kodfältet tomt",
        C.PASSKEY_FORM: lambda p: "Koden är sex siffror",
        C.DEVICE_ON_ANOTHER_KIT: lambda p: "Enheten hör till en annan utrustning; ta bort den där först",
        C.DEVICE_IN_KIT: lambda p: (
            "Enheten finns redan i utrustningen med en annan typ eller kod; ta bort den först"
        ),
        C.KIT_FULL: lambda p: f"Utrustningen har redan {p['maximum']} enheter, det största antalet",
        C.NO_KIT_DEVICE: lambda p: "Enheten finns inte i utrustningen",
        C.PATIENT_REALM_ACTION: lambda p: "Enheten har inte behörighet till detta",
        C.DEVICE_LABEL: lambda p: "Ange ett namn på enheten eller den närstående (1–80 tecken)",
        C.CONSENT_MISSING: lambda p: "Skriv hur och när patienten gav sitt samtycke till den närstående",
        C.CONSENT_TOO_LONG: lambda p: f"Samtycket får beskrivas med högst {p['maximum']} tecken",
        C.PIN_FORM: lambda p: "PIN-koden är 4–6 siffror",
        C.NO_PATIENT_DEVICE: lambda p: "Enheten finns inte för patienten",
        C.PATIENT_DEVICE_REVOKED: lambda p: "Enheten är redan spärrad",
        C.ENROLMENT_LINK_INVALID: lambda p: "Länken är okänd, använd, för gammal eller spärrad",
        C.ENROLMENT_PIN_WRONG: lambda p: f"Fel PIN-kod, {p['attempts_left']} försök kvar",
        C.ENROLMENT_PIN_LOCKED: lambda p: "För många fel PIN-koder; länken är spärrad",
        C.UNKNOWN_QUESTIONNAIRE: lambda p: "Okänt frågeformulär",
        C.QUESTIONNAIRE_VERSION: lambda p: "Svaret gäller en äldre version av formuläret",
        C.ANSWER_INVALID: lambda p: "Svaret passar inte formuläret",
        C.SCHEDULE_TIMES: lambda p: "Ange 1–6 klockslag som TT:MM",
        C.NO_SCHEDULE: lambda p: "Patienten har inget schema för formuläret",
        C.MESSAGE_EMPTY: lambda p: "Meddelandet är tomt",
        C.MESSAGE_TOO_LONG: lambda p: f"Meddelandet får vara högst {p['maximum']} tecken",
        C.CONTACT_REASON: lambda p: "Välj ett skäl",
        C.CONTACT_MESSAGE_TOO_LONG: lambda p: f"Texten får vara högst {p['maximum']} tecken",
        C.CALL_WITHIN_RANGE: lambda p: f"Ange mellan {p['minimum']} och {p['maximum']} minuter",
        C.TOO_MANY_REQUESTS: lambda p: f"För många på kort tid; vänta {p['per_minutes']} minuter",
        C.NO_MESSAGE: lambda p: "Meddelandet finns inte",
        C.SELF_CARE_RULE: lambda p: "Okänd larmregel för egenvårdsråd",
        C.TEXT_CHARACTERS: lambda p: (
            "Texten innehåller tecken som inte är tillåtna (till exempel styrtecken)"
        ),
        C.SELF_CARE_TEXT_EMPTY: lambda p: "Skriv egenvårdsrådet",
        C.SELF_CARE_TEXT_TOO_LONG: lambda p: f"Egenvårdsrådet får vara högst {p['maximum']} tecken",
        C.NO_SELF_CARE: lambda p: "Det finns inget egenvårdsråd för regeln",
        C.SCALE_CHOICE: lambda p: "SpO₂-skalan är 1 (standard) eller 2 (hyperkapni, mål 88–92 %)",
        C.SCALE_REASON_MISSING: lambda p: "Skriv en motivering, t.ex. verifierad hyperkapni (minst 3 tecken)",
        C.CARE_LEVEL_CHOICE: lambda p: "Vårdnivån är röd, gul eller grön",
        C.CARE_LEVEL_REASON: lambda p: (
            f"Skriv varför patienten får vårdnivån ({p['minimum']}–{p['maximum']} tecken)"
        ),
        C.OBSERVATION_ZONE: lambda p: "Ogiltig tidpunkt",
        C.OBSERVATION_IN_FUTURE: lambda p: "Tidpunkten kan inte ligga i framtiden",
        C.OBSERVATION_TOO_OLD: lambda p: f"Tidpunkten får ligga högst {p['days']} dagar bakåt",
        C.OBSERVATION_EMPTY: lambda p: "Ange minst en av andningsfrekvens, medvetandegrad och luft/syrgas",
        C.RESPIRATION_IMPOSSIBLE: _respiration,
        C.RESPIRATION_NOT_WHOLE: _respiration,
        C.CONSCIOUSNESS_CHOICE: lambda p: "Medvetandegrad anges med A, C, V, P eller U",
        C.OXYGEN_FLOW_WITHOUT_OXYGEN: lambda p: "Syrgasflöde kan bara anges när patienten får syrgas",
        C.OXYGEN_FLOW_RANGE: lambda p: (
            f"Syrgasflödet måste vara större än 0 och högst {_number(p['maximum'])} l/min"
        ),
        C.OBSERVER_MISSING: lambda p: "Ange vem som gjorde observationen",
        C.PATIENT_REPORT_WITH_STAFF: lambda p: "En observation från patienten anges utan personal",
        C.OBSERVATION_SOURCE: lambda p: "Observationen kommer från personal eller patienten",
    }
)


FALLBACK = "Åtgärden kunde inte genomföras. Kontrollera uppgifterna och försök igen."


def text(refusal: Refusal) -> str:
    """The Swedish text of `refusal`."""
    return render_text(TEXTS, refusal, FALLBACK)
