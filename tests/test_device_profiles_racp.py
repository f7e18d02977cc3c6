"""Record Access Control Point (0x2A52): requests the gateway writes, responses it receives.

Requests are written as hex from the RACP layout (op code, operator, filter type, operand)
with GLS filter types (0x01 sequence number as uint16, 0x02 user facing time as Date Time)."""

from __future__ import annotations

from datetime import datetime

import pytest

from device_profiles import (
    DecodeError,
    Normalised,
    RacpFilterType,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponse,
    RacpResponseCode,
    decode_racp_request,
    encode,
    normalise,
    parse,
)

OP = RacpOpCode
OPERATOR = RacpOperator
SEQ = RacpFilterType.SEQUENCE_NUMBER
TIME = RacpFilterType.USER_FACING_TIME
T1, T2 = datetime(2024, 3, 1, 8, 30), datetime(2024, 3, 2, 20, 0)
T1_HEX, T2_HEX = "e807 03 01 08 1e 00", "e807 03 02 14 00 00"

REQUESTS = [
    ("0101", RacpRequest(OP.REPORT_STORED_RECORDS, OPERATOR.ALL_RECORDS)),
    ("0102 01 0001", RacpRequest(OP.REPORT_STORED_RECORDS, OPERATOR.LESS_THAN_OR_EQUAL_TO, SEQ, maximum=256)),
    (
        "0103 01 7800",
        RacpRequest(OP.REPORT_STORED_RECORDS, OPERATOR.GREATER_THAN_OR_EQUAL_TO, SEQ, minimum=120),
    ),
    ("0104 01 0a00 1400", RacpRequest(OP.REPORT_STORED_RECORDS, OPERATOR.WITHIN_RANGE_OF, SEQ, 10, 20)),
    ("0105", RacpRequest(OP.REPORT_STORED_RECORDS, OPERATOR.FIRST_RECORD)),
    ("0106", RacpRequest(OP.REPORT_STORED_RECORDS, OPERATOR.LAST_RECORD)),
    (
        f"0102 02 {T2_HEX}",
        RacpRequest(OP.REPORT_STORED_RECORDS, OPERATOR.LESS_THAN_OR_EQUAL_TO, TIME, maximum=T2),
    ),
    (
        f"0103 02 {T1_HEX}",
        RacpRequest(OP.REPORT_STORED_RECORDS, OPERATOR.GREATER_THAN_OR_EQUAL_TO, TIME, minimum=T1),
    ),
    (
        f"0104 02 {T1_HEX} {T2_HEX}",
        RacpRequest(OP.REPORT_STORED_RECORDS, OPERATOR.WITHIN_RANGE_OF, TIME, T1, T2),
    ),
    ("0201", RacpRequest(OP.DELETE_STORED_RECORDS, OPERATOR.ALL_RECORDS)),
    ("0204 01 0100 0100", RacpRequest(OP.DELETE_STORED_RECORDS, OPERATOR.WITHIN_RANGE_OF, SEQ, 1, 1)),
    ("0300", RacpRequest(OP.ABORT_OPERATION, OPERATOR.NULL)),
    ("0401", RacpRequest(OP.REPORT_NUMBER_OF_STORED_RECORDS, OPERATOR.ALL_RECORDS)),
    (
        "0403 01 7800",
        RacpRequest(OP.REPORT_NUMBER_OF_STORED_RECORDS, OPERATOR.GREATER_THAN_OR_EQUAL_TO, SEQ, 120),
    ),
    ("0406", RacpRequest(OP.REPORT_NUMBER_OF_STORED_RECORDS, OPERATOR.LAST_RECORD)),
]


@pytest.mark.parametrize(("hex_payload", "request_"), REQUESTS, ids=[h for h, _ in REQUESTS])
def test_requests(hex_payload: str, request_: RacpRequest) -> None:
    payload = bytes.fromhex(hex_payload)
    written = encode.racp_request(
        request_.op_code,
        request_.operator,
        filter_type=request_.filter_type,
        minimum=request_.minimum,
        maximum=request_.maximum,
    )
    assert written == payload
    assert decode_racp_request(payload) == request_


def test_report_all_records_is_what_profiles_ask_for() -> None:
    assert encode.racp_report_all_records() == bytes.fromhex("0101")


REPORT = OP.REPORT_STORED_RECORDS


