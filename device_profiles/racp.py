"""Record Access Control Point (0x2A52): asking a meter for the readings it stored offline.

Layout from the GSS "Record Access Control Point" entry: Op Code (uint8), Operator
(uint8), Operand (variable, defined per op code and service). Filter types and operand
sizes from the Glucose Service (GLS) v1.0, which the Pulse Oximeter Service reuses:

* Filter Type 0x01 Sequence Number (uint16 operand values), 0x02 User Facing Time (Base
  Time + Time Offset, a Date Time per value).
* "Less than or equal to" carries one value (the maximum), "greater than or equal to" one
  value (the minimum), "within range of (inclusive)" two (minimum, then maximum); "all
  records", "first record" and "last record" carry none; Abort uses the Null operator.
* Responses, indicated by the device: Response Code (op 6, Null operator, operand =
  request op code + response code value) and Number of Stored Records Response (op 5,
  Null operator, operand = uint16 count).

The gateway writes requests (`encode_racp_request`) and receives responses (`parse`
decodes 0x2A52 as a response). `decode_racp_request` and `encode_racp_response` exist for
the simulator and for round-trip tests.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from .bits import code_table
from .date_time import DATE_TIME_SIZE, Timestamp, date_time_fields, decode_date_time
from .errors import DecodeError
from .uuids import RECORD_ACCESS_CONTROL_POINT, name_of

__all__ = [
    "RacpFilterType",
    "RacpOpCode",
    "RacpOperator",
    "RacpRequest",
    "RacpResponse",
    "RacpResponseCode",
    "decode_racp_request",
    "decode_racp_response",
    "encode_racp_request",
    "encode_racp_response",
    "encode_racp_value",
]

_NAME = name_of(RECORD_ACCESS_CONTROL_POINT)


class RacpOpCode(IntEnum):
    REPORT_STORED_RECORDS = 1
    DELETE_STORED_RECORDS = 2
    ABORT_OPERATION = 3
    REPORT_NUMBER_OF_STORED_RECORDS = 4
    NUMBER_OF_STORED_RECORDS_RESPONSE = 5
    RESPONSE_CODE = 6


class RacpOperator(IntEnum):
    NULL = 0
    ALL_RECORDS = 1
    LESS_THAN_OR_EQUAL_TO = 2
    GREATER_THAN_OR_EQUAL_TO = 3
    WITHIN_RANGE_OF = 4  # inclusive
    FIRST_RECORD = 5  # the oldest
    LAST_RECORD = 6  # the most recent


class RacpFilterType(IntEnum):
    SEQUENCE_NUMBER = 1
    USER_FACING_TIME = 2


class RacpResponseCode(IntEnum):
    SUCCESS = 1
    OP_CODE_NOT_SUPPORTED = 2
    INVALID_OPERATOR = 3
    OPERATOR_NOT_SUPPORTED = 4
    INVALID_OPERAND = 5
    NO_RECORDS_FOUND = 6
    ABORT_UNSUCCESSFUL = 7
    PROCEDURE_NOT_COMPLETED = 8
    OPERAND_NOT_SUPPORTED = 9


Bound = int | Timestamp  # a sequence number or a user facing time


@dataclass(frozen=True, slots=True)
class RacpRequest:
    op_code: RacpOpCode
    operator: RacpOperator
    filter_type: RacpFilterType | None = None
    minimum: Bound | None = None  # for >= and within-range
    maximum: Bound | None = None  # for <= and within-range


@dataclass(frozen=True, slots=True)
class RacpResponse:
    """A Response Code (request_op_code + response_code) or a Number of Stored Records
    Response (number_of_records). Reserved codes stay plain ints."""

    op_code: RacpOpCode
    request_op_code: RacpOpCode | int | None = None
    response_code: RacpResponseCode | int | None = None
    number_of_records: int | None = None

    @property
    def succeeded(self) -> bool:
        return self.op_code == RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE or (
            self.response_code == RacpResponseCode.SUCCESS
        )


_REQUESTS = frozenset(
    {
        RacpOpCode.REPORT_STORED_RECORDS,
        RacpOpCode.DELETE_STORED_RECORDS,
        RacpOpCode.ABORT_OPERATION,
        RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
    }
)
# Which bounds each operator carries: (minimum, maximum).
_BOUNDS = {
    RacpOperator.ALL_RECORDS: (False, False),
    RacpOperator.LESS_THAN_OR_EQUAL_TO: (False, True),
    RacpOperator.GREATER_THAN_OR_EQUAL_TO: (True, False),
    RacpOperator.WITHIN_RANGE_OF: (True, True),
    RacpOperator.FIRST_RECORD: (False, False),
    RacpOperator.LAST_RECORD: (False, False),
}
_OPERATORS = frozenset(int(o) for o in RacpOperator)
_OP_CODES = code_table(RacpOpCode)
_RESPONSE_CODES = code_table(RacpResponseCode)
_U16 = struct.Struct("<H")
_DATE_TIME = struct.Struct("<HBBBBB")
_RESPONSE_CODE = struct.Struct("<BBBB")
_NUMBER_RESPONSE = struct.Struct("<BBH")


def _request_problem(r: RacpRequest) -> str | None:
    if r.op_code not in _REQUESTS:
        return f"op code {r.op_code!r} is not a request"
    if r.op_code == RacpOpCode.ABORT_OPERATION:
        if (
            r.operator != RacpOperator.NULL
            or r.filter_type is not None
            or (r.minimum, r.maximum) != (None, None)
        ):
            return "Abort takes the Null operator and no operand"
        return None
    wants = _BOUNDS.get(r.operator)
    if wants is None:
        return f"{r.op_code.name} needs an operator other than Null, got {r.operator!r}"
    has = (r.minimum is not None, r.maximum is not None)
    if has != wants:
        need = " and ".join(n for n, w in zip(("minimum", "maximum"), wants, strict=True) if w) or "no bound"
        return f"operator {r.operator.name} takes {need}"
    if any(wants) != (r.filter_type is not None):
        return "a filter type goes with, and only with, a bounded operator"
    for bound in (r.minimum, r.maximum):
        if bound is None:
            continue
        if r.filter_type == RacpFilterType.SEQUENCE_NUMBER and (
            isinstance(bound, bool) or not isinstance(bound, int) or not 0 <= bound <= 0xFFFF
        ):
            return f"a sequence number is an int 0..65535, got {bound!r}"
        if r.filter_type == RacpFilterType.USER_FACING_TIME and not isinstance(bound, datetime):
            return f"a user facing time is a naive datetime, got {bound!r}"
    if all(wants) and r.minimum > r.maximum:  # type: ignore[operator]
        return f"range minimum {r.minimum!r} is after maximum {r.maximum!r}"
    return None


def encode_racp_request(
    op_code: RacpOpCode,
    operator: RacpOperator = RacpOperator.NULL,
    *,
    filter_type: RacpFilterType | None = None,
    minimum: Bound | None = None,
    maximum: Bound | None = None,
) -> bytes:
    """A request the gateway writes, e.g. ``encode_racp_request(REPORT_STORED_RECORDS, ALL_RECORDS)``
    or ``(..., GREATER_THAN_OR_EQUAL_TO, filter_type=SEQUENCE_NUMBER, minimum=120)``."""
    request = RacpRequest(RacpOpCode(op_code), RacpOperator(operator), filter_type, minimum, maximum)
    problem = _request_problem(request)
    if problem:
        raise ValueError(f"{_NAME} request: {problem}")
    out = bytearray((request.op_code, request.operator))
    if filter_type is not None:
        out.append(RacpFilterType(filter_type))
        for bound in (minimum, maximum):
            if bound is None:
                continue
            if filter_type == RacpFilterType.SEQUENCE_NUMBER:
                out += _U16.pack(bound)
            else:
                out += _DATE_TIME.pack(*date_time_fields(bound))  # type: ignore[arg-type]
    return bytes(out)


def decode_racp_request(payload: bytes) -> RacpRequest:
    """The request a collector wrote; DecodeError (what a device answers Invalid ...) otherwise."""
    if len(payload) < 2:
        raise DecodeError(f"{_NAME} request: truncated: {len(payload)} byte(s), need op code and operator")
    op, operator, body = payload[0], payload[1], bytes(payload[2:])
    if op not in _REQUESTS or operator not in _OPERATORS:
        raise DecodeError(f"{_NAME} request: op code {op} / operator {operator} is not a known request")
    filter_type = minimum = maximum = None
    wants = _BOUNDS.get(RacpOperator(operator), (False, False))
    if any(wants):
        if not body or body[0] not in (1, 2):
            raise DecodeError(f"{_NAME} request: missing or unknown filter type in {body.hex()!r}")
        filter_type = RacpFilterType(body[0])
        size = 2 if filter_type == RacpFilterType.SEQUENCE_NUMBER else DATE_TIME_SIZE
        if len(body) != 1 + size * sum(wants):
            raise DecodeError(
                f"{_NAME} request: operand is {len(body)} bytes, expected {1 + size * sum(wants)}"
            )
        bounds = [_bound(body[1 + i * size : 1 + (i + 1) * size], filter_type) for i in range(sum(wants))]
        minimum = bounds.pop(0) if wants[0] else None
        maximum = bounds.pop(0) if wants[1] else None
    elif body:
        raise DecodeError(f"{_NAME} request: {len(body)} unexpected operand byte(s)")
    request = RacpRequest(RacpOpCode(op), RacpOperator(operator), filter_type, minimum, maximum)
    problem = _request_problem(request)
    if problem:
        raise DecodeError(f"{_NAME} request: {problem}")
    return request


def _bound(raw: bytes, filter_type: RacpFilterType) -> Bound:
    if filter_type == RacpFilterType.SEQUENCE_NUMBER:
        value: int = _U16.unpack(raw)[0]
        return value
    try:
        return decode_date_time(*_DATE_TIME.unpack(raw))
    except DecodeError as exc:
        raise DecodeError(f"{_NAME} request: user facing time: {exc}") from exc


def decode_racp_response(payload: bytes) -> RacpResponse:
    if len(payload) < 2:
        raise DecodeError(f"{_NAME}: truncated: {len(payload)} byte(s), need op code and operator")
    op, operator = payload[0], payload[1]
    if op == RacpOpCode.RESPONSE_CODE:
        layout = _RESPONSE_CODE
    elif op == RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
        layout = _NUMBER_RESPONSE
    else:
        raise DecodeError(
            f"{_NAME}: op code {op} is not a response (5 = number of records, 6 = response code)"
        )
    if operator != RacpOperator.NULL:
        raise DecodeError(f"{_NAME}: a response carries the Null operator, got {operator}")
    if len(payload) != layout.size:
        raise DecodeError(f"{_NAME}: op code {op} response is {layout.size} bytes, got {len(payload)}")
    if op == RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
        return RacpResponse(
            RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE,
            number_of_records=_NUMBER_RESPONSE.unpack(payload)[2],
        )
    _, _, request_op, code = _RESPONSE_CODE.unpack(payload)
    return RacpResponse(
        RacpOpCode.RESPONSE_CODE, _OP_CODES.get(request_op, request_op), _RESPONSE_CODES.get(code, code)
    )


def encode_racp_response(
    *,
    request_op_code: RacpOpCode | int | None = None,
    response_code: RacpResponseCode | int | None = None,
    number_of_records: int | None = None,
) -> bytes:
    """A device's answer: a Response Code (request_op_code + response_code) or a Number of
    Stored Records Response (number_of_records), not both."""
    if number_of_records is not None:
        if request_op_code is not None or response_code is not None:
            raise ValueError("a Number of Stored Records Response carries only the count")
        if isinstance(number_of_records, bool) or not 0 <= number_of_records <= 0xFFFF:
            raise ValueError(f"number_of_records must be 0..65535, got {number_of_records!r}")
        return _NUMBER_RESPONSE.pack(RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE, 0, number_of_records)
    if request_op_code is None or response_code is None:
        raise ValueError("a Response Code needs request_op_code and response_code")
    for value in (request_op_code, response_code):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
            raise ValueError(f"RACP codes are uint8, got {value!r}")
    return _RESPONSE_CODE.pack(RacpOpCode.RESPONSE_CODE, 0, request_op_code, response_code)


def encode_racp_value(response: RacpResponse) -> bytes:
    """The bytes of a decoded response (for `encode.measurement`)."""
    if response.op_code == RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
        return encode_racp_response(number_of_records=response.number_of_records)
    return encode_racp_response(
        request_op_code=response.request_op_code, response_code=response.response_code
    )
