"""One vital's recent samples for every patient, in time slots, with least-squares sums kept up to date.

`alerts.trends.window_slope` reads every sample of every window on every tick: bound by memory
bandwidth (PERFORMANCE-NOTES: ~30 ms at 100k patients x 8 vitals x 256 samples). Here a tick costs
what arrived and what left the window, and every array access is a contiguous column:

* Time is cut into slots of `window / slots` seconds, the same for every patient of the vital, so a
  ring of `slots` columns x patients advances for all patients at once (a column per slot). A
  per-patient ring would need a random access per patient per sample: ~20 ms per 800k on this
  machine, more than the whole budget.
* The open slot accumulates what arrives; when time moves past it, it is committed as one point
  (mean value at mean time: continuous streams are decimated to one point per slot, every slot weighs
  the same) and the slot that falls out of the window is subtracted. The trend window is the last
  `slots` committed slots (`window` seconds, edges on slot boundaries): a sample joins the trend when
  its slot closes, at most one slot width later (84 s for a 6 h window). Thresholds and NEWS2 read
  `newest_y`, which is immediate. So the fit changes only when a slot closes: `slope` is cached.
* Running sums are of 1, t, y, t², t·y with t in hours from the open slot's start; the origin moves
  with each slot (exact algebra, no growth of t). Every 16th slot, `recompute` rebuilds one block of
  patients from the ring (each patient once per 16 windows), so float error cannot accumulate.
* A late sample (store-and-forward) merges into its slot if that slot is still in the window and
  the patient is recomputed exactly; older ones are counted in `dropped` (they are in the database).
* Mutable state owned by one engine loop; never reads the clock: `advance` and `push` take the time.

`SlotWindowOne` is the same algorithm for one patient in plain Python (tests and `benchmarks.alerts`).
"""

from __future__ import annotations

import math
import struct
from datetime import timedelta

import numpy as np

from alerts.trends import Slope, slope_from_sums


