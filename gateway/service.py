"""`Gateway`: BLE devices in, `MeasurementBatch` messages into the durable queue, published by MQTT.

    BleCentral --values--> NotificationDecoder --Measurement--> [StreamRateLimiter] --> batch
        --encode()--> queue --> Publisher

Streaming characteristics (BCI, PLX Continuous, Heart Rate) pass the rate limiter: at most
one measurement per device and stream every `stream_interval_s`, the newest of the window
(see gateway.rate_limit); every other measurement goes straight to the batch.

`clock` is the gateway's clock (aware; default the system clock): receive times, and the
time written to device clocks, shown in `device_tz`.

The BLE side and the batching run on one asyncio loop; the queue write (an fsync) runs in a
worker thread so it never blocks the loop; the publisher has its own thread (see
gateway.publisher). Measurements are batched per message, up to
`gateway_batch_max_measurements` or `gateway_batch_linger_s` after the first one waits.

Device facts (gateway.device_facts): every Battery Level read is remembered; the publisher's
retained "online" status carries the latest level of each device, at connect, every
`status_interval_s` (default 10 minutes, `HEMMA_GATEWAY_STATUS_INTERVAL_S`) and promptly when a
level changes markedly.

The kit's configuration (gateway.kit; issue 10): only devices listed in the applied `KitConfig`
are read. The publisher's client receives configs from the kit's retained config topic and hands
them over; `_offer_config` applies a version higher than the applied one without a restart (a
removed device is disconnected, an added one connected at its next advertisement), saves it in
the queue file (so a reboot without network still reads only the kit's devices) and asks for a
status at once, which reports `config_version`. An equal or lower version is ignored (the retained
config again after a reconnect). At start the gateway applies the higher of the saved config and
`config` (an initial one given by the simulator, tests or `hemma simulate`). With neither, it
reads nothing and reports compatible devices in range as unknown until the server publishes one:
reading whatever is in range would record a neighbour's values as this patient's.

The box's button and light (gateway.box; issue 10): `box` (a `BoxHardware`, e.g. the simulator's
`VirtualBox`), else gpiozero on the pins `gateway_button_pin`/`gateway_light_pin`, else none. A press
is written to the queue on the button's own thread; the light is set every `box_tick_s` from the
queue (a contact request waiting for its receipt) and the applied config's schedule. Each measurements
message records, in the same commit, when each of its vitals was last taken, for the reminder.

`run(settings)` is the `hemma gateway` entry point: the real bleak backend, until SIGINT or
SIGTERM, exit status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from types import TracebackType

from core.contract import (
    GATEWAY_ID_PATTERN,
    MAX_MEASUREMENTS_PER_BATCH,
    KitConfig,
    Measurement,
    MeasurementBatch,
    PayloadRejected,
    UnknownDevice,
    config_topic,
    decode_kit_config,
    encode,
    measurements_topic,
)
from core.settings import Settings
from device_profiles.catalogue import Profile, load_profiles
from gateway.ble import BleBackend, BleCentral
from gateway.box import Box, BoxHardware, ButtonGuard, hardware_from_settings
from gateway.decoding import NotificationDecoder
from gateway.device_facts import DeviceFacts
from gateway.errors import ConfigurationError, GatewayError, QueueFull
from gateway.publisher import Publisher
from gateway.queue import StoreAndForwardQueue
from gateway.rate_limit import DEFAULT_STREAM_INTERVAL_S, StreamRateLimiter

log = logging.getLogger(__name__)

# Keep messages well under ingest's default 256 KiB limit (ingest_max_payload_bytes).
MAX_MESSAGE_BYTES = 192 * 1024
_QUEUE_FULL_RETRY_MAX_S = 30.0


class Gateway:
    """One home's gateway; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        gateway_id: str | None = None,
        queue_path: Path | None = None,
        queue: StoreAndForwardQueue | None = None,
        ble: BleBackend | None = None,
        profiles: Sequence[Profile] | None = None,
        device_tz: tzinfo | None = None,
        clock: Callable[[], datetime] | None = None,
        stream_interval_s: float = DEFAULT_STREAM_INTERVAL_S,
        status_interval_s: float | None = None,
        on_enqueued: Callable[[MeasurementBatch], None] | None = None,
        config: KitConfig | None = None,
        box: BoxHardware | None = None,
        box_tick_s: float = 1.0,
    ) -> None:
        gw = gateway_id or settings.gateway_id
        if not gw or not GATEWAY_ID_PATTERN.match(gw):
            raise ConfigurationError(
                f"gateway id {gw!r} is missing or invalid: "
                "set HEMMA_GATEWAY_ID to 3-63 characters of a-z, 0-9 and '-'"
            )
        self.gateway_id = gw
        self.topic = measurements_topic(gw)
        self.batch_max = min(settings.gateway_batch_max_measurements, MAX_MEASUREMENTS_PER_BATCH)
        self.linger_s = settings.gateway_batch_linger_s
        path = queue_path or settings.gateway_queue_path or settings.data_dir / f"gateway-{gw}.sqlite"
        target = settings.mqtt()
        profiles = profiles if profiles is not None else load_profiles()
        # The devices show the site's local time (HEMMA_SITE_TIMEZONE, a zone with its daylight-saving
        # rules): not the Pi's /etc/localtime, which an image may leave at UTC or Europe/London, and
        # not a fixed offset, which would read every device timestamp an hour wrong after a clock change.
        zone = device_tz or settings.site_zone()
        self.clock = clock or _utc_now
        self.device_facts = DeviceFacts()
        self.decoder = NotificationDecoder(device_tz=zone, on_battery=self._on_battery)
        self.streams = StreamRateLimiter(stream_interval_s)
        self.central = BleCentral(
            ble or BleBackend(),
            profiles,
            self._on_value,
            device_tz=zone,
            clock=self.clock,
            on_unknown=self._on_unknown_device,
        )
        # The box's button and light (gateway.box): `box`, else GPIO pins from the settings (gpiozero).
        hardware = (
            box
            if box is not None
            else hardware_from_settings(settings.gateway_button_pin, settings.gateway_light_pin)
        )
        # Opened last: nothing after this can fail and leave the file locked.
        self.queue = queue if queue is not None else StoreAndForwardQueue(path)
        self.box: Box | None = None
        self.box_tick_s = box_tick_s
        if hardware is not None:
            self.box = Box(
                hardware,
                self.queue,
                gw,
                zone=settings.site_zone(),
                clock=self.clock,
                on_queued=self._wake_publisher,
                guard=ButtonGuard(settings.gateway_button_min_interval_s),
            )
        self.configs_applied = 0
        self.configs_ignored = 0  # not newer than the applied one (a retained config again)
        self.config_save_failures = 0
        self._config_lock: asyncio.Lock | None = None
        self._config_tasks: set[asyncio.Task[None]] = set()
        self._apply_initial_config(config)
        self.publisher = Publisher(
            target,
            gw,
            self.queue,
            inflight_max=settings.gateway_inflight_max,
            protocol=settings.mqtt_protocol,
            device_facts=self.device_facts.snapshot,
            status_interval_s=_status_interval(settings, status_interval_s),
            receipt_timeout_s=settings.gateway_receipt_timeout_s,
            receipt_timeout_max_s=max(
                settings.gateway_receipt_timeout_max_s, settings.gateway_receipt_timeout_s
            ),
            kit_facts=self._kit_facts,
            on_config=self._config_arrived,
        )
        # Called (on a worker thread) with each message once it is on disk: `hemma simulate --record`.
        self.on_enqueued = on_enqueued
        self.batches_enqueued = 0
        self.measurements_enqueued = 0
        self.queue_full_events = 0
        self.internal_errors = 0
        self._pending: list[Measurement] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = threading.Event()
        self._have_pending: asyncio.Event | None = None
        self._batch_full: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()

    @property
    def pending_measurements(self) -> int:
        """Decoded measurements not yet queued (lingering for a batch, or held while the queue is full)."""
        return len(self._pending)

    def stats(self) -> dict[str, object]:
        return {
            "gateway_id": self.gateway_id,
            **self.publisher.stats(),
            **self.central.stats(),
            "pending_measurements": len(self._pending),
            "batches_enqueued": self.batches_enqueued,
            "measurements_enqueued": self.measurements_enqueued,
            "queue_full_events": self.queue_full_events,
            "internal_errors": self.internal_errors,
            "configs_applied": self.configs_applied,
            "configs_ignored": self.configs_ignored,
            "config_save_failures": self.config_save_failures,
            **(self.box.stats() if self.box is not None else {}),
            **self.decoder.counters.as_dict(),
            "stream_superseded": dict(self.streams.superseded),
        }

    # --- the kit's configuration ------------------------------------------------------------------

    @property
    def config(self) -> KitConfig | None:
        """The kit configuration applied now."""
        return self.central.kit.config

    def _apply_initial_config(self, given: KitConfig | None) -> None:
        """The higher version of the saved config and `given`; `given` is saved when it wins."""
        saved = self._saved_config()
        if given is not None and given.gateway_id != self.gateway_id:
            raise ConfigurationError(
                f"the initial kit config is for gateway {given.gateway_id!r}, not {self.gateway_id!r}"
            )
        if given is not None and (saved is None or given.version > saved.version):
            self.queue.save_kit_config(given.version, encode(given))
            chosen: KitConfig | None = given
        else:
            chosen = saved
        if chosen is None:
            log.warning(
                "gateway %s: no kit configuration yet; reading no device until the server sends one",
                self.gateway_id,
            )
            return
        self.central.apply_config(chosen)
        if self.box is not None:
            self.box.apply_config(chosen)
        log.info(
            "gateway %s: kit config version %d (%d devices)",
            self.gateway_id,
            chosen.version,
            len(chosen.devices),
        )

    def _saved_config(self) -> KitConfig | None:
        payload = self.queue.kit_config()
        if payload is None:
            return None
        try:
            return decode_kit_config(config_topic(self.gateway_id), payload, gateway_id=self.gateway_id)
        except PayloadRejected as exc:  # written by this gateway, so a damaged file or another kit's
            log.error(
                "gateway %s: the saved kit config in %s is not valid (%s); ignoring it",
                self.gateway_id,
                self.queue.path,
                exc.reason,
            )
            return None

    def _kit_facts(self) -> tuple[int | None, tuple[UnknownDevice, ...]]:
        """For the status, on the publisher thread: both are replaced, never mutated, on the loop."""
        kit = self.central.kit
        return kit.version, kit.unknown_snapshot

    def _config_arrived(self, config: KitConfig, payload: bytes) -> None:
        """On the publisher thread: hand over to the loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # not running: the retained config comes again on the next connection
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._start_offer, config, payload)

    def _start_offer(self, config: KitConfig, payload: bytes) -> None:
        task = asyncio.get_running_loop().create_task(self._offer_config(config, payload), name="kit-config")
        self._config_tasks.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._config_tasks.discard)

    async def _offer_config(self, config: KitConfig, payload: bytes) -> None:
        """Apply `config` if its version is higher than the applied one; save it first."""
        if self._config_lock is None:
            self._config_lock = asyncio.Lock()
        async with self._config_lock:  # one at a time, so versions are compared with what is applied
            applied = self.central.kit.version
            if applied is not None and config.version <= applied:
                self.configs_ignored += 1
                log.debug(
                    "gateway %s: kit config version %d ignored (have %d)",
                    self.gateway_id,
                    config.version,
                    applied,
                )
                return
            try:
                await asyncio.to_thread(self.queue.save_kit_config, config.version, payload)
            except Exception:  # applied all the same: staff changed the kit; a reboot may fall back
                self.config_save_failures += 1
                log.exception(
                    "gateway %s: cannot save kit config version %d", self.gateway_id, config.version
                )
            self.central.apply_config(config)
            if self.box is not None:
                self.box.apply_config(config)
            self.configs_applied += 1
            log.info(
                "gateway %s: kit config version %d applied (%d devices, was %s)",
                self.gateway_id,
                config.version,
                len(config.devices),
                applied,
            )
            self.publisher.request_status()

    def _wake_publisher(self) -> None:
        """A contact request is on disk (any thread): send it now."""
        publisher: Publisher | None = getattr(self, "publisher", None)  # a press during __init__
        if publisher is not None:
            publisher.wake()

    async def _box_loop(self) -> None:
        """About once a second: the box's light from the queue and the plan; held requests retried."""
        assert self.box is not None and self._stop is not None
        while not self._stop.is_set():
            try:
                await asyncio.to_thread(self.box.tick)
            except Exception:  # the light matters less than the readings; keep going
                self.internal_errors += 1
                log.exception("gateway %s: cannot update the box's light", self.gateway_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.box_tick_s)

    def _on_unknown_device(self) -> None:
        """A compatible device that is not the kit's came into range: say so in a status soon."""
        self.publisher.request_status()

    # --- lifetime -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until `request_stop()`; on the way out every decoded measurement is in the queue."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._have_pending = asyncio.Event()
        self._batch_full = asyncio.Event()
        if self._stop_requested.is_set():
            self._stop.set()
        self.publisher.start()
        self._started.set()
        batcher = asyncio.create_task(self._batch_loop(), name=f"batcher-{self.gateway_id}")
        central = asyncio.create_task(self.central.run(self._stop), name=f"ble-{self.gateway_id}")
        box = None
        if self.box is not None:
            box = asyncio.create_task(self._box_loop(), name=f"box-{self.gateway_id}")
        try:
            await self._stop.wait()
        finally:
            self._stop.set()
            await asyncio.gather(central, *([box] if box is not None else []), return_exceptions=True)
            if self.box is not None:
                self.box.close()  # no press after this: the queue closes below
            for measurement in self.streams.release_all():  # the newest of each open window
                self._pending.append(measurement)
            # Wake the batcher so it writes what is pending now, without lingering, and returns.
            self._have_pending.set()
            self._batch_full.set()
            await asyncio.gather(batcher, return_exceptions=True)
            if self._pending:
                log.error(
                    "gateway %s: stopped with %d measurements that could not be queued",
                    self.gateway_id,
                    len(self._pending),
                )
            await asyncio.to_thread(self.publisher.stop)
            self.queue.close()

    def request_stop(self) -> None:
        """Ask `run()` to finish; safe from any thread and from signal handlers."""
        self._stop_requested.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)

    def start(self) -> Gateway:
        """Run on a background thread (for tests and embedding); `stop()` ends it."""
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self.run()), name=f"gw-{self.gateway_id}", daemon=True
        )
        self._thread.start()
        self._started.wait(10)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise GatewayError(f"gateway {self.gateway_id} did not stop within {timeout:.0f} s")

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- values to batches ------------------------------------------------------------------------

    def _on_value(self, address: str, characteristic: str, payload: bytes) -> None:
        """Called on the loop for every notification, indication and read."""
        try:
            measurement = self.decoder.decode(address, characteristic, payload, self.clock())
        except Exception:  # a bug must not stop the other devices' readings; no payload in the log
            self.internal_errors += 1
            log.exception(
                "gateway %s: failed to handle a value from %s/%s", self.gateway_id, address, characteristic
            )
            return
        if measurement is None:
            return
        if self.streams.applies_to(measurement):
            key = self.streams.key(measurement)
            if not (self._stop and self._stop.is_set()):
                if self.streams.offer(measurement):
                    assert self._loop is not None
                    self._loop.call_later(self.streams.interval_s, self._release_stream, key)
                return
            # Stopping: no window will close any more; the held one first, to keep reading order.
            self._release_stream(key)
        self._add_pending(measurement)

    def _on_battery(self, address: str, percent: int, received: datetime) -> None:
        """A device's Battery Level arrived (read at connect, or notified)."""
        if self.device_facts.record_battery(address, percent, received):
            self.publisher.request_status()

    def _release_stream(self, key: str) -> None:
        """The stream window of `key` closed: its newest measurement goes to the batch."""
        measurement = self.streams.release(key)
        if measurement is not None:
            self._add_pending(measurement)

    def _add_pending(self, measurement: Measurement) -> None:
        self._pending.append(measurement)
        assert self._have_pending is not None and self._batch_full is not None
        self._have_pending.set()
        if len(self._pending) >= self.batch_max:
            self._batch_full.set()

    async def _batch_loop(self) -> None:
        """Batch and enqueue until stopped and nothing is pending; never cancelled, so a batch is
        never half written (cancelling during the queue write would enqueue it twice)."""
        assert self._have_pending is not None and self._batch_full is not None and self._stop is not None
        retry_s = 1.0
        while True:
            await self._have_pending.wait()
            if not self._pending:
                if self._stop.is_set():
                    return
                self._have_pending.clear()
                continue
            if len(self._pending) < self.batch_max and not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._batch_full.wait(), self.linger_s)
            try:
                await self._enqueue(self._pending[: self.batch_max])
            except Exception as exc:
                # Back-pressure: the measurements stay pending (same ids) and we try again later.
                if isinstance(exc, QueueFull):
                    self.queue_full_events += 1
                    log.error(
                        "gateway %s: %s; %d measurements held in memory, retry in %.0f s",
                        self.gateway_id,
                        exc,
                        len(self._pending),
                        retry_s,
                    )
                else:
                    self.internal_errors += 1
                    log.exception(
                        "gateway %s: cannot write to the queue; retry in %.0f s", self.gateway_id, retry_s
                    )
                if self._stop.is_set():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), retry_s)
                retry_s = min(retry_s * 2, _QUEUE_FULL_RETRY_MAX_S)
                continue
            retry_s = 1.0
            if len(self._pending) < self.batch_max and not self._stop.is_set():
                self._batch_full.clear()

    async def _enqueue(self, measurements: list[Measurement]) -> None:
        """Write measurements as one or more messages, then drop them from pending (they are on disk)."""
        if not measurements:
            return
        batch = MeasurementBatch(
            v=1,
            message_id=uuid.uuid4(),
            gateway_id=self.gateway_id,
            sent_at=datetime.now(UTC),
            measurements=tuple(measurements),
        )
        payload = encode(batch)
        if len(payload) > MAX_MESSAGE_BYTES and len(measurements) > 1:
            half = len(measurements) // 2
            await self._enqueue(measurements[:half])
            await self._enqueue(measurements[half:])
            return
        await asyncio.to_thread(self._put, batch, payload)
        # The batch was built from the head of pending; nothing else removes from it.
        del self._pending[: len(measurements)]
        self.batches_enqueued += 1
        self.measurements_enqueued += len(measurements)
        self.publisher.wake()

    def _put(self, batch: MeasurementBatch, payload: bytes) -> None:
        self.queue.put(
            self.topic,
            payload,
            message_id=str(batch.message_id),
            measurements=len(batch.measurements),
            readings=_readings(batch.measurements),
        )
        if self.on_enqueued is not None:
            self.on_enqueued(batch)


