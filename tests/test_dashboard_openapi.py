"""The dashboard's OpenAPI schema: served to logged-in staff only, describing the typed routes, and
fuzzed operation by operation with schemathesis against the real dashboard (issue 8, finding 14).

The fuzzer runs a fixed seed and a bounded number of examples per operation and generation mode
(HEMMA_FUZZ_EXAMPLES, default 25), as a nurse and as a physician, with the seeded wards', patients',
alerts', limits' and plans' real ids in most requests so the actions reach the database. It prints how
many requests it made, how many got a 5xx and how long it took, and fails on any server error or any
answer its schema does not describe.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http import HTTPStatus
from typing import Any

import httpx
import psycopg
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance

from alerts.thresholds import threshold_keys
from care.limits import set_personal_threshold
from care.plans import set_monitoring_plan
from core.settings import Settings
from dashboard.app import SESSION_COOKIE
from tests.support.dashboard_server import csrf_token, logged_in, running_dashboard
from tests.support.ward_seed import PASSWORD, add_alert, seed_two_wards

SECRET = "test-session-secret-openapi-0123456789"
FUZZ_SEED = 20_261_206
EXAMPLES = int(os.environ.get("HEMMA_FUZZ_EXAMPLES", "25"))
ENGLISH_STATUS_TEXTS = {status.phrase for status in HTTPStatus} | {"There was an error parsing the body"}


@dataclass
class Ids:
    """Real values for path parameters and the body fields that name things."""

    alert_id: list[int]
    patient_id: list[str]
    limit_id: list[int]
    ward_id: list[str] = field(default_factory=lambda: ["avd-norr", "avd-syd"])
    vital: list[str] = field(default_factory=lambda: ["spo2", "pulse_rate", "body_weight"])
    rule: list[str] = field(default_factory=lambda: sorted(threshold_keys()))


@pytest.fixture
def ids(db: psycopg.Connection) -> Ids:
    anna, bertil, cecilia, _ = seed_two_wards(
        db,
        [
            ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
            ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
        ],
    )
    alerts = [
        add_alert(db, p, priority=pr, rule=f"rule_{pr}") for p in (anna, bertil) for pr in ("high", "low")
    ]
    alerts += [
        add_alert(db, anna, condition="technical", rule="gateway_offline", vital=None, value=None),
        add_alert(db, bertil, state="pending", rule="pulse_high"),
        add_alert(db, cecilia),  # another ward's
    ]
    limits = [
        set_personal_threshold(db, patient_id=p.patient_id, rule="spo2_low", priority="high", limit=86,
                                     reason="KOL", set_by_username="dr.lund")
        for p in (anna, bertil)
    ]  # fmt: skip
    set_monitoring_plan(db, anna.patient_id, "spo2", timedelta(hours=4), "dr.lund")
    patients = [str(p.patient_id) for p in (anna, bertil, cecilia)]
    return Ids(alert_id=alerts, patient_id=patients, limit_id=limits)


@pytest.fixture
def base_url(database_url: str, ids: Ids) -> Iterator[str]:
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield url


def test_the_schema_is_served_to_staff_only_and_describes_the_api(base_url: str) -> None:
    assert httpx.get(base_url + "/openapi.json").status_code == 401
    for docs in ("/docs", "/redoc", "/docs/oauth2-redirect"):  # they would load scripts from a CDN
        assert httpx.get(base_url + docs).status_code == 404
    with logged_in(base_url, "nurse.norr", PASSWORD) as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    schema = response.json()
    paths, components = schema["paths"], schema["components"]["schemas"]
    snooze = paths["/api/alerts/{alert_id}/snooze"]["post"]
    (alert_id,) = snooze["parameters"]
    assert alert_id["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1, "title": "Alert Id"}
    assert snooze["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SnoozeRequest"
    }
    assert components["SnoozeRequest"]["required"] == ["minutes"]
    assert components["SnoozeRequest"]["additionalProperties"] is False
    refusal = {"$ref": "#/components/schemas/Refusal"}
    for status in ("401", "403", "404", "409", "413", "422"):
        assert snooze["responses"][status]["content"]["application/json"]["schema"] == refusal, status
    assert set(components["Refusal"]["properties"]) == {"detail", "field"}
    observation = paths["/api/patients/{patient_id}/observations"]["post"]
    assert observation["parameters"][0]["schema"]["format"] == "uuid"
    assert set(observation["responses"]) == {"201", "401", "403", "404", "409", "413", "422"}
    body = components["ObservationRequest"]["properties"]
    assert body["consciousness"]["anyOf"][0]["enum"] == ["A", "C", "V", "P", "U"]
    assert body["respiratory_rate"]["anyOf"][0] == {"type": "integer", "minimum": 2, "maximum": 80}
    api = {path for path in paths if path.startswith("/api/")}
    assert api == {
        "/api/wards/{ward_id}/overview",
        "/api/alerts/{alert_id}/acknowledge",
        "/api/alerts/{alert_id}/snooze",
        "/api/alerts/{alert_id}/resolve",
        "/api/patients/{patient_id}/observations",
        "/api/patients/{patient_id}/limits",
        "/api/patients/{patient_id}/limits/{limit_id}/revoke",
        "/api/patients/{patient_id}/limit-replay",
        "/api/patients/{patient_id}/spo2-scale",
        "/api/patients/{patient_id}/plan",
        "/api/patients/{patient_id}/plan/{vital}/clear",
        "/api/patients/{patient_id}/kit/devices",
        "/api/patients/{patient_id}/kit/devices/{address}/remove",
        "/api/patients/{patient_id}/contact-requests/{request_id}/take",
        "/api/patients/{patient_id}/contact-requests/{request_id}/close",
        "/api/patients/{patient_id}/discharge",
        "/api/patients/{patient_id}/messages",
        "/api/patients/{patient_id}/self-care",
        "/api/patients/{patient_id}/self-care/clear",
        "/api/patients/{patient_id}/charts/{vital}",  # the record's charts (dashboard.record_charts)
    }
    # FastAPI's default 422 (a list of pydantic errors) is nowhere: refusals are Swedish.
    assert "HTTPValidationError" not in components


@dataclass
class Tally:
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    without_negative: list[str] = field(default_factory=list)
    not_swedish: list[str] = field(default_factory=list)


@dataclass
class Fuzzer:
    """Sends cases to the running dashboard as one of the logged-in staff and tallies the answers."""

    base_url: str
    staff: list[tuple[requests.Session, dict[str, str]]]  # (session with the cookie, CSRF header)
    ids: Ids
    tally: Tally = field(default_factory=Tally)

    def send(self, case: Any, label: str, pick: Callable[[list[Any]], Any]) -> None:
        self._name_real_things(case, pick)
        session, headers = pick(self.staff)
        response = case.call(base_url=self.base_url, session=session, headers=headers, timeout=30)
        self.tally.requests += 1
        self.tally.statuses[response.status_code] = self.tally.statuses.get(response.status_code, 0) + 1
        what = f"{case.method} {case.formatted_path} ({label}) -> {response.status_code}"
        if response.status_code >= 500:
            self.tally.server_errors.append(what)
            return  # recorded, not raised: no shrinking, and every operation still gets its turn
        if response.status_code >= 400 and response.headers.get("content-type") == "application/json":
            detail = response.json().get("detail")
            if not isinstance(detail, str) or detail in ENGLISH_STATUS_TEXTS:  # pydantic's list, "Not Found"
                self.tally.not_swedish.append(f"{what}: {str(detail)[:80]}")
        try:
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
        except FailureGroup as failures:  # the answer is not what the schema says
            self.tally.violations += [f"{what}: {failure.title}" for failure in failures.exceptions]

    def _name_real_things(self, case: Any, pick: Callable[[list[Any]], Any]) -> None:
        """Most cases name things that exist, so the actions get past 'not found' into the database."""
        for name in list(case.path_parameters or {}):
            choices = getattr(self.ids, name, None)
            if choices and pick([True, True, True, False]):
                case.path_parameters[name] = pick(choices)
        if isinstance(case.body, dict):
            for name in ("rule", "vital"):
                if name in case.body and pick([True, False]):
                    case.body[name] = pick(getattr(self.ids, name))


def _session(client: httpx.Client) -> tuple[requests.Session, dict[str, str]]:
    """A requests session (schemathesis' transport) holding `client`'s login, and its CSRF header."""
    session = requests.Session()
    session.cookies.set(SESSION_COOKIE, client.cookies[SESSION_COOKIE])
    return session, {"X-CSRF-Token": csrf_token(client, "/wards/no-such-ward")}


def _cover(schema: Any, operation: Any, fuzzer: Fuzzer) -> None:
    """Schemathesis' coverage phase: deterministic boundary values and wrong types for every parameter."""
    rng = random.Random(FUZZ_SEED)
    config = schema.config.generation_for(operation=operation, phase="coverage")
    for case in schema.iter_coverage_cases(
        operation, generation_modes=list(GenerationMode), generation_config=config
    ):
        fuzzer.send(case, "coverage", rng.choice)


def _fuzz(operation: Any, mode: GenerationMode, fuzzer: Fuzzer) -> None:
    """Hypothesis-generated cases, positive (fitting the schema) or negative (not), from a fixed seed."""

    @seed(FUZZ_SEED)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        fuzzer.send(case, mode.value, lambda choices: data.draw(st.sampled_from(choices)))

    try:
        run()
    except Unsatisfiable:
        # An operation with nothing to get wrong (GET /, /metrics) has no negative cases at all.
        assert mode is GenerationMode.NEGATIVE, operation.path
        fuzzer.tally.without_negative.append(f"{operation.method.upper()} {operation.path}")


def test_fuzzing_every_operation_finds_no_server_error(base_url: str, ids: Ids) -> None:
    with (
        logged_in(base_url, "dr.lund", PASSWORD) as physician,
        logged_in(base_url, "nurse.norr", PASSWORD) as nurse,
    ):
        schema = schemathesis.openapi.from_dict(physician.get("/openapi.json").json())
        fuzzer = Fuzzer(base_url, [_session(physician), _session(nurse)], ids)
        operations = [result.ok() for result in schema.get_all_operations()]
        started = time.monotonic()
        for operation in operations:
            _cover(schema, operation, fuzzer)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(operation, mode, fuzzer)
        elapsed = time.monotonic() - started
    tally = fuzzer.tally
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(tally.statuses.items()))
    print(
        f"\nschemathesis {schemathesis.__version__}, seed {FUZZ_SEED}, coverage phase and {EXAMPLES} examples"
        f" per operation and mode: {len(operations)} operations, {tally.requests} requests,"
        f" {len(tally.server_errors)} with a 5xx, {len(tally.violations)} answers outside the schema,"
        f" {elapsed:.1f} s ({statuses}); no negative cases for {', '.join(tally.without_negative) or 'none'}"
    )
    assert len(operations) >= 19
    assert tally.requests >= len(operations) * 2 * EXAMPLES // 2
    assert tally.server_errors == []
    assert tally.violations == []
    assert tally.not_swedish == []
    assert any(200 <= status < 300 for status in tally.statuses)  # the fuzzer got through, too
