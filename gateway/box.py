"""The box itself, for the patient who will never use a screen: a button and a light (issue 10).

The button ("kontakta mig"). A press that `ButtonGuard` accepts becomes a `KitEvent`
(`contact_request`, source `button`) with a fresh `event_id` at once, in a `KitEventBatch` of its
own, committed to the store-and-forward queue (SQLite, synchronous=FULL, like measurements) before
anything is sent: the events topic then carries it like any queued message, and it leaves the
queue only when ingest's receipt names it. Ingest stores it under its `event_id`, so a message sent
again never makes a second request. A press is refused, counted in `button_presses_ignored` and
logged without patient data, when it comes

* within `min_interval_s` (60 s) of the last accepted press (`too_soon`: a bounce, a second press);
* while an earlier request still waits for its receipt (`waiting`: the ward has not got it yet, and
  a second request would say nothing new; the patient sees the light blinking slowly);
* in a storm: more than `storm_presses` presses in `storm_window_s` (a faulty GPIO line, a stuck
  contact). The storm lasts until the line has been quiet for `quiet_s`; it is counted once in
  `button_storms` and logged. A storm makes at most the one request of its first press, so it never
  floods the queue.

If the queue is full (a full disk) the accepted request is held in memory and written again on
every tick until it fits: back-pressure, never loss.

The light (one LED; the box cannot show text), one of `LightPattern`:

* one short blink (`flash`) when a request is queued, then `slow_blink` while any contact request
  waits for its receipt (read from the queue, so it survives a reboot);
* otherwise `on` while `reminder_at()` says a planned measurement is due, else `off`.

The hardware is a `BoxHardware`: `GpioBox` drives gpiozero's `Button` and `LED` on a Pi (gpiozero
is imported only when a pin is configured, so the gateway starts without it);
`simulator.virtual_box.VirtualBox` is the fake for tests and the demo. Both feed the same `Box`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as time_of_day
from enum import StrEnum
from typing import Any, Protocol

from core.contract import (
    KitConfig,
    KitEvent,
    KitEventBatch,
    PlannedMeasurement,
    encode,
    events_topic,
)
from core.vitals import Vital
from gateway.errors import ConfigurationError, QueueFull
from gateway.queue import StoreAndForwardQueue

log = logging.getLogger(__name__)

__all__ = [
    "Box",
    "BoxHardware",
    "ButtonGuard",
    "GpioBox",
    "LightPattern",
    "PressVerdict",
    "Reminder",
    "reminder_at",
]

DEFAULT_MIN_INTERVAL_S = 60.0
# A reading taken this long before a reminder time counts for it (the patient measured a bit early).
REMINDER_EARLY = timedelta(hours=1)


class LightPattern(StrEnum):
    OFF = "off"
    ON = "on"  # a planned measurement is due
    SLOW_BLINK = "slow_blink"  # a contact request waits for ingest's receipt


class BoxHardware(Protocol):
    """What `Box` needs of a button and a light; callbacks may come from any thread."""

    def when_pressed(self, callback: Callable[[], None] | None) -> None: ...

    def show(self, pattern: LightPattern) -> None: ...

    def flash(self) -> None:
        """One short blink, then the pattern shown before."""
        ...

    def close(self) -> None: ...


# --- the button: pure -----------------------------------------------------------------------------


class PressVerdict(StrEnum):
    ACCEPTED = "accepted"
    TOO_SOON = "too_soon"
    WAITING = "waiting"
    STORM = "storm"


class ButtonGuard:
    """Which presses make a request; see the module docstring. No clock: `now` is monotonic seconds."""

    def __init__(
        self,
        min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
        *,
        storm_presses: int = 20,
        storm_window_s: float = 10.0,
        quiet_s: float = 60.0,
    ) -> None:
        self.min_interval_s = min_interval_s
        self.storm_presses = storm_presses
        self.storm_window_s = storm_window_s
        self.quiet_s = quiet_s
        self.storms = 0
        self._recent: deque[float] = deque(maxlen=storm_presses + 1)
        self._last_accepted: float | None = None
        self._storm_until: float | None = None

    @property
    def in_storm(self) -> bool:
        return self._storm_until is not None

    def press(self, now: float, *, request_waiting: bool) -> PressVerdict:
        self._recent.append(now)
        if self._storm_until is not None and now >= self._storm_until:
            self._storm_until = None  # the line was quiet long enough
        if self._storm_until is None and (
            len(self._recent) > self.storm_presses and now - self._recent[0] <= self.storm_window_s
        ):
            self.storms += 1
            self._storm_until = now + self.quiet_s
        if self._storm_until is not None:
            self._storm_until = now + self.quiet_s  # every press of the storm prolongs it
            return PressVerdict.STORM
        if self._last_accepted is not None and now - self._last_accepted < self.min_interval_s:
            return PressVerdict.TOO_SOON
        if request_waiting:
            return PressVerdict.WAITING
        self._last_accepted = now
        return PressVerdict.ACCEPTED


# --- the reminder: pure ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reminder:
    due: frozenset[Vital]  # planned vitals due now
    reminder_time: bool  # a reminder time passed without any reading since (a kit without a schedule)

    @property
    def on(self) -> bool:
        return bool(self.due) or self.reminder_time


def reminder_at(
    now: datetime,
    schedule: Sequence[PlannedMeasurement],
    reminder_times: Sequence[str],
    last_readings: Mapping[Vital, datetime],
    zone: tzinfo,
) -> Reminder:
    """What the reminder light says at `now` (aware).

    A planned vital is due when it was never measured (as far as this gateway knows) or its latest
    reading is `every_minutes` old or older. A reminder time ("HH:MM", the site's local time) makes
    every planned vital due that has no reading since `REMINDER_EARLY` before it, until one arrives;
    without a schedule it switches the light on until any reading arrives.
    """
    since = _last_reminder(now, reminder_times, zone)
    if since is not None:
        since -= REMINDER_EARLY
    due: set[Vital] = set()
    for planned in schedule:
        last = last_readings.get(planned.vital)
        if (
            last is None
            or now - last >= timedelta(minutes=planned.every_minutes)
            or (since is not None and last < since)
        ):
            due.add(planned.vital)
    reminder_time = False
    if not schedule and since is not None:
        reminder_time = not any(at >= since for at in last_readings.values())
    return Reminder(frozenset(due), reminder_time)


def _last_reminder(now: datetime, reminder_times: Sequence[str], zone: tzinfo) -> datetime | None:
    """The latest reminder time at or before `now` (today's or yesterday's, local), or None."""
    if not reminder_times:
        return None
    today = now.astimezone(zone).date()
    candidates = [
        _local(day, text, zone) for day in (today, today - timedelta(days=1)) for text in reminder_times
    ]
    passed = [at for at in candidates if at <= now]
    return max(passed) if passed else None


def _local(day: date, text: str, zone: tzinfo) -> datetime:
    hour, minute = (int(part) for part in text.split(":"))
    # A time skipped by a clock change (02:30 on the spring night) is read with the offset before it.
    return datetime.combine(day, time_of_day(hour, minute), tzinfo=zone)


# --- the box: the guard, the reminder and the queue on one button and one light --------------------


class Box:
    """The box's behaviour on a `BoxHardware`; see the module docstring.

    `press()` runs on the hardware's thread (gpiozero's, or a test's) and writes to the queue there;
    `tick()` runs on a worker thread of the gateway's loop about once a second. A lock keeps them
    in order, so the light always shows what the queue says.
    """

    def __init__(
        self,
        hardware: BoxHardware,
        queue: StoreAndForwardQueue,
        gateway_id: str,
        *,
        zone: tzinfo,
        clock: Callable[[], datetime],
        on_queued: Callable[[], None],
        guard: ButtonGuard | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hardware = hardware
        self.queue = queue
        self.gateway_id = gateway_id
        self.topic = events_topic(gateway_id)
        self.zone = zone
        self.clock = clock
        self.on_queued = on_queued
        self.guard = guard or ButtonGuard()
        self.monotonic = monotonic
        self.button_presses = 0
        self.button_presses_ignored = 0
        self.contact_requests_queued = 0
        self.queue_full_events = 0
        self.light: LightPattern | None = None  # the pattern shown now; None before the first tick
        self._config: KitConfig | None = None
        self._held: list[tuple[KitEventBatch, bytes]] = []  # accepted, not yet on disk (queue full)
        self._lock = threading.Lock()
        self._closed = False
        self._storms_logged = 0  # a storm is logged once, on the press that starts it
        hardware.when_pressed(self.press)

    def stats(self) -> dict[str, object]:
        return {
            "button_presses": self.button_presses,
            "button_presses_ignored": self.button_presses_ignored,
            "button_storms": self.guard.storms,
            "contact_requests_queued": self.contact_requests_queued,
            "contact_requests_held": len(self._held),
            "light": str(self.light) if self.light is not None else None,
        }

    def apply_config(self, config: KitConfig) -> None:
        self._config = config  # read by tick(); replaced, never mutated

    def press(self) -> None:
        """The button was pressed (any thread)."""
        with self._lock:
            if self._closed:
                return
            self.button_presses += 1
            waiting = bool(self._held) or self.queue.waiting_events() > 0
            verdict = self.guard.press(self.monotonic(), request_waiting=waiting)
            if verdict is not PressVerdict.ACCEPTED:
                self.button_presses_ignored += 1
                if verdict is PressVerdict.STORM and self.guard.storms != self._storms_logged:
                    self._storms_logged = self.guard.storms
                    log.warning(
                        "gateway %s: the button is pressed faster than a person can (storm %d); "
                        "ignoring it until quiet for %.0f s: check the button's wiring",
                        self.gateway_id,
                        self.guard.storms,
                        self.guard.quiet_s,
                    )
                return
            at = self.clock()
            event = KitEvent(event_id=uuid.uuid4(), kind="contact_request", at=at, source="button")
            batch = KitEventBatch(
                v=1, message_id=uuid.uuid4(), gateway_id=self.gateway_id, sent_at=at, events=(event,)
            )
            self._held.append((batch, encode(batch)))
            if self._write_held():
                self.hardware.flash()
            self._show(LightPattern.SLOW_BLINK)
        self.on_queued()

    def _write_held(self) -> bool:
        """Write held requests to the queue in order; True when all are on disk (lock held)."""
        while self._held:
            batch, payload = self._held[0]
            try:
                self.queue.put(self.topic, payload, message_id=str(batch.message_id), events=1)
            except QueueFull as exc:
                self.queue_full_events += 1
                log.error("gateway %s: %s; a contact request is held in memory", self.gateway_id, exc)
                return False
            self._held.pop(0)
            self.contact_requests_queued += 1
            log.info("gateway %s: contact request queued (message %s)", self.gateway_id, batch.message_id)
        return True

    def tick(self) -> LightPattern:
        """Retry held requests and set the light from the queue and the plan; returns the pattern."""
        with self._lock:
            if self._closed:
                return self.light or LightPattern.OFF
            if self._held and self._write_held():
                self.hardware.flash()
                self.on_queued()
            if self._held or self.queue.waiting_events() > 0:
                pattern = LightPattern.SLOW_BLINK
            elif self._reminder().on:
                pattern = LightPattern.ON
            else:
                pattern = LightPattern.OFF
            self._show(pattern)
            return pattern

    def _reminder(self) -> Reminder:
        config = self._config
        if config is None:
            return Reminder(frozenset(), False)
        last: dict[Vital, datetime] = {}
        for name, at in self.queue.last_readings().items():
            try:
                last[Vital(name)] = datetime.fromtimestamp(at, UTC)
            except ValueError:  # a vital this software no longer knows
                continue
        return reminder_at(self.clock(), config.schedule, config.reminder_times, last, self.zone)

    def _show(self, pattern: LightPattern) -> None:
        if pattern != self.light:
            self.hardware.show(pattern)
            self.light = pattern

    def close(self) -> None:
        """Stop listening to the button (before the queue closes); the light goes off."""
        with self._lock:
            self._closed = True
            self.hardware.when_pressed(None)
            if self._held:
                log.error(
                    "gateway %s: stopped with %d contact request(s) that could not be queued",
                    self.gateway_id,
                    len(self._held),
                )
        self.hardware.close()


# --- gpiozero on a Pi -----------------------------------------------------------------------------


class GpioBox:
    """gpiozero's `Button` (to ground, internal pull-up) and `LED` on BCM pins; either may be absent."""

    FLASH_S = 0.25
    SLOW_ON_S = 1.0
    SLOW_OFF_S = 1.5

    def __init__(self, button_pin: int | None, light_pin: int | None) -> None:
        try:
            import gpiozero  # optional: only a box with a button or a light needs it
        except ImportError as exc:
            raise ConfigurationError(
                "HEMMA_GATEWAY_BUTTON_PIN/HEMMA_GATEWAY_LIGHT_PIN are set but gpiozero is not installed: "
                "pip install 'hemma[gateway]' (or unset the pins)"
            ) from exc
        # bounce_time: a mechanical contact chatters for a few ms; gpiozero folds that into one press.
        self._button: Any = None if button_pin is None else gpiozero.Button(button_pin, bounce_time=0.05)
        self._led: Any = None if light_pin is None else gpiozero.LED(light_pin)
        self._pattern = LightPattern.OFF

    def when_pressed(self, callback: Callable[[], None] | None) -> None:
        if self._button is not None:
            # A zero-argument lambda: gpiozero would otherwise pass the device to a callback taking one.
            self._button.when_pressed = None if callback is None else (lambda: callback())

    def show(self, pattern: LightPattern) -> None:
        self._pattern = pattern
        if self._led is None:
            return
        if pattern is LightPattern.ON:
            self._led.on()
        elif pattern is LightPattern.SLOW_BLINK:
            self._led.blink(on_time=self.SLOW_ON_S, off_time=self.SLOW_OFF_S)
        else:
            self._led.off()

    def flash(self) -> None:
        if self._led is not None:
            self._led.blink(on_time=self.FLASH_S, off_time=self.FLASH_S, n=1, background=False)
            self.show(self._pattern)

    def close(self) -> None:
        for device in (self._button, self._led):
            if device is not None:
                device.close()


def hardware_from_settings(button_pin: int | None, light_pin: int | None) -> BoxHardware | None:
    """The box's GPIO hardware, or None when neither pin is configured."""
    if button_pin is None and light_pin is None:
        return None
    return GpioBox(button_pin, light_pin)
