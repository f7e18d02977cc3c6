"""`hemma simulate`: a ward of simulated homes, each a real `Gateway` on a virtual radio.

Every simulated patient has a home kit (oximeter, BP cuff, thermometer, scale; see
simulator.virtual_devices) on a `VirtualRadio` of its own, a physiology scenario (see
simulator.scenarios), and a `Gateway` with its own MQTT client id and queue file under
`<data_dir>/sim-queues`. All of them share one asyncio loop in one process; only the radio
is fake, so what reaches the broker is what real devices would produce.

Time: scenario time runs `speed` times faster than wall time (60: one scenario hour per
minute), while device timestamps are the real wall clock, so readings are never in the
future. Cadence: oximeter every `interval_s`, BP and temperature every 3x, weight every
10x, each with +-20 % jitter so homes do not tick in step.

For checking delivery end to end (the fault tests, or an operator's drill): `record` appends one
JSON line per message the gateways put on disk, naming each reading (measurement id and vitals),
so what the homes produced can be compared with what the database holds; `duration_s` stops the
measuring after that long and then lets the gateways run until every message is confirmed by
ingest's receipts (at most `drain_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import signal
import threading
import time
from dataclasses import dataclass
from datetime import timedelta, tzinfo
from pathlib import Path
from typing import IO

from core.contract import MeasurementBatch
from core.settings import Settings
from core.vitals import Vital
from device_profiles.catalogue import Profile, load_profiles
from gateway.errors import GatewayError
from gateway.service import Gateway
from simulator.scenarios import Scenario, make_scenario
from simulator.virtual_box import VirtualBox
from simulator.virtual_devices import HomeKit
from simulator.virtual_radio import VirtualRadio

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SimPatient:
    gateway_id: str
    display_name: str
    birth_year: int
    scenario: str
    care_reason: str  # in Swedish, as on the ward's list


# The first homes tell the demo's stories; the rest of the ward is mostly stable.
_STORY_PATIENTS = (
    ("Oskar Lindqvist", 1942, "heart_failure", "Hjärtsvikt, förvärrad"),
    ("Birgitta Holm", 1951, "infection", "Pyelonefrit, intravenös antibiotika"),
    ("Gunnar Ek", 1946, "copd", "KOL-exacerbation"),
    ("Margareta Sjöberg", 1939, "stable", "Pneumoni, i förbättring"),
    ("Lars Nyström", 1958, "stable", "Erysipelas, intravenös antibiotika"),
    ("Ingrid Åberg", 1948, "stable", "Djup ventrombos, antikoagulantiabehandling"),
)
# fmt: off
_FIRST_NAMES = (
    "Anna", "Karin", "Kerstin", "Marie", "Eva", "Ulla", "Elisabeth", "Gunilla", "Inger", "Britt",
    "Astrid", "Sigrid", "Maj", "Elsa", "Solveig", "Agneta", "Lena", "Marianne", "Barbro", "Monica",
    "Erik", "Karl", "Per", "Nils", "Jan", "Bengt", "Sven", "Olof", "Göran", "Lennart", "Stig", "Rolf",
    "Bo", "Hans", "Åke", "Leif", "Kjell", "Ove", "Arne", "Tore",
)
_LAST_NAMES = (
    "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson",
    "Svensson", "Gustafsson", "Pettersson", "Jonsson", "Jansson", "Hansson", "Bengtsson", "Jönsson",
    "Lindberg", "Jakobsson", "Magnusson", "Lindström", "Olofsson", "Lindgren", "Axelsson", "Berg",
    "Bergström", "Lundberg", "Lundgren", "Lundqvist", "Mattsson", "Berglund", "Fredriksson", "Sandberg",
    "Henriksson", "Forsberg", "Sjögren", "Danielsson", "Håkansson", "Engström", "Eklund", "Öberg",
)
# fmt: on
_REASONS = {
    "stable": (
        "Pneumoni, i förbättring",
        "Erysipelas, intravenös antibiotika",
        "Förmaksflimmer, frekvensreglering",
        "Diabetes typ 2, insulininställning",
        "Postoperativ uppföljning, höftfraktur",
        "Kronisk njursvikt, vätskebalans",
        "Palliativ vård, symtomlindring",
        "Urinvägsinfektion, i förbättring",
    ),
    "infection": ("Pyelonefrit, intravenös antibiotika", "Pneumoni, intravenös antibiotika"),
    "heart_failure": ("Hjärtsvikt, förvärrad", "Hjärtsvikt, diuretikajustering"),
    "copd": ("KOL-exacerbation", "KOL, syrgasbehandling i hemmet"),
}
_LATER_SCENARIOS = (("stable", 80), ("copd", 8), ("heart_failure", 6), ("infection", 6))


def demo_roster(n: int) -> list[SimPatient]:
    """`n` simulated patients, the same for the same index: demo_roster(k) is a prefix of demo_roster(n)."""
    roster: list[SimPatient] = []
    used: set[str] = set()
    for i in range(n):
        gateway_id = f"sim-{i + 1:04d}"
        if i < len(_STORY_PATIENTS):
            name, born, scenario, reason = _STORY_PATIENTS[i]
        else:
            rng = random.Random(f"roster-{i}")
            name = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
            while name in used:
                name = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
            born = rng.randint(1930, 1975)
            scenario = rng.choices([s for s, _ in _LATER_SCENARIOS], [w for _, w in _LATER_SCENARIOS])[0]
            reason = rng.choice(_REASONS[scenario])
        used.add(name)
        roster.append(SimPatient(gateway_id, name, born, scenario, reason))
    return roster


class SimulatedHome:
    """One patient's scenario driving one home kit on one virtual radio."""

    def __init__(
        self,
        patient: SimPatient,
        *,
        home: int,
        seed: int,
        speed: float,
        interval_s: float,
        device_tz: tzinfo,
        profiles: tuple[Profile, ...],
        press_button_after_s: float | None = None,
    ) -> None:
        self.patient = patient
        # The box's button (a virtual GPIO), pressed once `press_button_after_s` in; None: no button.
        self.box = VirtualBox() if press_button_after_s is not None else None
        self.press_button_after_s = press_button_after_s
        self.speed = speed
        self.interval_s = interval_s
        self.radio = VirtualRadio()
        self.kit = HomeKit.install(self.radio, home=home, device_tz=device_tz, profiles=profiles)
        self.scenario: Scenario = make_scenario(patient.scenario, seed=seed * 100_003 + home)
        self._rng = random.Random(f"cadence-{seed}-{home}")
        self.readings = 0

    def elapsed(self, started: float) -> timedelta:
        return timedelta(seconds=(time.monotonic() - started) * self.speed)

    async def run(self, stop: asyncio.Event) -> None:
        started = time.monotonic()
        periods = {
            "oximeter": self.interval_s,
            "blood_pressure": 3 * self.interval_s,
            "temperature": 3 * self.interval_s,
            "weight": 10 * self.interval_s,
        }
        due = {name: started + self._rng.uniform(0.1, 1.0) * period for name, period in periods.items()}
        if self.box is not None and self.press_button_after_s is not None:
            due["button"] = started + self.press_button_after_s
        while not stop.is_set():
            name = min(due, key=due.__getitem__)
            delay = due[name] - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    return
                except TimeoutError:
                    pass
            if name == "button":
                assert self.box is not None
                self.box.press()  # "kontakta mig", once
                del due["button"]
                continue
            self._measure(name, self.scenario.vitals_at(self.elapsed(started)))
            due[name] = time.monotonic() + periods[name] * self._rng.uniform(0.8, 1.2)

    def _measure(self, which: str, v: dict[Vital, float]) -> None:
        kit = self.kit
        if which == "oximeter":
            kit.measure_spo2(v[Vital.SPO2], v[Vital.PULSE_RATE])
        elif which == "blood_pressure":
            kit.measure_blood_pressure(
                v[Vital.SYSTOLIC_BP],
                v[Vital.DIASTOLIC_BP],
                v[Vital.MEAN_ARTERIAL_PRESSURE],
                v[Vital.PULSE_RATE],
            )
        elif which == "temperature":
            kit.measure_temperature(v[Vital.BODY_TEMPERATURE])
        else:
            kit.measure_weight(v[Vital.BODY_WEIGHT])
        self.readings += 1


