"""Numba's on-disk cache in one directory per version of mtplib's numba sources.

Numba checks a cached function against its own source file only (time stamp and size), not
against the functions it calls from other files, which it compiles into itself. So after an
update that changed only `kernels/mtp.py`, `kernels/training.py`'s cached `batch_evaluate`
still held the old `kernel_tables` and `mtp_batch`, read the new table layout with the old
code, and crashed (segfault). `isolate_cache` points numba at a subdirectory named by a
digest of every mtplib module that uses numba: any change to any of them starts a fresh
cache, and versions never share entries (e.g. two checkouts, or a cluster's persistent
`~/.cache/mtplib-numba/<cpu>` across an update).

It runs once per process, when the first kernel module (`mtplib.kernels`, `mtplib.neighbors`)
is imported, before any kernel is defined. The base directory is
`NUMBA_CACHE_DIR` when set (the profiles set one per CPU model), else mtplib's own
`__pycache__` when writable, else `~/.cache/mtplib-numba`. NUMBA_CACHE_DIR is set to the
versioned directory, so child processes (MPI ranks, Snakemake jobs) use it as it is.
"""
import hashlib
import os
import re
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PREFIX = "mtplib-"
_VERSIONED = re.compile(PREFIX + "[0-9a-f]{16}")


def numba_sources_digest(root=PACKAGE_DIR):
    """Hex digest (16 characters) of the relative paths and bytes of every `*.py` under root
    that mentions numba."""
    digest = hashlib.sha256()
    for path in sorted(Path(root).rglob("*.py")):
        data = path.read_bytes()
        if b"numba" in data or b"njit" in data:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()[:16]


def _default_base():
    own = PACKAGE_DIR / "__pycache__"
    if (own.is_dir() and os.access(own, os.W_OK)) or (not own.exists()
                                                      and os.access(PACKAGE_DIR, os.W_OK)):
        return str(own / "numba")
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "mtplib-numba")


_isolated = {}


def isolate_cache(root=PACKAGE_DIR, force=False):
    """Point numba's cache (NUMBA_CACHE_DIR and numba.config.CACHE_DIR) at
    <base>/mtplib-<digest of the numba sources>; returns that directory. Later calls for the
    same root return the first answer unless `force`."""
    if root in _isolated and not force:
        return _isolated[root]
    base = os.environ.get("NUMBA_CACHE_DIR") or _default_base()
    if _VERSIONED.fullmatch(Path(base).name):   # set by a parent process, maybe another version
        base = str(Path(base).parent)
    target = os.path.join(base, PREFIX + numba_sources_digest(root))
    os.environ["NUMBA_CACHE_DIR"] = target
    numba = sys.modules.get("numba")      # numba reads the variable at import;
    if numba is not None:                 # when already imported, set it here
        numba.config.CACHE_DIR = target
    _isolated[root] = target
    return target