class SlotWindows:
    """One vital, every patient (column index = patient index), one `window` of `slots` time slots.

    Times are float epoch seconds. Feed with `push`, move time with `advance`, read `slope()` (cached:
    treat its arrays as read-only) and `newest_y`/`newest_t`.
    """

    def __init__(self, patients: int, window: timedelta, *, start: float, slots: int = 256) -> None:
        if slots < 2:
            raise ValueError("a slot window needs at least 2 slots")
        self.patients, self.slots = patients, slots
        self.width = window.total_seconds() / slots
        self.open = math.floor(start / self.width)  # absolute number of the open slot
        # Empty cells hold 0 in ring_y and ring_dt (ring_n says they are empty), so their terms vanish
        # from the sums without masks. np.full, not np.zeros: every page is touched now rather than by
        # the first tick that reaches it (a page fault costs microseconds in a VM).
        self.ring_y = np.full((slots, patients), 0.0, np.float32)  # committed slot means
        self.ring_dt = np.full((slots, patients), 0.0, np.float32)  # mean time - slot start, s
        self.ring_n = np.full((slots, patients), 0.0, np.float32)  # samples in the slot
        self.acc = np.zeros((3, patients))  # open slot: count, sum of y, sum of (t - open start)
        self.sums = np.zeros((5, patients))  # committed slots in the window: n, Σt, Σy, Σt², Σty
        self.first_t = np.full(patients, np.nan)  # oldest committed point in the window (epoch s)
        self.last_t = np.full(patients, np.nan)  # newest committed point in the window
        self.newest_y = np.full(patients, np.nan)  # the newest raw sample, for NEWS2 and thresholds
        self.newest_t = np.full(patients, np.nan)
        self.dropped = 0  # samples older than the window when they arrived
        self._advances = 0  # slots closed so far
        self._merges = 0  # late samples merged so far
        self._slope: tuple[tuple[int, int, int], Slope] | None = None

    @property
    def open_start(self) -> float:
        return self.open * self.width

    # --- time -----------------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Commit every slot that ended by `now`."""
        steps = math.floor(now / self.width) - self.open
        if steps > self.slots:  # silence longer than the window: everything leaves
            self.ring_n[:] = self.ring_y[:] = self.ring_dt[:] = 0
            self.acc[:] = 0
            self.sums[:] = 0
            self.first_t[:] = self.last_t[:] = np.nan
            self.open += steps
            self._advances += steps
            return
        for _ in range(max(steps, 0)):
            self._close_open_slot()
            # Every 16th slot, rebuild one block of patients exactly (each patient once per 16 windows):
            # float error from adding and subtracting cannot pile up, and no tick pays a whole pass.
            if self._advances % 16 == 0:
                block = -(-self.patients // self.slots)
                start = (self._advances // 16 % self.slots) * block
                if start < self.patients:
                    self.recompute(slice(start, min(start + block, self.patients)))

    def _close_open_slot(self) -> None:
        o, w, col = self.open, self.width, self.open % self.slots
        # The column of slot o still holds slot o - slots, which leaves the window now.
        gone = self.ring_n[col] > 0
        y_out = np.float64(self.ring_y[col])
        # Times in hours from the start of the *next* slot: the origin moves with every slot, so t stays
        # small. The leaving slot started slots + 1 widths before it.
        t_out = self.ring_dt[col] * np.float64(1 / 3600)
        t_out -= (self.slots + 1) * w / 3600
        t_out *= gone
        count, sum_y, sum_dt = self.acc
        inv = 1.0 / np.maximum(count, 1.0)
        np.multiply(sum_y, inv, out=self.ring_y[col], casting="same_kind")
        np.multiply(sum_dt, inv, out=self.ring_dt[col], casting="same_kind")
        self.ring_n[col] = count
        has = count > 0
        y_in = np.float64(self.ring_y[col])
        t_in = self.ring_dt[col] * np.float64(1 / 3600)
        t_in -= w / 3600
        t_in *= has
        n, st, sy, stt, sty = self.sums
        d = w / 3600  # shift the old sums to the new origin (t' = t - d) before adding and subtracting
        stt += n * (d * d) - (2 * d) * st
        sty -= d * sy
        st -= n * d
        n += has
        n -= gone
        st += t_in - t_out
        sy += y_in - y_out
        stt += t_in * t_in - t_out * t_out
        sty += t_in * y_in - t_out * y_out
        at = (o * w) + np.float64(self.ring_dt[col])
        np.copyto(self.last_t, at, where=has)
        np.copyto(self.first_t, at, where=has & np.isnan(self.first_t))
        self._next_first(gone, col)
        empty = n == 0
        if empty.any():
            self.last_t[empty] = np.nan
        self.open += 1
        self.acc[:] = 0
        self._advances += 1

    def _next_first(self, gone: np.ndarray, col: int) -> None:
        """The oldest point left for patients whose oldest point just left (from column `col`, which now
        holds the newest slot, the open one being closed)."""
        k1 = (col + 1) % self.slots  # the next slot: usually where a continuous stream resumes
        hit = gone & (self.ring_n[k1] > 0)
        slot_start = (self.open - self.slots + 1) * self.width
        np.copyto(self.first_t, slot_start + np.float64(self.ring_dt[k1]), where=hit)
        patients = np.flatnonzero(gone & ~hit)
        self.first_t[patients] = np.nan
        for k in range(2, self.slots + 1):  # the few left, column by column, ending with the new slot
            if patients.size == 0:
                return
            c = (col + k) % self.slots
            hit_k = self.ring_n[c, patients] > 0
            slot = self.open - self.slots + k
            self.first_t[patients[hit_k]] = slot * self.width + np.float64(self.ring_dt[c, patients[hit_k]])
            patients = patients[~hit_k]

    # --- samples --------------------------------------------------------------------------------

    def push(self, patient: np.ndarray | None, value: np.ndarray, at: np.ndarray, *, now: float) -> None:
        """Add samples after advancing to `now`. `patient` may repeat, or be None: one sample for every
        patient in order (the fast path). NaN values are skipped."""
        self.advance(now)
        if patient is None:
            if not np.isnan(value).any() and bool((at >= self.open_start).all()):
                np.copyto(self.newest_y, value, where=~(at < self.newest_t))
                np.fmax(self.newest_t, at, out=self.newest_t)
                self.acc[0] += 1.0
                self.acc[1] += value
                self.acc[2] += at - self.open_start
                return
            patient = np.arange(self.patients)
        keep = ~np.isnan(value) & ~np.isnan(at)
        patient, value, at = patient[keep], value[keep], at[keep]
        np.fmax.at(self.newest_t, patient, at)
        newest = at >= self.newest_t[patient]
        self.newest_y[patient[newest]] = value[newest]
        slot = np.floor(at / self.width)
        current = slot >= self.open  # a little in the future (device clock ahead) joins the open slot
        np.add.at(self.acc[0], patient[current], 1.0)
        np.add.at(self.acc[1], patient[current], value[current])
        np.add.at(self.acc[2], patient[current], at[current] - self.open_start)
        late = ~current & (slot >= self.open - self.slots)
        self.dropped += int((~current & ~late).sum())
        if late.any():
            self._merge_late(patient[late], value[late], at[late], slot[late].astype(np.int64))

    def _merge_late(self, patient: np.ndarray, value: np.ndarray, at: np.ndarray, slot: np.ndarray) -> None:
        col = slot % self.slots
        cells, inverse = np.unique(col * self.patients + patient, return_inverse=True)
        count = np.bincount(inverse)
        sum_y = np.bincount(inverse, weights=value)
        sum_dt = np.bincount(inverse, weights=at - slot * self.width)
        c, p = cells // self.patients, cells % self.patients
        n0 = np.float64(self.ring_n[c, p])
        y0 = np.where(n0 > 0, np.float64(self.ring_y[c, p]), 0.0)
        dt0 = np.float64(self.ring_dt[c, p])
        n1 = n0 + count
        self.ring_y[c, p] = (y0 * n0 + sum_y) / n1
        self.ring_dt[c, p] = (dt0 * n0 + sum_dt) / n1
        self.ring_n[c, p] = n1
        self.recompute(np.unique(p))
        self._merges += 1

    # --- exact recomputation and reading ----------------------------------------------------------

    def _committed(self, patients: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mask, y, t in hours from the open slot's start) of every ring cell: all are in the window."""
        k = (np.arange(self.slots) - self.open) % self.slots  # column c holds slot open - slots + k
        slot_start_h = ((k - self.slots) * self.width / 3600)[:, None]
        n, y, dt = self.ring_n[:, patients], self.ring_y[:, patients], self.ring_dt[:, patients]
        return n > 0, y.astype(np.float64), slot_start_h + dt.astype(np.float64) / 3600

    def recompute(self, patients: np.ndarray | slice | None = None) -> None:
        """Rebuild the running sums (and oldest/newest points) of these patients (None: all) from the ring."""
        if patients is None:  # in blocks, so the temporaries stay in cache
            for start in range(0, self.patients, 4096):
                self.recompute(slice(start, start + 4096))
            return
        which = patients
        self._slope = None
        mask, y, t = self._committed(which)
        y0, t0 = np.where(mask, y, 0.0), np.where(mask, t, 0.0)
        self.sums[:, which] = np.stack(
            (mask.sum(axis=0), t0.sum(axis=0), y0.sum(axis=0), (t0 * t0).sum(axis=0), (t0 * y0).sum(axis=0))
        )
        has = mask.any(axis=0)
        opened = float(self.open_start)
        self.first_t[which] = np.where(has, opened + 3600 * np.where(mask, t, np.inf).min(axis=0), np.nan)
        self.last_t[which] = np.where(has, opened + 3600 * np.where(mask, t, -np.inf).max(axis=0), np.nan)

    def slope(self, min_samples: int = 3) -> Slope:
        """The least-squares fit per patient over the committed slots in the window (cached until the
        next slot closes or a late sample arrives)."""
        key = (self._advances, self._merges, min_samples)
        if self._slope is None or self._slope[0] != key:
            n, st, sy, stt, sty = self.sums
            span_h = self.last_t - self.first_t
            span_h *= 1 / 3600
            np.fmax(span_h, 0.0, out=span_h)  # NaN (no points) → 0
            self._slope = (key, slope_from_sums(n, st, sy, stt, sty, span_h, min_samples))
        return self._slope[1]

    def window_points(self, patient: int) -> tuple[list[float], list[float]]:
        """One patient's points in the window (values, epoch s), oldest first: what `slope` fits."""
        mask, y, t = self._committed(np.array([patient]))
        order = np.argsort(t[:, 0])
        points = [(float(y[i, 0]), self.open_start + 3600 * float(t[i, 0])) for i in order if mask[i, 0]]
        return [v for v, _ in points], [t for _, t in points]


# --- the same algorithm for one patient in plain Python (tests, benchmarks.alerts) ---------------------


def _f32(x: float) -> float:
    rounded: float = struct.unpack("f", struct.pack("f", x))[0]
    return rounded


class SlotWindowOne:
    """`SlotWindows` for one patient: same slots, same float32 rounding of committed points."""

    def __init__(self, window: timedelta, *, start: float, slots: int = 256) -> None:
        self.slots, self.width = slots, window.total_seconds() / slots
        self.open = math.floor(start / self.width)
        self.ring: list[tuple[float, float, float] | None] = [None] * slots  # (mean y, mean dt, count)
        self.acc = [0.0, 0.0, 0.0]
        self.sums = [0.0] * 5
        self.first_t = self.last_t = self.newest_y = self.newest_t = math.nan

    def advance(self, now: float) -> None:
        steps = math.floor(now / self.width) - self.open
        if steps > self.slots:
            self.ring = [None] * self.slots
            self.acc, self.sums = [0.0, 0.0, 0.0], [0.0] * 5
            self.first_t = self.last_t = math.nan
            self.open += steps
            return
        for _ in range(max(steps, 0)):
            self._close()

    def _close(self) -> None:
        o, d, (count, sum_y, sum_dt) = self.open, self.width / 3600, self.acc
        col = o % self.slots
        gone = self.ring[col]  # slot o - slots leaves
        if gone is not None:
            self._add(gone[0], (gone[1] - self.slots * self.width) / 3600, -1.0)
        self.ring[col] = (_f32(sum_y / count), _f32(sum_dt / count), count) if count else None
        if count:
            y, dt = self.ring[col][0], self.ring[col][1]  # type: ignore[index]
            self._add(y, dt / 3600, 1.0)
            self.last_t = o * self.width + dt
            if math.isnan(self.first_t):
                self.first_t = self.last_t
        if gone is not None:
            self.first_t = math.nan
            for k in range(1, self.slots + 1):
                cell = self.ring[(o + k) % self.slots]
                if cell is not None:
                    self.first_t = (o - self.slots + k) * self.width + cell[1]
                    break
        n, st, sy, stt, sty = self.sums
        self.sums = [n, st - n * d, sy, stt - 2 * d * st + n * d * d, sty - d * sy] if n else [0.0] * 5
        if not n:
            self.first_t = self.last_t = math.nan
        self.open += 1
        self.acc = [0.0, 0.0, 0.0]

    def _add(self, y: float, t: float, sign: float) -> None:
        s = self.sums
        s[0] += sign
        s[1] += sign * t
        s[2] += sign * y
        s[3] += sign * t * t
        s[4] += sign * t * y

    def push(self, value: float, at: float, *, now: float) -> None:
        self.advance(now)
        if math.isnan(value) or math.isnan(at):
            return
        if not at < self.newest_t:
            self.newest_t, self.newest_y = at, value
        slot = math.floor(at / self.width)
        if slot >= self.open:
            self.acc = [self.acc[0] + 1, self.acc[1] + value, self.acc[2] + at - self.open * self.width]
        elif slot >= self.open - self.slots:
            cell = self.ring[slot % self.slots] or (0.0, 0.0, 0.0)
            n1 = cell[2] + 1
            dt = at - slot * self.width
            self.ring[slot % self.slots] = (
                _f32((cell[0] * cell[2] + value) / n1),
                _f32((cell[1] * cell[2] + dt) / n1),
                n1,
            )
            self._recompute()

    @classmethod
    def copy_of(cls, windows: SlotWindows, patient: int) -> SlotWindowOne:
        """One patient's state taken from the vectorized windows (to run both from the same start)."""
        one = cls.__new__(cls)
        one.slots, one.width, one.open = windows.slots, windows.width, windows.open
        col = windows.ring_n[:, patient] > 0
        one.ring = [
            (
                float(windows.ring_y[c, patient]),
                float(windows.ring_dt[c, patient]),
                float(windows.ring_n[c, patient]),
            )
            if col[c]
            else None
            for c in range(windows.slots)
        ]
        one.acc = [float(x) for x in windows.acc[:, patient]]
        one.sums = [float(x) for x in windows.sums[:, patient]]
        one.first_t, one.last_t = float(windows.first_t[patient]), float(windows.last_t[patient])
        one.newest_y, one.newest_t = float(windows.newest_y[patient]), float(windows.newest_t[patient])
        return one

    def points(self) -> tuple[list[float], list[float]]:
        """The window's points (values, epoch s), oldest first, as `SlotWindows.window_points`."""
        values, times = [], []
        for k in range(self.slots):
            cell = self.ring[(self.open + k) % self.slots]
            if cell is not None:
                values.append(cell[0])
                times.append((self.open - self.slots + k) * self.width + cell[1])
        return values, times

    def _recompute(self) -> None:
        self.sums, self.first_t, self.last_t = [0.0] * 5, math.nan, math.nan
        for k in range(self.slots):
            cell = self.ring[(self.open + k) % self.slots]
            if cell is not None:
                t = (k - self.slots) * self.width / 3600 + cell[1] / 3600
                self._add(cell[0], t, 1.0)
                at = self.open * self.width + 3600 * t
                self.first_t = at if math.isnan(self.first_t) else self.first_t
                self.last_t = at

    def slope(self, min_samples: int = 3) -> float:
        n, st, sy, stt, sty = self.sums
        span = (self.last_t - self.first_t) / 3600 if n else 0.0
        if n < min_samples or not span > 0:
            return math.nan
        return (n * sty - st * sy) / (n * stt - st * st)