def _readings(measurements: Sequence[Measurement]) -> dict[str, float]:
    """Per vital, when its latest reading in `measurements` was taken (Unix time), for the reminder
    light: the device's time, but never after the gateway received it (a device clock running fast
    must not silence the reminder)."""
    out: dict[str, float] = {}
    for m in measurements:
        taken = min(m.effective_time, m.received_time).timestamp()
        for o in m.observations:
            out[o.vital.value] = max(out.get(o.vital.value, taken), taken)
    return out


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _status_interval(settings: Settings, given: float | None) -> float:
    """The heartbeat: the argument, else the setting `gateway_status_interval_s`."""
    return given if given is not None else settings.gateway_status_interval_s


def run(settings: Settings) -> int:
    """`hemma gateway`: run with the real Bluetooth adapter until SIGINT/SIGTERM; returns the exit status."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    try:
        gateway = Gateway(settings)
    except (GatewayError, RuntimeError) as exc:
        log.error("cannot start the gateway: %s", exc)
        return 2

    async def main() -> None:
        if threading.current_thread() is threading.main_thread():
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, gateway.request_stop)
        log.info("gateway %s running; queue %s", gateway.gateway_id, gateway.queue.path)
        await gateway.run()

    asyncio.run(main())
    stats = gateway.stats()
    log.info(
        "gateway %s stopped: %s measurements queued, %s messages confirmed by ingest, %s still queued",
        gateway.gateway_id,
        stats["measurements_enqueued"],
        stats["confirmed"],
        stats["queue_depth"],
    )
    return 0
