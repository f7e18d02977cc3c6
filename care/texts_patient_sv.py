"""The Swedish a patient or relative reads when the patient app cannot do what they asked, by code.

Written for an old, ill person: short, calm, no jargon, never a code or a field name, and always what
to do next. Only the refusals the patient realm can meet have a text here; any other code (a
programming error reaching a patient) reads as the generic text, never as a staff message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from care.refusals import Refusal, render_text
from care.refusals import RefusalCode as C

_Text = Callable[[Mapping[str, Any]], str]

GENERIC = "Det gick inte just nu. Försök igen om en stund, eller ring avdelningen."

TEXTS: Mapping[C, _Text] = MappingProxyType(
    {
        C.PATIENT_REALM_ACTION: lambda p: "Den här delen visas bara för patienten själv.",
        C.ENROLMENT_LINK_INVALID: lambda p: "Länken fungerar inte längre. Ring avdelningen, så får du en ny.",
        C.ENROLMENT_PIN_WRONG: lambda p: (
            f"Koden stämmer inte. Försök igen. Du har {p['attempts_left']} försök kvar."
        ),
        C.ENROLMENT_PIN_LOCKED: lambda p: (
            "Koden blev fel för många gånger. Ring avdelningen, så får du en ny länk."
        ),
        C.PIN_FORM: lambda p: "Skriv koden med fyra siffror. Du fick den av avdelningen.",
        C.PATIENT_DISCHARGED: lambda p: "Din period med Hemma är avslutad.",
        C.UNKNOWN_QUESTIONNAIRE: lambda p: "Frågorna finns inte längre. Gå tillbaka till Idag.",
        C.QUESTIONNAIRE_VERSION: lambda p: "Frågorna har ändrats. Öppna dem igen och svara en gång till.",
        C.ANSWER_INVALID: lambda p: "Något svar saknas eller passar inte. Titta igenom frågorna igen.",
        C.MESSAGE_EMPTY: lambda p: "Skriv något innan du skickar.",
        C.MESSAGE_TOO_LONG: lambda p: f"Meddelandet är för långt. Högst {p['maximum']} tecken.",
        C.CONTACT_REASON: lambda p: "Välj vad det gäller.",
        C.CONTACT_MESSAGE_TOO_LONG: lambda p: f"Texten är för lång. Högst {p['maximum']} tecken.",
        C.TEXT_CHARACTERS: lambda p: (
            "Texten har tecken som inte går att skicka. Skriv om den och försök igen."
        ),
        C.TOO_MANY_REQUESTS: lambda p: (
            "Vi har fått ditt meddelande. Vänta en stund innan du skickar igen. Är det bråttom: ring 112."
        ),
    }
)


def text(refusal: Refusal) -> str:
    """What the patient reads for `refusal`."""
    return render_text(TEXTS, refusal, GENERIC)