class ProductionRecord:
    """`hemma simulate --record FILE`: one JSON line per message a gateway put on disk, written after the
    queue's commit: {"gateway_id", "message_id", "readings": [[measurement id, [vital, ...]], ...]}."""

    def __init__(self, path: Path) -> None:
        self._file: IO[str] = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def __call__(self, batch: MeasurementBatch) -> None:
        line = json.dumps(
            {
                "gateway_id": batch.gateway_id,
                "message_id": str(batch.message_id),
                "readings": [
                    [str(m.id), [o.vital.value for o in m.observations]] for m in batch.measurements
                ],
            }
        )
        with self._lock:  # gateways write from worker threads
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


async def simulate(
    settings: Settings,
    stop: asyncio.Event,
    *,
    patients: int = 24,
    speed: float = 60.0,
    interval_s: float = 10.0,
    seed: int = 1,
    record: ProductionRecord | None = None,
    duration_s: float | None = None,
    drain_s: float = 120.0,
    press_button_after_s: float | None = None,
) -> list[Gateway]:
    """Run the simulated ward until `stop` is set (or `duration_s` of measuring and a drain of at most
    `drain_s` have passed); returns the (stopped) gateways for their stats."""
    profiles = load_profiles()
    device_tz = settings.site_zone()
    queue_dir = settings.data_dir / "sim-queues"
    homes: list[SimulatedHome] = []
    gateways: list[Gateway] = []
    try:
        for index, patient in enumerate(demo_roster(patients), start=1):
            home = SimulatedHome(
                patient,
                home=index,
                seed=seed,
                speed=speed,
                interval_s=interval_s,
                device_tz=device_tz,
                profiles=profiles,
                press_button_after_s=press_button_after_s if index == 1 else None,
            )
            homes.append(home)
            gateways.append(
                Gateway(
                    settings,
                    gateway_id=patient.gateway_id,
                    queue_path=queue_dir / f"{patient.gateway_id}.sqlite",
                    ble=home.radio.backend,
                    profiles=profiles,
                    device_tz=device_tz,
                    on_enqueued=record,
                    # Version 1 of the kit's config: its own devices, as the server will publish them.
                    config=home.kit.kit_config(patient.gateway_id),
                    box=home.box,
                )
            )
    except BaseException:
        for gateway in gateways:  # not started: only their queue files are open
            gateway.queue.close()
        raise
    log.info("simulating %d homes at %gx speed, oximeter every %g s", patients, speed, interval_s)
    measuring = asyncio.Event()  # set: the homes stop measuring (at `stop`, or after `duration_s`)
    running = [asyncio.create_task(g.run(), name=f"gw-{g.gateway_id}") for g in gateways]
    driving = [asyncio.create_task(h.run(measuring), name=f"home-{h.patient.gateway_id}") for h in homes]
    reporter = asyncio.create_task(_report(gateways, stop))
    try:
        if duration_s is None:
            await stop.wait()
        else:
            await _measure_then_drain(gateways, stop, measuring, driving, duration_s, drain_s)
    finally:
        stop.set()
        measuring.set()
        await asyncio.gather(*driving, reporter, return_exceptions=True)
        for gateway in gateways:
            gateway.request_stop()
        results = await asyncio.gather(*running, return_exceptions=True)
        for gateway, result in zip(gateways, results, strict=True):
            if isinstance(result, BaseException):
                log.error("gateway %s failed: %r", gateway.gateway_id, result)
    return gateways


