"""glibc malloc settings for a process that runs the vectorized engine. Call once at start; never on import.

Every numpy operation on 100k patients makes a temporary of ~800 KB. glibc serves blocks above its mmap
threshold (128 KB, raised dynamically only in some free patterns) with a fresh mmap, and trims the
heap top above 128 KB back to the kernel, so each temporary page-faults ~200 times on first touch. In
a VM a page fault costs microseconds: measured here, a 15-operation kernel on 100k floats took 5.3 ms
with 1,500 faults per call and 0.5 ms with the heap kept (benchmarks.alerts shows both for a whole tick).
Keeping freed memory in the heap costs at most `trim_threshold` of resident memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt parameters from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
GLIBC_DEFAULTS = {M_TRIM_THRESHOLD: 128 * 1024, M_TOP_PAD: 128 * 1024, M_MMAP_THRESHOLD: 128 * 1024}


def keep_numpy_temporaries_in_heap(
    mmap_threshold: int = 32 << 20, trim_threshold: int = 512 << 20, top_pad: int = 64 << 20
) -> bool:
    """Serve blocks below `mmap_threshold` from the heap and keep freed heap memory. False if not glibc."""
    return _mallopt({M_MMAP_THRESHOLD: mmap_threshold, M_TRIM_THRESHOLD: trim_threshold, M_TOP_PAD: top_pad})


def restore_glibc_defaults() -> bool:
    """glibc's documented starting values (used by benchmarks.alerts to show the untuned cost)."""
    return _mallopt(GLIBC_DEFAULTS)


def _mallopt(settings: dict[int, int]) -> bool:
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:  # musl and others: nothing to tune
        return False
    return all(mallopt(param, value) == 1 for param, value in settings.items())
