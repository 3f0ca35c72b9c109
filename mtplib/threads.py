"""Serial numba kernels run side by side on Python threads.

A kernel `kernel(lo, hi, *args)` (`@njit(nogil=True)`: it releases the GIL) processes the
items lo..hi-1 of some range -- blocks of atoms, structures -- and writes only their own
output slices; `run_chunks` splits the range into chunks and runs them on
`numba.get_num_threads()` threads, so `numba.set_num_threads` and NUMBA_NUM_THREADS apply
as to numba's own parallel loops. Reductions over items are left to the caller, in a fixed
order, so results do not depend on the thread count. (A serial kernel compiles several times
faster than the same loop under `parallel=True`.)
"""
import os
import threading

from .jit import get_num_threads

# chunks per thread: threads that finish early take more chunks (load balance)
CHUNKS_PER_THREAD = 4

_pool = None
_pool_lock = threading.Lock()


def _executor():
    """The shared pool of NUMBA_NUM_THREADS - 1 helper threads (the caller runs chunks too)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            from concurrent.futures import ThreadPoolExecutor
            import numba
            _pool = ThreadPoolExecutor(max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                       thread_name_prefix="mtplib")
        return _pool


def _forget_pool():
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()     # a forked child has none of the threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def run_chunks(kernel, n_items, *args):
    """Call kernel(lo, hi, *args) for chunks [lo, hi) covering 0..n_items-1, on
    `numba.get_num_threads()` threads (the caller's among them); on one thread, one call in
    the caller's thread. Returns when all chunks are done; re-raises a chunk's exception."""
    threads = min(get_num_threads(), n_items)
    if threads <= 1:
        if n_items > 0:
            kernel(0, n_items, *args)
        return
    n_chunks = min(n_items, CHUNKS_PER_THREAD * threads)
    chunks = iter(range(n_chunks))           # shared: each thread takes the next chunk
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                k = next(chunks, n_chunks)
            if k == n_chunks:
                return
            kernel(k * n_items // n_chunks, (k + 1) * n_items // n_chunks, *args)

    pool = _executor()
    helpers = [pool.submit(work) for _ in range(threads - 1)]
    try:
        work()
    finally:
        for future in helpers:
            # a helper not started yet (the pool busy, e.g. a nested call) has nothing left
            if not future.cancel():
                future.result()