async def _measure_then_drain(
    gateways: list[Gateway],
    stop: asyncio.Event,
    measuring: asyncio.Event,
    driving: list[asyncio.Task[None]],
    duration_s: float,
    drain_s: float,
) -> None:
    """Measure for `duration_s`, then wait (at most `drain_s`) until every reading is confirmed."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), duration_s)
    measuring.set()
    await asyncio.gather(*driving, return_exceptions=True)
    deadline = time.monotonic() + drain_s
    while not stop.is_set() and time.monotonic() < deadline:
        # Stream windows release their newest reading when they close (5 s), so pending comes first.
        if all(g.pending_measurements == 0 and len(g.queue) == 0 for g in gateways):
            await asyncio.sleep(6.0)  # a stream window still open holds one more reading
            if all(g.pending_measurements == 0 and len(g.queue) == 0 for g in gateways):
                return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)


async def _report(gateways: list[Gateway], stop: asyncio.Event, every_s: float = 60.0) -> None:
    while True:
        try:
            await asyncio.wait_for(stop.wait(), every_s)
            return
        except TimeoutError:
            pass
        total = sum(g.measurements_enqueued for g in gateways)
        waiting = sum(len(g.queue) for g in gateways)
        online = sum(1 for g in gateways if g.publisher.connected)
        log.info(
            "simulator: %d measurements queued so far, %d messages waiting, %d/%d gateways online",
            total,
            waiting,
            online,
            len(gateways),
        )


def run(
    settings: Settings,
    *,
    patients: int = 24,
    speed: float = 60.0,
    interval_s: float = 10.0,
    seed: int = 1,
    record: Path | None = None,
    duration_s: float | None = None,
    drain_s: float = 120.0,
    press_button_after_s: float | None = None,
) -> int:
    """`hemma simulate`: blocks until SIGINT/SIGTERM (or the end of `duration_s` and the drain);
    returns the exit status: 1 when a drain ended with readings still unconfirmed."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    if patients < 1 or speed <= 0 or interval_s <= 0 or (duration_s is not None and duration_s <= 0):
        log.error("patients, speed, interval and duration must be positive")
        return 2
    recorder = ProductionRecord(record) if record is not None else None
    left = 0

    async def main() -> None:
        nonlocal left
        stop = asyncio.Event()
        if threading.current_thread() is threading.main_thread():
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        gateways = await simulate(
            settings, stop, patients=patients, speed=speed, interval_s=interval_s, seed=seed,
            record=recorder, duration_s=duration_s, drain_s=drain_s,
            press_button_after_s=press_button_after_s,
        )  # fmt: skip
        left = sum(len(g.queue) for g in gateways)
        total = {key: sum(int(g.publisher.stats()[key]) for g in gateways) for key in _TOTALS}
        log.info(
            "simulator stopped: %d measurements queued, %d messages confirmed by ingest, %d still queued; %s",
            sum(g.measurements_enqueued for g in gateways),
            total["confirmed"],
            left,
            " ".join(f"{key}={value}" for key, value in total.items()),
        )

    try:
        asyncio.run(main())
    except (GatewayError, RuntimeError) as exc:
        log.error("cannot run the simulator: %s", exc)
        return 2
    finally:
        if recorder is not None:
            recorder.close()
    return 1 if duration_s is not None and left else 0


# Publisher counters summed over the ward in the simulator's last log line.
_TOTALS = (
    "published", "resent", "acked", "no_subscribers", "confirmed", "confirmed_dead_lettered",
    "lost_in_transit", "receipts_refused", "reconnects",
)  # fmt: skip
