"""Keep freed memory in the process instead of returning it to the OS after every evaluation.

An evaluation of N atoms allocates its neighbour list and pair gradients afresh, about
3 kB per atom. glibc gives arrays of that size back to the OS when they are freed, so
the next evaluation takes a page fault on every 4 kB it touches (figures:
benchmarks/RESULTS.md, bench_evaluate.py).
`keep_freed_memory` raises glibc's mmap and trim thresholds so that freed arrays up
to 32 MiB stay in the heap and are reused: the process keeps up to 256 MiB of freed memory.

It is applied once when mtplib is imported; set MTPLIB_KEEP_FREED_MEMORY=0 to leave the
allocator as it is. Other C libraries than glibc are left alone.
"""
import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024       # glibc's largest on 64-bit
TRIM_THRESHOLD = 256 * 1024 * 1024

_applied = None


def keep_freed_memory():
    """Raise glibc's mmap and trim thresholds (once); True when applied."""
    global _applied
    if _applied is None:
        _applied = False
        if sys.platform.startswith("linux") and os.environ.get("MTPLIB_KEEP_FREED_MEMORY", "1") != "0":
            try:       # glibc's name first: find_library runs ldconfig in a subprocess
                try:
                    libc = ctypes.CDLL("libc.so.6")
                except OSError:
                    libc = ctypes.CDLL(ctypes.util.find_library("c"))
                mallopt = libc.mallopt
            except (OSError, AttributeError, TypeError):      # not glibc (e.g. musl)
                return False
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            mallopt.restype = ctypes.c_int
            _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
                bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
