"""The shape of what reaches the dashboard from outside, checked in one place.

* `parse_json` is the one parser of JSON request bodies (pydantic-core's, strict): NaN and Infinity
  are not JSON, a lone surrogate is not Unicode, nesting beyond 200 levels is refused, and a number
  beyond a PostgreSQL bigint or a double is refused before any field sees it. `BoundedJSONRoute`
  routes read at most MAX_BODY_BYTES and parse with it.
* `check_text` is the one check of every string a person or a URL supplies (body fields, path and
  query parameters, form fields): no control characters (PostgreSQL text cannot hold NUL), no
  bidirectional overrides (they make a note read otherwise than it is stored), no lone surrogates.
* `swedish(...)` gives a field or parameter the Swedish text staff see when it is refused, whatever
  pydantic found; `refusal_for` turns a RequestValidationError into that ActionError. Texts never
  repeat the input.

What an order or an observation means (plausible limits, allowed times, who may) is decided by
care's commands (care.limits, care.plans, care.orders, care.observations).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any

from fastapi import HTTPException, Path, Request, Response
from fastapi.routing import APIRoute
from pydantic import AfterValidator, ValidationError, ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import PydanticCustomError, from_json

from dashboard.errors import ActionError, InvalidInput, NotFound

MAX_BODY_BYTES = 16 * 1024  # every action body is a few short fields
BIGINT_MAX = 2**63 - 1  # ids are PostgreSQL bigints; no JSON integer may exceed one either
MAX_ID_LENGTH = 64  # ward ids, vital names: short identifiers

REFUSED = "hemma_refused"  # the pydantic error type of a refusal with its Swedish text
TEXT_REFUSED = "hemma_text"
TEXT_MESSAGE = "Texten innehåller tecken som inte är tillåtna (till exempel styrtecken)"
NOT_JSON = "Förfrågan är inte giltig JSON"
NOT_AN_OBJECT = "Förfrågan måste vara ett JSON-objekt"
UNKNOWN_KEY = "Okänt fält i förfrågan"
FIELD_INVALID = "En uppgift i formuläret är inte giltig"
_FIELD_MESSAGES = {
    "string_too_long": "Texten är för lång",
    "too_long": "Formuläret har för många val",
    "missing": "En uppgift saknas i formuläret",
}
_JSON_MESSAGES = {
    "not_json": NOT_JSON,
    "number_out_of_range": "Förfrågan innehåller ett tal som är för stort",
}
# C0 and C1 controls but tab, line feed and carriage return; bidi embeddings, overrides and isolates
# (Trojan Source, CVE-2021-42574); UTF-16 surrogates, which no valid text contains on their own.
_FORBIDDEN_CHARACTERS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
# An unknown key is named back only when it is a plain identifier, never when it could carry data.
_PLAIN_KEY = re.compile(r"[a-z_][a-z0-9_]{0,39}")


# --- text ----------------------------------------------------------------------------------------


def is_clean_text(text: str) -> bool:
    """True when `text` can be stored and shown as it is."""
    return _FORBIDDEN_CHARACTERS.search(text) is None


def check_text(text: str) -> str:
    """The one text check, as a pydantic validator (AfterValidator(check_text))."""
    if not is_clean_text(text):
        raise PydanticCustomError(TEXT_REFUSED, TEXT_MESSAGE)
    return text


def swedish(message: str, *, status: int = 422, null: str | None = None, **by_error: str) -> WrapValidator:
    """The Swedish text staff see when the annotated field or parameter is refused, for whatever reason
    pydantic found; `by_error` gives other texts by pydantic error type (string_too_long, ...), `null`
    one for a value that is null or left out. `status` is the HTTP status of the refusal."""

    def refuse(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            kind = exc.errors()[0]["type"]
        if kind == TEXT_REFUSED and status == 422:  # an id that cannot exist stays "not found"
            text = TEXT_MESSAGE
        elif value is None and null is not None:
            text = null
        else:
            text = by_error.get(kind, message)
        raise PydanticCustomError(REFUSED, text, {"status": status})

    return WrapValidator(refuse)


# --- parameters ----------------------------------------------------------------------------------

# Any string from a query or a form, as far as the shape goes.
Text = Annotated[str, AfterValidator(check_text)]

AlertId = Annotated[int, Path(ge=1, le=BIGINT_MAX), swedish("Larmnumret måste vara ett positivt heltal")]
LimitId = Annotated[int, Path(ge=1, le=BIGINT_MAX), swedish("Gränsens nummer måste vara ett positivt heltal")]
ContactRequestId = Annotated[
    int, Path(ge=1, le=BIGINT_MAX), swedish("Kontaktförfrågan finns inte", status=404)
]
# An id that cannot exist names nothing: not found, as an unknown one (and no hint which it was).
PatientId = Annotated[uuid.UUID, Path(), swedish("Patienten finns inte", status=404)]
WardId = Annotated[
    str, Path(max_length=MAX_ID_LENGTH), AfterValidator(check_text), swedish("Okänd avdelning", status=404)
]
# care.kit checks the form (and answers the same refusal as the CLI's).
DeviceAddress = Annotated[
    str,
    Path(max_length=MAX_ID_LENGTH),
    AfterValidator(check_text),
    swedish("Enheten finns inte i utrustningen"),
]
VitalName = Annotated[
    str, Path(max_length=MAX_ID_LENGTH), AfterValidator(check_text), swedish("Okänd mätparameter")
]


# --- JSON bodies ---------------------------------------------------------------------------------


class RequestTooLarge(HTTPException):
    """A body over MAX_BODY_BYTES. An HTTPException so that FastAPI's body reading lets it through."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="Förfrågan är för stor")


