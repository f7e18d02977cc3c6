"""`hemma bench ingest`: sustained readings/s from publish to commit, and publish -> alert latency.

Both paths run in the same process against the same broker and database server:

* hemma: gateways batch `per_message` readings per QoS 1 message; the real IngestService
  writes them with COPY in batches and acknowledges after commit. Alert latency is measured
  from the publish of the message carrying a patient's first abnormal reading to the arrival of
  the alert message on `hemma/v1/alerts/{ward}` (one more MQTT hop than the baseline gets).
* naive: one reading per message, one INSERT and one commit per message in the subscriber
  callback, alert rows written in the same commit. Latency: publish -> that commit.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from broker.mqtt import drop_session, use_target
from care.enrolment import enrol_patient, ensure_ward
from core import contract
from core.settings import MqttTarget, Settings
from core.vitals import Vital
from devservices import services
from ingest.service import IngestService
from storage.db import migrate

WARD = "bench"
ABNORMAL_SPO2 = 85.0


@dataclass
class PathResult:
    name: str
    readings: int
    messages: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.readings / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(
    settings: Settings,
    *,
    patients: int,
    readings: int,
    naive_readings: int,
    per_message: int,
    latency_rate: float = 1000.0,
    latency_seconds: float = 10.0,
) -> int:
    """Two phases, each for both paths: a burst (throughput) and a paced load (latency)."""
    with ExitStack() as stack:
        db_url, db_label = _scratch_database(settings, stack)
        mqtt_url, broker_label = _broker(settings, stack)
        gateways = _seed(db_url, patients)
        print(f"Hemma ingest benchmark: {patients} patients, database {db_label}, broker {broker_label}")
        results = []
        for phase, hemma_n, naive_n, rate in (
            ("burst", readings, naive_readings, 0.0),
            (
                f"paced {latency_rate:g}/s",
                int(latency_rate * latency_seconds),
                int(latency_rate * latency_seconds),
                latency_rate,
            ),
        ):
            hemma = _run_hemma(db_url, mqtt_url, gateways, hemma_n, per_message, rate)
            _clear(db_url)
            naive = _run_naive(db_url, mqtt_url, gateways, naive_n, rate)
            _clear(db_url)
            results.append((phase, hemma, naive))
        _print(results)
    return 0


# --- set-up -----------------------------------------------------------------------------------


def _scratch_database(settings: Settings, stack: ExitStack) -> tuple[str, str]:
    if settings.database_url:
        admin = settings.database_url
    elif services.port_open("127.0.0.1", 5432):
        admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    else:
        admin = services.start_embedded_postgres(settings.data_dir / "bench")
    name = f"hemma_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    stack.callback(drop)
    params = conninfo_to_dict(admin)
    params["dbname"] = name
    url = make_conninfo(**params)  # type: ignore[arg-type]
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        ts = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return url, f"PostgreSQL {version} ({'TimescaleDB' if ts else 'plain tables'})"


def _broker(settings: Settings, stack: ExitStack) -> tuple[str, str]:
    if settings.mqtt_url:
        return settings.mqtt_url, f"{MqttTarget.from_url(settings.mqtt_url).url()} (configured)"
    broker = services.start_broker(Path(settings.data_dir) / "bench")
    stack.callback(broker.stop)
    return broker.url, f"{broker.kind} child on {broker.url}"


def _seed(db_url: str, patients: int) -> list[tuple[str, uuid.UUID]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        ensure_ward(conn, WARD, "Benchmark")
        enrolled = [
            (e.gateway_id, e.patient_id)
            for e in (
                enrol_patient(conn, ward_id=WARD, display_name=f"Bench {i}", gateway_id=f"bench-{i:05d}")
                for i in range(patients)
            )
        ]
        # The planned readings are the last hour's (`_plan`): each kit has been lent since yesterday, or
        # ingest would dead-letter them as taken before the lend (issue 11).
        conn.execute(
            "UPDATE kit_assignments SET starts_at = now() - interval '1 day'"
            " WHERE ward_id = %s AND ends_at IS NULL",
            (WARD,),
        )
        return enrolled


def _clear(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        # CASCADE: later tables point at alerts (self_care_notices, issue 10); the scratch database's
        # rollups go too, so both paths start from the same empty tables.
        conn.execute(
            "TRUNCATE observations, latest_vitals, alert_events, alerts, dead_letters, observation_rollups"
            " CASCADE"
        )


def _client(url: str, client_id: str) -> mqtt.Client:
    target = MqttTarget.from_url(url)
    client = use_target(mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id), target)
    client.max_inflight_messages_set(64)
    client.max_queued_messages_set(0)
    client.connect(target.host, target.port)
    return client


def _measurement(value: float, at: datetime) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "device_id": "AA:BB:CC:00:00:01",
        "characteristic": "2A5E",
        "raw": "",
        "effective_time": at.isoformat(),
        "received_time": at.isoformat(),
        "observations": [{"vital": Vital.SPO2.value, "value": value, "unit": "%"}],
    }


def _plan(
    gateways: list[tuple[str, uuid.UUID]], readings: int, per_message: int
) -> list[tuple[str, bytes, str | None]]:
    """Pre-built messages (topic, payload, gateway whose first abnormal reading it carries)."""
    messages = readings // per_message
    n = len(gateways)
    rounds = max(1, messages // n)
    # Gateway g sends messages g, g+n, g+2n...; its abnormal reading goes into one of them,
    # spread over the run.
    abnormal_at = {gateways[g][0]: g + ((g * rounds) // n) * n for g in range(n) if g < messages}
    start = datetime.now(UTC) - timedelta(hours=1)
    planned = []
    for m in range(messages):
        gw = gateways[m % len(gateways)][0]
        flagged = gw if abnormal_at.get(gw) == m else None
        at = start + timedelta(milliseconds=m)
        body = [_measurement(96.0, at + timedelta(microseconds=k)) for k in range(per_message)]
        if flagged:
            body[-1] = _measurement(ABNORMAL_SPO2, at + timedelta(microseconds=per_message))
        payload = json.dumps(
            {
                "v": 1,
                "message_id": str(uuid.uuid4()),
                "gateway_id": gw,
                "sent_at": at.isoformat(),
                "measurements": body,
            }
        ).encode()
        planned.append((contract.measurements_topic(gw), payload, flagged))
    return planned


def _publish(
    client: mqtt.Client,
    planned: list[tuple[str, bytes, str | None]],
    sent_at: dict[str, float],
    messages_per_s: float,
) -> None:
    infos = []
    start = time.perf_counter()
    for n, (topic, payload, flagged) in enumerate(planned):
        if messages_per_s > 0:
            pause = start + n / messages_per_s - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        if flagged:
            sent_at[flagged] = time.perf_counter()
        infos.append(client.publish(topic, payload, qos=1))
    for info in infos:
        info.wait_for_publish(timeout=120)


class PublisherProcess:
    """The gateways' side in a process of its own, as in reality, so it does not share ingest's GIL.

    Forked before the ingest threads start; it connects, waits for `go()`, publishes, and reports
    the monotonic publish time of each patient's flagged message (CLOCK_MONOTONIC is system-wide,
    so those times compare with the parent's).
    """

    def __init__(self, mqtt_url: str, planned: list[tuple[str, bytes, str | None]], messages_per_s: float):
        ctx = multiprocessing.get_context("fork")
        self._go = ctx.Event()
        self._ready = ctx.Event()
        self._results, child_end = ctx.Pipe(duplex=False)
        self._process = ctx.Process(
            target=self._main, args=(mqtt_url, planned, messages_per_s, child_end), daemon=True
        )
        self._process.start()
        if not self._ready.wait(30):
            raise RuntimeError("benchmark publisher did not connect")

    def _main(
        self, mqtt_url: str, planned: list[tuple[str, bytes, str | None]], rate: float, out: object
    ) -> None:
        client = _client(mqtt_url, f"bench-pub-{uuid.uuid4().hex[:6]}")
        client.loop_start()
        self._ready.set()
        self._go.wait()
        sent_at: dict[str, float] = {}
        _publish(client, planned, sent_at, rate)
        client.disconnect()
        client.loop_stop()
        out.send(sent_at)  # type: ignore[attr-defined]

    def go(self) -> float:
        started = time.perf_counter()
        self._go.set()
        return started

    def sent_at(self) -> dict[str, float]:
        if not self._results.poll(600):
            raise RuntimeError("benchmark publisher did not finish")
        sent: dict[str, float] = self._results.recv()
        self._process.join(10)
        return sent


# --- the two paths ----------------------------------------------------------------------------


def _run_hemma(
    db_url: str,
    mqtt_url: str,
    gateways: list[tuple[str, uuid.UUID]],
    readings: int,
    per_message: int,
    rate: float,
) -> PathResult:
    planned = _plan(gateways, readings, per_message)
    total = len(planned) * per_message
    publisher = PublisherProcess(mqtt_url, planned, rate / per_message)
    client_id = f"hemma-bench-{uuid.uuid4().hex[:6]}"
    settings = Settings(database_url=db_url, mqtt_url=mqtt_url, ingest_client_id=client_id)
    busy = [0.0, 0]

    def on_commit(result: object, seconds: float) -> None:
        busy[0] += seconds
        busy[1] += 1

    service = IngestService(settings, on_commit=on_commit)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    if not service.wait_connected(30):
        raise RuntimeError("ingest did not connect for the benchmark")

    alert_at: dict[str, float] = {}
    patient_gateway = {str(pid): gw for gw, pid in gateways}
    watcher = _client(mqtt_url, f"bench-alerts-{uuid.uuid4().hex[:6]}")

    def on_alert(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        alert = json.loads(msg.payload)
        alert_at.setdefault(patient_gateway[alert["patient_id"]], time.perf_counter())

    watcher.on_message = on_alert
    watcher.subscribe(contract.alerts_topic(WARD), qos=1)
    watcher.loop_start()
    time.sleep(0.3)
    started = publisher.go()
    deadline = time.monotonic() + 600
    while service.metrics["observations_stored"] < total and time.monotonic() < deadline:
        time.sleep(0.005)
    finished = time.perf_counter()
    sent_at = publisher.sent_at()
    alert_deadline = time.monotonic() + 30
    while len(alert_at) < len(sent_at) and time.monotonic() < alert_deadline:
        time.sleep(0.01)
    watcher.disconnect()
    watcher.loop_stop()
    service.stop()
    thread.join(30)
    drop_session(MqttTarget.from_url(mqtt_url), client_id)
    latencies = [(alert_at[gw] - sent_at[gw]) * 1000 for gw in sent_at if gw in alert_at]
    print(f"  hemma path: {busy[1]} batches, ingest busy {busy[0]:.2f} s of {finished - started:.2f} s")
    stored = service.metrics["observations_stored"]
    if stored < total:
        raise RuntimeError(f"hemma path stored {stored} of {total} readings")
    return PathResult(
        f"hemma ({per_message}/msg, COPY batches)", total, len(planned), finished - started, latencies
    )


def _run_naive(
    db_url: str, mqtt_url: str, gateways: list[tuple[str, uuid.UUID]], readings: int, rate: float
) -> PathResult:
    planned = _plan(gateways, readings, 1)
    publisher = PublisherProcess(mqtt_url, planned, rate)
    patient_of = dict(gateways)
    conn = psycopg.connect(db_url)
    alerted_at: dict[str, float] = {}
    done = threading.Event()
    stored = [0]

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        patient = patient_of[body["gateway_id"]]
        alert = False
        for m in body["measurements"]:
            for o in m["observations"]:
                conn.execute(
                    "INSERT INTO observations (time, patient_id, vital, value, unit, measurement_id,"
                    " gateway_id, device_id, characteristic, received_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now())",
                    (
                        m["effective_time"],
                        patient,
                        o["vital"],
                        o["value"],
                        o["unit"],
                        m["id"],
                        body["gateway_id"],
                        m["device_id"],
                        m["characteristic"],
                    ),
                )
                stored[0] += 1
                alert = alert or o["value"] <= ABNORMAL_SPO2
        if alert:
            conn.execute(
                "INSERT INTO alerts (patient_id, ward_id, rule, priority, state, message, observed_at)"
                " VALUES (%s, %s, 'spo2_low', 'high', 'open', 'SpO2', now())"
                " ON CONFLICT DO NOTHING",
                (patient, WARD),
            )
        conn.commit()
        if alert:
            alerted_at.setdefault(body["gateway_id"], time.perf_counter())
        if stored[0] >= len(planned):
            done.set()

    subscriber = _client(mqtt_url, f"bench-naive-{uuid.uuid4().hex[:6]}")
    subscriber.on_message = on_message
    subscriber.subscribe(contract.MEASUREMENTS_SUBSCRIPTION, qos=1)
    subscriber.loop_start()
    time.sleep(0.3)
    started = publisher.go()
    done.wait(600)
    finished = time.perf_counter()
    sent_at = publisher.sent_at()
    subscriber.disconnect()
    subscriber.loop_stop()
    conn.close()
    latencies = [(alerted_at[gw] - sent_at[gw]) * 1000 for gw in sent_at if gw in alerted_at]
    return PathResult(
        "naive (1/msg, INSERT+commit per msg)", stored[0], len(planned), finished - started, latencies
    )


def _print(results: list[tuple[str, PathResult, PathResult]]) -> None:
    print(
        f"{'phase':14} {'path':38} {'readings':>9} {'messages':>9} {'seconds':>8} {'readings/s':>11} "
        f"{'alert p50 ms':>13} {'alert p99 ms':>13} {'alerts':>7}"
    )
    for phase, *paths in results:
        for r in paths:
            print(
                f"{phase:14} {r.name:38} {r.readings:9d} {r.messages:9d} {r.seconds:8.2f} {r.rate:11.0f} "
                f"{r.percentile(0.50):13.1f} {r.percentile(0.99):13.1f} {len(r.latencies_ms):7d}"
            )
    for phase, hemma, naive in results:
        speed = hemma.rate / naive.rate if naive.rate else float("inf")
        p50 = naive.percentile(0.5) / hemma.percentile(0.5) if hemma.latencies_ms else float("nan")
        p99 = naive.percentile(0.99) / hemma.percentile(0.99) if hemma.latencies_ms else float("nan")
        print(
            f"{phase}: hemma/naive readings/s = {speed:.1f}x; naive/hemma alert latency p50 = {p50:.2f}x, "
            f"p99 = {p99:.2f}x"
        )
