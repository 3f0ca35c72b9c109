"""Stage 2 end: merge labelled chunks, list failures, summarise."""

from __future__ import annotations

from collections import Counter

from ase.io import read


def read_all(paths) -> list:
    frames = []
    for path in paths:
        frames.extend(read(path, index=":", format="extxyz") if _nonempty(path) else [])
    return frames


def _nonempty(path) -> bool:
    with open(path) as fh:
        return bool(fh.read(1))


def summarize(labelled: list, failed: list) -> dict:
    """Counts of labelled, failed and retried configurations, per phase too."""
    everything = labelled + failed
    return {
        "labelled": len(labelled),
        "failed": len(failed),
        "retried": int(sum(int(a.info.get("label_attempts", 1)) > 1 for a in everything)),
        "labelled_per_phase": dict(Counter(a.info.get("phase") for a in labelled)),
        "failed_per_phase": dict(Counter(a.info.get("phase") for a in failed)),
        "failures": [
            {"phase": a.info.get("phase"), "index": int(a.info["index"]),
             "reason": a.info.get("failure_reason")}
            for a in failed
        ],
    }
