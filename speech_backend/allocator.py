"""The C allocator of a long-running server process (glibc's malloc; elsewhere nothing changes).

Left to its defaults, glibc keeps memory a large request freed: every worker thread gets an arena of
its own (up to eight per core), and after the first large block is freed the size above which
blocks are mapped on their own rises to 32 MB, so later decode buffers and tensors are carved from
those arenas and stay there, fragmented, after the request is over. Fixing the mapping threshold
sends large blocks straight back to the system when freed; a couple of arenas bound what is left.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

logger = logging.getLogger(__name__)

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

ARENAS = 2
MMAP_THRESHOLD = 256 * 1024  # blocks this large are mapped alone and unmapped when freed
TRIM_THRESHOLD = 4 * 1024 * 1024  # free memory at the top of the heap beyond this goes back


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def tune_allocator() -> bool:
    """Set the allocator for a server whose requests come and go; True if it was set. Call it once,
    early (before worker threads start), in the serving process."""
    libc = _libc()
    if libc is None:
        return False
    done = all(
        libc.mallopt(param, value)
        for param, value in (
            (M_ARENA_MAX, ARENAS),
            (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        )
    )
    if not done:
        logger.warning("the C allocator did not take its settings; memory may not return after large calls")
    return done
