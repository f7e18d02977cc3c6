"""The texts the pages' script shows on its own, kept here so that dashboard.js carries no Swedish.

The script shows them when a request fails without the server's own message: no network at all, or a
status whose answer carries no Swedish `detail`. Every page with a logged-in user has them in
`<body data-texts>` (base.html); the script looks them up as (group, status or situation), "{status}"
standing for the HTTP status in a group's "failed" text.
"""

from __future__ import annotations

from care import observations, texts_sv
from care.refusals import Refusal, RefusalCode

__all__ = ["CLIENT_TEXTS"]


def _refusal_sv(code: RefusalCode, **params: object) -> str:
    """The Swedish text the server gives for this refusal (care.texts_sv), so the two never differ."""
    return texts_sv.text(Refusal(code, params))


_ALERT_REFUSALS = {
    "401": "Du är utloggad – logga in igen.",
    "403": "Åtgärden nekades (behörighet eller sessionen har gått ut).",
    "404": "Larmet finns inte längre.",
    "409": "Larmet har redan ändrats av någon annan.",
}

CLIENT_TEXTS: dict[str, dict[str, str]] = {
    "action": _ALERT_REFUSALS
    | {
        "failed": "Åtgärden misslyckades ({status}).",
        "offline": "Åtgärden misslyckades – ingen kontakt med servern.",
    },
    "ack": _ALERT_REFUSALS
    | {
        "403": "Kvitteringen nekades (behörighet eller sessionen har gått ut).",
        "409": "Larmet är redan kvitterat eller avslutat.",
        "422": "Anteckningen får vara högst 500 tecken.",
        "failed": "Kvitteringen misslyckades ({status}).",
        "offline": "Kvitteringen misslyckades – ingen kontakt med servern.",
    },
    "observation": _ALERT_REFUSALS
    | {
        # The browser could not read a number field (it would send nothing); the same texts as the
        # server's refusals of those fields, from the same decision (care.observations).
        "respiratory_rate": _refusal_sv(
            RefusalCode.RESPIRATION_IMPOSSIBLE,
            minimum=observations.RESPIRATION_MIN,
            maximum=observations.RESPIRATION_MAX,
        ),
        "oxygen_l_min": _refusal_sv(RefusalCode.OXYGEN_FLOW_RANGE, maximum=observations.OXYGEN_MAX_L_MIN),
        "saved": "Sparad.",
        "failed": "Observationen kunde inte sparas ({status}).",
        "offline": "Observationen kunde inte sparas – ingen kontakt med servern.",
    },
    "order": {
        "401": "Du är utloggad – logga in igen.",
        "403": "Åtgärden nekades (behörighet eller sessionen har gått ut).",
        "404": "Det som skulle ändras finns inte längre – ladda om sidan.",
        "409": "Någon annan har redan ändrat detta – ladda om sidan.",
        "failed": "Ändringen kunde inte sparas ({status}).",
        "offline": "Ändringen kunde inte sparas – ingen kontakt med servern.",
    },
}