def _request(op_code: RacpOpCode, operator: RacpOperator, **kwargs: object) -> dict[str, object]:
    return {"op_code": op_code, "operator": operator, **kwargs}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (_request(OP.ABORT_OPERATION, OPERATOR.ALL_RECORDS), "Abort takes the Null operator"),
        (_request(REPORT, OPERATOR.NULL), "needs an operator other than Null"),
        (_request(REPORT, OPERATOR.LESS_THAN_OR_EQUAL_TO, filter_type=SEQ, minimum=1), "takes maximum"),
        (
            _request(REPORT, OPERATOR.WITHIN_RANGE_OF, filter_type=SEQ, minimum=20, maximum=10),
            "range minimum 20 is after maximum 10",
        ),
        (
            _request(REPORT, OPERATOR.GREATER_THAN_OR_EQUAL_TO, filter_type=SEQ, minimum=70_000),
            "sequence number is an int 0..65535",
        ),
        (
            _request(REPORT, OPERATOR.GREATER_THAN_OR_EQUAL_TO, filter_type=TIME, minimum=5),
            "user facing time is a naive datetime",
        ),
        (_request(REPORT, OPERATOR.GREATER_THAN_OR_EQUAL_TO, minimum=5), "a filter type goes with"),
        (_request(REPORT, OPERATOR.ALL_RECORDS, filter_type=SEQ), "filter type"),
        (_request(OP.RESPONSE_CODE, OPERATOR.NULL), "is not a request"),
    ],
)
def test_invalid_requests_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode.racp_request(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "hex_payload",
    [
        "01",  # no operator
        "0107",  # reserved operator
        "0700",  # reserved op code
        "0103",  # operand missing
        "0103 03 7800",  # reserved filter type
        "0103 01 78",  # operand cut short
        "0101 00",  # operand where none belongs
        "0104 01 1400 0a00",  # range backwards
        "0103 02 e807 0d 01 08 1e 00",  # month 13
    ],
)
def test_malformed_requests(hex_payload: str) -> None:
    with pytest.raises(DecodeError, match=r"Record Access Control Point \(0x2A52\) request"):
        decode_racp_request(bytes.fromhex(hex_payload))


# --- responses ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", list(RacpResponseCode))
def test_response_codes_have_names(code: RacpResponseCode) -> None:
    payload = bytes([0x06, 0x00, 0x01, code])
    decoded = parse("2A52", payload)
    assert decoded == RacpResponse(OP.RESPONSE_CODE, OP.REPORT_STORED_RECORDS, code)
    assert decoded.succeeded is (code == RacpResponseCode.SUCCESS)
    assert encode.measurement(decoded) == payload


def test_reserved_response_codes_are_kept() -> None:
    decoded = parse("2A52", bytes.fromhex("0600 070a"))
    assert decoded == RacpResponse(OP.RESPONSE_CODE, 7, 10)
    assert type(decoded.request_op_code) is int
    assert not decoded.succeeded


def test_number_of_stored_records() -> None:
    decoded = parse("2A52", bytes.fromhex("0500 2a01"))
    assert decoded == RacpResponse(OP.NUMBER_OF_STORED_RECORDS_RESPONSE, number_of_records=298)
    assert decoded.succeeded
    assert encode.racp_response(number_of_records=298) == bytes.fromhex("0500 2a01")


@pytest.mark.parametrize(
    ("hex_payload", "message"),
    [
        ("", "truncated"),
        ("06", "truncated"),
        ("0601 0101", "Null operator"),
        ("0101", "op code 1 is not a response"),
        ("0000", "op code 0 is not a response"),
        ("0600 01", "response is 4 bytes"),
        ("0600 0101 00", "response is 4 bytes"),
        ("0500 2a", "response is 4 bytes"),
        ("0500 2a00 0000", "response is 4 bytes"),  # GLS / PLXS: the count is a uint16
    ],
)
def test_malformed_responses(hex_payload: str, message: str) -> None:
    with pytest.raises(DecodeError, match=rf"Record Access Control Point \(0x2A52\): .*{message}"):
        parse("2A52", bytes.fromhex(hex_payload))


def test_response_encoder_refusals() -> None:
    with pytest.raises(ValueError, match="only the count"):
        encode.racp_response(number_of_records=1, response_code=1)
    with pytest.raises(ValueError, match="needs request_op_code and response_code"):
        encode.racp_response(response_code=1)
    with pytest.raises(ValueError, match=r"0\.\.65535"):
        encode.racp_response(number_of_records=70_000)


def test_responses_are_not_observations() -> None:
    assert normalise(parse("2A52", bytes.fromhex("0600 0101"))) == Normalised(None)


def test_every_request_op_code_operator_and_filter() -> None:
    bounds = {
        OPERATOR.ALL_RECORDS: (False, False),
        OPERATOR.LESS_THAN_OR_EQUAL_TO: (False, True),
        OPERATOR.GREATER_THAN_OR_EQUAL_TO: (True, False),
        OPERATOR.WITHIN_RANGE_OF: (True, True),
        OPERATOR.FIRST_RECORD: (False, False),
        OPERATOR.LAST_RECORD: (False, False),
    }
    values = {SEQ: (("0a00", 10), ("1400", 20)), TIME: ((T1_HEX, T1), (T2_HEX, T2))}
    seen = 0
    for op in (OP.REPORT_STORED_RECORDS, OP.DELETE_STORED_RECORDS, OP.REPORT_NUMBER_OF_STORED_RECORDS):
        for operator, (has_min, has_max) in bounds.items():
            for filter_type in (SEQ, TIME) if has_min or has_max else (None,):
                hex_payload = f"{op:02x}{operator:02x}"
                minimum = maximum = None
                if filter_type is not None:
                    (low_hex, low), (high_hex, high) = values[filter_type]
                    hex_payload += f"{filter_type:02x}"
                    if has_min:
                        hex_payload, minimum = hex_payload + low_hex, low
                    if has_max:
                        hex_payload, maximum = hex_payload + high_hex, high
                payload = bytes.fromhex(hex_payload.replace(" ", ""))
                expected = RacpRequest(op, operator, filter_type, minimum, maximum)
                assert decode_racp_request(payload) == expected
                written = encode.racp_request(
                    op, operator, filter_type=filter_type, minimum=minimum, maximum=maximum
                )
                assert written == payload
                seen += 1
    assert seen == 3 * (3 + 3 * 2)