def parse_json(raw: bytes) -> Any:
    """The body as JSON, strictly. Raises json.JSONDecodeError (FastAPI's cue for a 422) whose `msg`
    is a code, never the input."""
    try:
        value = from_json(raw, allow_inf_nan=False)
    except ValueError:
        raise json.JSONDecodeError("not_json", "", 0) from None
    if not _numbers_fit(value):
        raise json.JSONDecodeError("number_out_of_range", "", 0)
    return value


def _numbers_fit(value: Any) -> bool:
    """Every number a bigint or a finite double (1e400 parses as infinity, 10**400 as a Python int)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return False
        elif isinstance(item, int) and not -BIGINT_MAX - 1 <= item <= BIGINT_MAX:
            return False  # bool is an int too, and always fits
    return True


class _BoundedJSONRequest(Request):
    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            declared = self.headers.get("content-length", "")
            if declared.isdigit() and (len(declared) > 9 or int(declared) > MAX_BODY_BYTES):
                raise RequestTooLarge()
            chunks, size = [], 0
            async for chunk in self.stream():  # never more than the limit in memory
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise RequestTooLarge()
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class BoundedJSONRoute(APIRoute):
    """A route whose body is read up to MAX_BODY_BYTES and parsed by parse_json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            return await handler(_BoundedJSONRequest(request.scope, request.receive))

        return bounded


# --- refusals ----------------------------------------------------------------------------------------


def refusal_for(errors: Sequence[Any]) -> ActionError:
    """The refusal staff see for a RequestValidationError's errors: an unknown key first (as a form that
    does not fit), then a field's own Swedish text, else a text for the request's shape. Nothing of the
    input is repeated but an unknown key that is a plain identifier."""
    unknown = next((e for e in errors if e.get("type") == "extra_forbidden"), None)
    if unknown is not None:
        key = str(unknown["loc"][-1]) if unknown.get("loc") else ""
        return (
            InvalidInput(f"Okänt fält: {key}", key)
            if _PLAIN_KEY.fullmatch(key)
            else InvalidInput(UNKNOWN_KEY)
        )
    for error in errors:
        if error.get("type") == REFUSED:
            ctx = error.get("ctx") or {}
            if ctx.get("status", 422) == 404:
                return NotFound(error["msg"])
            return InvalidInput(error["msg"], ctx.get("field") or _field(error.get("loc", ())))
    first = errors[0] if errors else {}
    kind, loc = first.get("type"), tuple(first.get("loc", ()))
    if kind == "json_invalid":
        return InvalidInput(_JSON_MESSAGES.get(str((first.get("ctx") or {}).get("error")), NOT_JSON))
    if loc[:1] == ("body",):
        # A form's field (or a JSON body's) that does not fit: named, in words that fit a form too.
        name = _field(loc)
        if name is None:
            return InvalidInput(NOT_AN_OBJECT)
        return InvalidInput(_FIELD_MESSAGES.get(str(kind), FIELD_INVALID), name)
    return InvalidInput("Förfrågan är inte giltig", _field(loc))


def _field(loc: Sequence[Any]) -> str | None:
    """The name of a refused field or parameter: ('body', 'note') -> 'note', ('path', 'vital') -> 'vital'."""
    names = [part for part in loc[1:] if isinstance(part, str)]
    return names[-1] if names else None
