# ruff: noqa: F811  (the fixtures `ward` and `home` are imported from the suites that define them)
"""The kit is the patient's own (issue 10, server side): its devices, its configuration and whether
the kit applied it.

Adding and removing a device is one decision (care.kit) given the same inputs through the CLI and the
dashboard's API; every change issues a new configuration version, as does the patient's monitoring
plan; ingest publishes the version retained to a real Mosquitto and a subscriber receives exactly the
built KitConfig; a kit that stays online on an older version raises `config_not_applied`.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.kit_config import CONFIG_NOT_APPLIED_AFTER, config_not_applied_one, config_not_applied_output
from alerts.model import Priority
from care.acting import execute
from care.kit import add_device, kit_config, remove_device
from care.plans import set_monitoring_plan
from care.refusals import RefusalCode, Refused
from core import contract
from core.settings import Settings
from storage.steps import run
from tests.support.ingest import running_ingest
from tests.support.mqtt import drop_session, subscriber
from tests.support.waiting import wait_until
from tests.test_care_commands import Ward, _count, _hemma, _post, _same_refusal, ward  # noqa: F401
from tests.test_engine_scenarios import T0, Home, home  # noqa: F401

C = RefusalCode
OXI = "A4:C1:38:00:00:01"


def _add_cli(ward: Ward, gateway: str, *args: str):  # type: ignore[no-untyped-def]
    return _hemma(ward, "kit", "add-device", gateway, *args)


def _version(db: psycopg.Connection, gateway: str) -> int | None:
    row = db.execute("SELECT version FROM kit_configs WHERE gateway_id = %s", (gateway,)).fetchone()
    return None if row is None else int(row[0])


# --- the same inputs through the CLI and the dashboard -------------------------------------------------


def test_add_and_remove_from_either_entry_point_give_the_same_kit(ward: Ward, db: psycopg.Connection) -> None:
    cli = _add_cli(
        ward,
        "gw-anna",
        "--address",
        "a4:c1:38:00:00:01",
        "--profile",
        "generic_pulse_oximeter",
        "--by",
        "nurse.norr",
    )
    assert cli.returncode == 0, cli.stderr
    assert "configuration version 1" in cli.stdout
    http = _post(
        ward,
        "nurse.norr",
        f"/api/patients/{ward.patient}/kit/devices",
        {"address": "A4:C1:38:00:00:02", "profile": "generic_glucose_meter", "passkey": "123456"},
    )
    assert http.status_code == 200, http.text
    assert http.json() == {"kit": {"gateway_id": "gw-anna", "address": "A4:C1:38:00:00:02", "version": 2}}
    config = execute(db, kit_config("gw-anna"))
    assert config is not None
    assert [(d.address, d.profile, d.passkey) for d in config.devices] == [
        (OXI, "generic_pulse_oximeter", None),  # upper-cased as the contract carries it
        ("A4:C1:38:00:00:02", "generic_glucose_meter", "123456"),
    ]
    # The same device again changes nothing, from either entry point.
    again = _add_cli(
        ward, "gw-anna", "--address", OXI, "--profile", "generic_pulse_oximeter", "--by", "dr.lund"
    )
    assert again.returncode == 0 and "nothing changed" in again.stdout, again.stderr
    assert _version(db, "gw-anna") == 2
    # An IT admin replaces a faulty device; a removed one stays as history.
    http = _post(ward, "it.admin", f"/api/patients/{ward.patient}/kit/devices/A4:C1:38:00:00:02/remove", {})
    assert http.status_code == 200, http.text
    cli = _hemma(ward, "kit", "remove-device", "gw-anna", "--address", OXI, "--by", "it.admin")
    assert cli.returncode == 0, cli.stderr
    assert _version(db, "gw-anna") == 4
    assert execute(db, kit_config("gw-anna")).devices == ()  # type: ignore[union-attr]
    history = db.execute(
        "SELECT address, removed_at IS NOT NULL FROM kit_devices WHERE gateway_id = 'gw-anna' ORDER BY id"
    ).fetchall()
    assert history == [(OXI, True), ("A4:C1:38:00:00:02", True)]
    # Each change of the patient's kit is in the access log, with its entry point.
    rows = db.execute(
        "SELECT username, entry_point, context FROM access_log WHERE action = 'manage_kit_devices'"
        " AND patient_id = %s ORDER BY id",
        (ward.patient,),
    ).fetchall()
    assert rows == [
        ("nurse.norr", "cli", f"kit:gw-anna device:{OXI}"),
        ("nurse.norr", "dashboard", "kit:gw-anna device:A4:C1:38:00:00:02"),
        ("it.admin", "dashboard", "kit:gw-anna removed:A4:C1:38:00:00:02"),
        ("it.admin", "cli", f"kit:gw-anna removed:{OXI}"),
    ]
    shown = _hemma(ward, "kit", "show", "gw-anna")
    assert shown.returncode == 0 and "configuration: version 4" in shown.stdout, shown.stderr
    assert _count(db, "access_log WHERE action = 'show_kit'") == 1


@pytest.mark.parametrize(
    ("address", "profile", "passkey", "code"),
    [
        ("A4-C1-38-00-00-01", "generic_pulse_oximeter", None, C.DEVICE_ADDRESS_FORM),
        (OXI, "no_such_profile", None, C.UNKNOWN_PROFILE),
        (OXI, "generic_glucose_meter", None, C.PASSKEY_MISSING),
        (OXI, "generic_pulse_oximeter", "123456", C.PASSKEY_NOT_USED),
        (OXI, "generic_glucose_meter", "12345", C.PASSKEY_FORM),
        ("A4:C1:38:00:00:99", "generic_pulse_oximeter", None, C.DEVICE_ON_ANOTHER_KIT),
    ],
)
def test_a_refused_device_is_refused_alike_from_either_entry_point(
    ward: Ward, db: psycopg.Connection, address: str, profile: str, passkey: str | None, code: RefusalCode
) -> None:
    execute(
        db,
        add_device(
            gateway_id="gw-bertil",
            address="A4:C1:38:00:00:99",
            profile="generic_weight_scale",
            by="dr.lund",
            origin=None,
        ),
    )
    expected: Refused | None = None
    try:
        execute(
            db,
            add_device(
                gateway_id="gw-anna",
                address=address,
                profile=profile,
                passkey=passkey,
                by="nurse.norr",
                origin=None,
            ),
        )
    except Refused as exc:
        expected = exc
    assert expected is not None and expected.code is code
    extra = ("--passkey", passkey) if passkey else ()
    cli = _add_cli(ward, "gw-anna", "--address", address, "--profile", profile, *extra, "--by", "nurse.norr")
    body = {"address": address, "profile": profile} | ({"passkey": passkey} if passkey else {})
    http = _post(ward, "nurse.norr", f"/api/patients/{ward.patient}/kit/devices", body)
    _same_refusal(cli, http, expected)
    assert _count(db, "kit_devices WHERE gateway_id = 'gw-anna'") == 0
    assert _version(db, "gw-anna") is None


def test_a_kit_holds_at_most_sixteen_devices(db: psycopg.Connection, ward: Ward) -> None:
    for i in range(contract.MAX_KIT_DEVICES):
        execute(
            db,
            add_device(
                gateway_id="gw-anna",
                address=f"A4:C1:38:00:01:{i:02X}",
                profile="generic_heart_rate",
                by="nurse.norr",
                origin=None,
            ),
        )
    with pytest.raises(Refused) as refused:
        execute(
            db,
            add_device(
                gateway_id="gw-anna",
                address="A4:C1:38:00:02:00",
                profile="generic_heart_rate",
                by="nurse.norr",
                origin=None,
            ),
        )
    assert refused.value.code is C.KIT_FULL


def test_a_plan_change_issues_a_new_version_carrying_the_schedule(ward: Ward, db: psycopg.Connection) -> None:
    set_monitoring_plan(db, ward.patient, "spo2", timedelta(hours=4), "nurse.norr")
    assert _version(db, "gw-anna") is None  # no configuration before the kit's first device
    execute(
        db,
        add_device(
            gateway_id="gw-anna", address=OXI, profile="generic_pulse_oximeter", by="nurse.norr", origin=None
        ),
    )
    assert _version(db, "gw-anna") == 1
    set_monitoring_plan(db, ward.patient, "body_weight", timedelta(days=1), "nurse.norr")
    assert _version(db, "gw-anna") == 2
    config = execute(db, kit_config("gw-anna"))
    assert config is not None and config.version == 2
    assert [(s.vital.value, s.every_minutes) for s in config.schedule] == [
        ("body_weight", 1440),
        ("spo2", 240),
    ]


# --- ingest publishes the configuration ----------------------------------------------------------------


def test_ingest_publishes_the_retained_config_and_marks_it_after_the_puback(
    mqtt_url: str, ward: Ward, db: psycopg.Connection, unique_id: str
) -> None:
    execute(
        db,
        add_device(
            gateway_id="gw-anna", address=OXI, profile="generic_pulse_oximeter", by="nurse.norr", origin=None
        ),
    )
    set_monitoring_plan(db, ward.patient, "spo2", timedelta(hours=4), "nurse.norr")
    expected = execute(db, kit_config("gw-anna"))
    assert expected is not None and expected.version == 2
    settings = Settings(
        mqtt_url=mqtt_url, database_url=ward.database_url, ingest_client_id=f"ingest-kc-{unique_id}"
    )
    topic = contract.config_topic("gw-anna")
    try:
        with running_ingest(settings):
            wait_until(lambda: db.execute("SELECT published_version FROM kit_configs").fetchone() == (2,))
        # Retained: a kit connecting afterwards receives exactly the built configuration at once.
        with subscriber(mqtt_url, topic) as kit:
            [message] = kit.take(1)
        assert message.retain and message.qos == contract.CONFIG_QOS
        assert contract.decode_kit_config(message.topic, message.payload, gateway_id="gw-anna") == expected
    finally:
        drop_session(mqtt_url, settings.ingest_client_id)
        from tests.support.gateway import clear_retained

        clear_retained(mqtt_url, topic)


# --- what the kit reports, and the technical alarm -----------------------------------------------------


def _status(home: Home, at: datetime, **fields: object) -> None:
    status = contract.GatewayStatus(
        v=1, gateway_id=home.enrolment.gateway_id, state="online", at=at, **fields
    )  # type: ignore[arg-type]
    home.writer.commit([], [], [(status, home.enrolment)], now=at)


def test_a_config_not_applied_for_ten_minutes_is_a_technical_alarm(home: Home) -> None:
    execute(
        home.conn,
        add_device(
            gateway_id=home.enrolment.gateway_id,
            address=OXI,
            profile="generic_pulse_oximeter",
            by=home.nurse,
            origin=None,
        ),
    )
    home.conn.execute("UPDATE kit_configs SET issued_at = %s", (T0,))
    nearby = contract.UnknownDevice(address="A4:C1:38:00:00:77", profile="generic_weight_scale", seen_at=T0)
    _status(home, T0 + timedelta(minutes=1), unknown_devices=(nearby,))
    stored = home.conn.execute(
        "SELECT config_version, unknown_devices FROM gateways WHERE id = %s", (home.enrolment.gateway_id,)
    ).fetchone()
    assert stored is not None and stored[0] is None
    assert [contract.UnknownDevice.model_validate(d) for d in stored[1]] == [nearby]
    assert home.tick(T0 + timedelta(minutes=9)) == []
    [pending] = home.tick(T0 + timedelta(minutes=11))
    assert (pending.rule, pending.state, pending.priority) == ("config_not_applied", "pending", "low")
    [opened] = home.tick(T0 + timedelta(minutes=22))
    assert opened.kind == "opened"
    message = home.conn.execute(
        "SELECT message, condition FROM alerts WHERE id = %s", (opened.alert_id,)
    ).fetchone()
    assert message == (
        "Hemenheten har inte tillämpat konfiguration version 1 på 22 min (har ingen)",
        "technical",
    )
    _status(home, T0 + timedelta(minutes=23), config_version=1)
    [resolved] = home.tick(T0 + timedelta(minutes=24))
    assert (resolved.rule, resolved.kind) == ("config_not_applied", "resolved")


def test_an_offline_kit_raises_no_config_alarm(home: Home) -> None:
    execute(
        home.conn,
        add_device(
            gateway_id=home.enrolment.gateway_id,
            address=OXI,
            profile="generic_pulse_oximeter",
            by=home.nurse,
            origin=None,
        ),
    )
    home.conn.execute("UPDATE kit_configs SET issued_at = %s", (T0,))
    home.conn.execute("UPDATE gateways SET status = 'offline', status_at = %s", (T0,))
    changes = home.tick(T0 + timedelta(minutes=30))
    assert [c.rule for c in changes] == ["gateway_offline"]


_TIMES = st.floats(min_value=0, max_value=3600 * 4, allow_nan=False)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["online", "offline", "unknown"]),
            st.integers(1, 5),
            _TIMES,
            st.one_of(st.just(math.nan), st.integers(1, 5).map(float)),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_the_kernel_agrees_with_its_scalar_twin(rows: list[tuple[str, int, float, float]]) -> None:
    import numpy as np

    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    now_s = now.timestamp()
    patients = [uuid.UUID(int=i + 1) for i in range(len(rows))]
    requests, clears = config_not_applied_output(
        patients,
        status=[r[0] for r in rows],
        version=np.array([r[1] for r in rows], float),
        issued_at=np.array([now_s - r[2] for r in rows]),
        applied_version=np.array([r[3] for r in rows]),
        now=now,
    )
    by_patient: dict[uuid.UUID, Priority | str] = {r.patient_id: r.priority for r in requests}
    by_patient |= {c.patient_id: "clear" for c in clears}
    after = CONFIG_NOT_APPLIED_AFTER.total_seconds()
    for patient, (status, version, waited, applied) in zip(patients, rows, strict=True):
        expected = config_not_applied_one(status, version, now_s - waited, applied, now_s, after)
        assert by_patient.get(patient) == expected


def test_the_builder_refuses_nothing_the_contract_refuses(db: psycopg.Connection, ward: Ward) -> None:
    """A built config passes the contract's own decoder, passkeys included, and is what ingest sends."""
    execute(
        db,
        add_device(
            gateway_id="gw-anna",
            address=OXI,
            profile="generic_glucose_meter",
            passkey="000123",
            by="nurse.norr",
            origin=None,
        ),
    )
    config = run(db, kit_config("gw-anna"))
    assert config is not None
    payload = contract.encode(config)
    assert json.loads(payload)["devices"] == [
        {"address": OXI, "profile": "generic_glucose_meter", "passkey": "000123"}
    ]
    assert (
        contract.decode_kit_config(contract.config_topic("gw-anna"), payload, gateway_id="gw-anna") == config
    )
    execute(db, remove_device(gateway_id="gw-anna", address=OXI.lower(), by="it.admin", origin=None))
    assert _version(db, "gw-anna") == 2
