"""Keep a long-running recorder's heap from creeping: fixed malloc thresholds (glibc only).

The archive writer hands the compressor thread 1 MiB batches (`archive.writer.WAKE_BYTES`). glibc serves
blocks over `M_MMAP_THRESHOLD` (128 KiB) with mmap, but raises that threshold to the size of each mmapped
block freed, so after the first batch every 1 MiB buffer comes from the thread's heap arena instead, where
batches of slightly different sizes leave holes and the arena grows in steps over hours. Setting the
thresholds explicitly turns that adjustment off: large buffers are mapped and unmapped whole (two system
calls per MiB), and freed heap tops are returned to the system. Elsewhere (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 256 * 1024
TRIM_THRESHOLD_BYTES = 512 * 1024


def steady_heap() -> bool:
    """Fix glibc's mmap and trim thresholds for this process; whether it applied (glibc Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
