"""Ring buffers of recent samples per row (patient x vital) with least-squares sums kept up to date.

`alerts.trends.window_slope` reads every slot of every buffer on every tick; at 100k patients x 8
vitals x 256 samples that pass is bound by memory bandwidth (PERFORMANCE-NOTES: ~30 ms). Here each
new sample adds itself to running sums of 1, t, y, t², t·y and each sample leaving the time window
subtracts itself, so a tick costs what arrived and what expired, not what is stored.

Design points:
* Windows are time windows (per row), buffers hold the newest `capacity` samples. If a buffer is
  full while its oldest sample is still inside the window, that sample is lost to the window and
  the row is marked `truncated` (choose capacity x sampling interval >= window, or decimate a
  continuous stream before pushing).
* Times in the sums are hours from a per-row origin that is reset whenever the row's window runs
  empty, and `rebase` recomputes a bounded number of rows exactly from their buffers each tick, so
  float error from adding and subtracting cannot accumulate and t² stays small.
* A sample older than the row's newest (store-and-forward delivers late) re-sorts that row's buffer
  and recomputes it: rare, and exact.
* The object is mutable state owned by one engine loop, not shared between threads. It never reads
  the clock: `push` and `expire` take the time.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from alerts.trends import Slope, slope_from_sums


class RunningWindows:
    def __init__(self, rows: int, capacity: int, window: timedelta | np.ndarray) -> None:
        """`window` is one timedelta or an array of seconds per row."""
        seconds = window.total_seconds() if isinstance(window, timedelta) else window
        self.window_s = np.broadcast_to(np.asarray(seconds, dtype=float), (rows,)).copy()
        self.capacity = capacity
        self.values = np.full((rows, capacity), np.nan)
        self.times = np.full((rows, capacity), np.nan)
        self.head = np.zeros(rows, np.int64)  # next slot to write
        self.size = np.zeros(rows, np.int64)  # samples in the buffer
        self.tail = np.zeros(rows, np.int64)  # oldest slot inside the window
        self.n = np.zeros(rows)  # samples inside the window: slots tail .. tail+n-1
        self.sums = np.zeros((4, rows))  # t, y, t², t·y over the window; t in hours from origin
        self.origin = np.full(rows, np.nan)
        self.tail_time = np.full(rows, np.nan)
        self.newest_time = np.full(rows, np.nan)
        self.newest_value = np.full(rows, np.nan)
        self.truncated = np.zeros(rows, bool)

    # --- writing --------------------------------------------------------------------------------

    def push(self, rows: np.ndarray, value: np.ndarray, at: np.ndarray, *, now: float) -> None:
        """Add one sample to each of `rows` (distinct; NaN values are skipped), then expire to `now`."""
        keep = ~np.isnan(value)
        rows, value, at = rows[keep], value[keep], at[keep]
        late = at < self.newest_time[rows]
        on_time = ~late
        self._append(rows[on_time], value[on_time], at[on_time])
        if late.any():
            self._write(rows[late], value[late], at[late])
            self._resort(rows[late])
            self._recompute(rows[late], now)
        self.expire(now)

    def _append(self, rows: np.ndarray, value: np.ndarray, at: np.ndarray) -> None:
        full_window = self.n[rows] == self.capacity  # the slot about to be overwritten is in the window
        if full_window.any():
            self.truncated[rows[full_window]] = True
            self._drop_tail(rows[full_window])
        empty = self.n[rows] == 0
        restart = rows[empty]
        self.origin[restart] = at[empty]
        self.sums[:, restart] = 0.0
        self.tail[restart] = self.head[restart]
        self.tail_time[restart] = at[empty]
        self._write(rows, value, at)
        t = (at - self.origin[rows]) / 3600
        self.sums[:, rows] += (t, value, t * t, t * value)
        self.n[rows] += 1

    def _write(self, rows: np.ndarray, value: np.ndarray, at: np.ndarray) -> None:
        slot = self.head[rows]
        self.values[rows, slot] = value
        self.times[rows, slot] = at
        self.head[rows] = (slot + 1) % self.capacity
        self.size[rows] = np.minimum(self.size[rows] + 1, self.capacity)
        newer = ~(at < self.newest_time[rows])  # NaN newest_time: the first sample
        self.newest_time[rows[newer]] = at[newer]
        self.newest_value[rows[newer]] = value[newer]

    def _drop_tail(self, rows: np.ndarray) -> None:
        slot = self.tail[rows]
        y = self.values[rows, slot]
        t = (self.times[rows, slot] - self.origin[rows]) / 3600
        self.sums[:, rows] -= (t, y, t * t, t * y)
        self.n[rows] -= 1
        self.tail[rows] = (slot + 1) % self.capacity
        left = self.n[rows] > 0
        self.tail_time[rows] = np.where(left, self.times[rows, self.tail[rows]], np.nan)
        emptied = rows[~left]
        self.sums[:, emptied] = 0.0  # exact zero: no residue of float error survives an empty window
        self.origin[emptied] = np.nan

    def expire(self, now: float) -> None:
        """Subtract every sample older than its row's window (one pass per sample leaving a row)."""
        cutoff = now - self.window_s
        while True:
            rows = np.flatnonzero(self.tail_time < cutoff)  # NaN (empty window) compares False
            if rows.size == 0:
                return
            self._drop_tail(rows)

    def rebase(self, now: float, budget: int) -> int:
        """Recompute up to `budget` rows whose origin is over one window old; returns how many."""
        stale = np.flatnonzero(now - self.origin > self.window_s)[:budget]
        self._recompute(stale, now)
        return int(stale.size)

    # --- exact recomputation --------------------------------------------------------------------

    def _resort(self, rows: np.ndarray) -> None:
        """Rewrite these rows' buffers oldest first from slot 0 (NaN-timed empty slots sort last)."""
        order = np.argsort(self.times[rows], axis=1, kind="stable")
        self.times[rows] = np.take_along_axis(self.times[rows], order, axis=1)
        self.values[rows] = np.take_along_axis(self.values[rows], order, axis=1)
        self.head[rows] = self.size[rows] % self.capacity

    def _recompute(self, rows: np.ndarray, now: float) -> None:
        """Window state of `rows` from their buffers alone: tail, n, origin and exact sums."""
        if rows.size == 0:
            return
        times, values = self.times[rows], self.values[rows]
        cutoff = (now - self.window_s[rows])[:, None]
        inside = times >= cutoff  # NaN slots compare False
        n = inside.sum(axis=1)
        start_col = (self.head[rows] - self.size[rows]) % self.capacity  # the buffer's oldest slot
        # The buffer is in time order from its oldest slot, so the window is its last n samples.
        tail = (start_col + self.size[rows] - n) % self.capacity
        tail_time = np.where(n > 0, times[np.arange(rows.size), tail], np.nan)
        t = np.where(inside, (times - tail_time[:, None]) / 3600, 0.0)
        y = np.where(inside, values, 0.0)
        self.sums[:, rows] = (t.sum(axis=1), y.sum(axis=1), (t * t).sum(axis=1), (t * y).sum(axis=1))
        self.n[rows] = n
        self.tail[rows] = tail
        self.tail_time[rows] = tail_time
        self.origin[rows] = tail_time

    # --- reading --------------------------------------------------------------------------------

    def slope(self, min_samples: int = 3) -> Slope:
        """The least-squares fit per row over its current window (as of the last `expire`)."""
        span_h = np.where(self.n > 0, (self.newest_time - self.tail_time) / 3600, 0.0)
        return slope_from_sums(self.n, *self.sums, span_h, min_samples)
