"""Extended-XYZ frames: crash-safe streams (append one frame at a time, read back whole
frames), atomic writes, merged reads and the labelling summary.

All ase.io calls pass ``parallel=False``: under MPI only rank 0 calls these
functions, and ASE's default (read on the master, then broadcast) would post a
collective that the other ranks never join.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from pathlib import Path

from ase import Atoms
from ase.io import read, write


def frame_text(atoms: Atoms) -> str:
    buf = io.StringIO()
    write(buf, atoms, format="extxyz", parallel=False)
    return buf.getvalue()


def append_frame(path: str | Path, atoms: Atoms) -> None:
    """Append one frame and force it to disk (flush + fsync) before returning."""
    with open(path, "a") as fh:
        fh.write(frame_text(atoms))
        fh.flush()
        os.fsync(fh.fileno())


def read_complete_frames(path: str | Path, repair: bool = True) -> list[Atoms]:
    """Read every complete frame of an extxyz stream.

    A process killed while appending can leave a torn last frame; it is dropped
    and, with ``repair``, truncated from the file so that appends continue
    cleanly after the last complete frame.
    """
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    good_end = 0  # byte offset just after the last complete frame
    pos, i = 0, 0
    while i < len(lines):
        try:
            natoms = int(lines[i].strip())
        except ValueError:
            break
        block = lines[i : i + natoms + 2]
        if len(block) < natoms + 2 or not block[-1].endswith(b"\n"):
            break
        pos += sum(len(line) for line in block)
        good_end = pos
        i += natoms + 2
    if repair and good_end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
            fh.flush()
            os.fsync(fh.fileno())
    if good_end == 0:
        return []
    return read(io.StringIO(data[:good_end].decode()), index=":", format="extxyz", parallel=False)


def write_frames_atomic(path: str | Path, frames: list[Atoms]) -> None:
    """Write ``frames`` to ``path`` via a temporary file and ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        for atoms in frames:
            fh.write(frame_text(atoms))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_frames(paths) -> list[Atoms]:
    """Every frame of the extxyz files in ``paths`` (missing or empty files hold none)."""
    frames = []
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        path = Path(path)
        if path.exists() and path.stat().st_size > 0:
            frames.extend(read(path, index=":", format="extxyz", parallel=False))
    return frames


def label_summary(labelled: list, failed: list) -> dict:
    """Counts of labelled, failed and retried configurations, per phase too."""
    everything = labelled + failed
    return {
        "labelled": len(labelled),
        "failed": len(failed),
        "retried": int(sum(int(a.info.get("label_attempts", 1)) > 1 for a in everything)),
        "labelled_per_phase": dict(Counter(a.info.get("phase") for a in labelled)),
        "failed_per_phase": dict(Counter(a.info.get("phase") for a in failed)),
        "failures": [{"phase": a.info.get("phase"), "index": int(a.info["index"]),
                      "reason": a.info.get("failure_reason")} for a in failed],
    }
