"""Keep the long-running service's memory flat (the pod has 256 Mi).

glibc's malloc raises its mmap threshold each time a large block is freed (up to 32 MiB) and gives
every thread an arena of its own. A service that parses and stores mail of a few MiB in worker
threads then keeps those blocks in fragmented heap arenas: bench/memory saw RSS grow from 135 to
over 300 MB over 1,000 messages, and stay there. A fixed mmap threshold returns every large block
to the system when it is freed; two arenas are enough for one event loop and its helper threads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import structlog

log = structlog.get_logger()

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024
TRIM_THRESHOLD = 1024 * 1024
ARENA_MAX = 2


def tune_malloc() -> bool:
    """Set glibc's mmap threshold, trim threshold and arena count, unless the MALLOC_* environment
    variables already chose them. Returns False where there is no glibc (musl, macOS): nothing to do."""
    path = ctypes.util.find_library("c")
    if path is None:
        return False
    try:
        libc = ctypes.CDLL(path)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    chosen = {
        "MALLOC_MMAP_THRESHOLD_": (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        "MALLOC_TRIM_THRESHOLD_": (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        "MALLOC_ARENA_MAX": (_M_ARENA_MAX, ARENA_MAX),
    }
    for variable, (option, value) in chosen.items():
        if variable not in os.environ and mallopt(option, value) != 1:
            log.warning("memory.mallopt_failed", option=variable)
    return True
