"""A virtual box: the gateway's button and light without a Pi (tests, `hemma simulate`, the demo).

It implements `gateway.box.BoxHardware`, as `GpioBox` does with gpiozero, so the gateway's own
`Box` runs unchanged on it (the virtual radio plugs into bleak's backend the same way). `press()`
calls the callback on the caller's thread, as gpiozero calls it on its pin thread; `burst()`
presses many times, like a faulty GPIO line. Every light change is recorded in `lights`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from gateway.box import LightPattern

__all__ = ["VirtualBox"]


class VirtualBox:
    """A button to press and a light whose patterns are recorded ("flash" for one short blink)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callback: Callable[[], None] | None = None
        self._lights: list[str] = []
        self.presses = 0
        self.closed = False

    # --- BoxHardware ---------------------------------------------------------------------------

    def when_pressed(self, callback: Callable[[], None] | None) -> None:
        with self._lock:
            self._callback = callback

    def show(self, pattern: LightPattern) -> None:
        with self._lock:
            self._lights.append(str(pattern))

    def flash(self) -> None:
        with self._lock:
            self._lights.append("flash")

    def close(self) -> None:
        self.closed = True

    # --- the patient's side --------------------------------------------------------------------

    def press(self) -> bool:
        """Press the button once; False when nothing listens (the gateway is not running)."""
        with self._lock:
            callback = self._callback
            self.presses += 1
        if callback is None:
            return False
        callback()
        return True

    def burst(self, presses: int, within_s: float) -> None:
        """`presses` presses spread evenly over `within_s` seconds (a contact chattering, a faulty line)."""
        gap = within_s / presses if presses else 0.0
        start = time.monotonic()
        for i in range(presses):
            delay = start + i * gap - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.press()

    @property
    def lights(self) -> list[str]:
        """Every pattern shown, in order, with "flash" for each single blink."""
        with self._lock:
            return list(self._lights)

    @property
    def light(self) -> str:
        """The pattern shown now ("off" before the first)."""
        with self._lock:
            patterns = [p for p in self._lights if p != "flash"]
        return patterns[-1] if patterns else "off"
