"""Faults in labelling: a hanging reference (reference.timeout), two writers on one chunk
(the chunk lock), and retrying the failures of a finished chunk."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from mtplib.labeling import (TIMEOUT_REASON, label_structures, read_frames, retry_failures)
from mtplib.labeling.label import lock_path, partial_path
from mtplib.labeling.testing import FailingEMT, HangingEMT
from mtplib.structures import displace

ROOT = Path(__file__).resolve().parents[1]


def _frames(n=4):
    unit = bulk("Cu", "fcc", a=3.61, cubic=True)
    return displace(unit, "Cu", [[1, 1, 1]], n, 0.05, 0.02, seed=0)


def test_a_hanging_structure_times_out_and_the_chunk_goes_on(tmp_path):
    out, failed = tmp_path / "chunk_0.extxyz", tmp_path / "chunk_0.failed.extxyz"
    lines = []
    t0 = time.perf_counter()
    stats = label_structures(_frames(4), lambda: HangingEMT(hang=[1], hang_seconds=600), out,
                             failed, retries=2, log=lines.append, timeout=1.0)
    wall = time.perf_counter() - t0
    assert wall < 10, wall              # one timeout of 1 s, not 600 s, and no retry of the hang
    assert stats["labelled"] == 3 and stats["failed"] == 1 and stats["timeouts"] == 1
    [hung] = read_frames([failed])
    assert hung.info["index"] == 1 and hung.info["failure_reason"] == TIMEOUT_REASON
    assert hung.info["label_attempts"] == 1
    assert [a.info["index"] for a in read_frames([out])] == [0, 2, 3]
    assert any("no result after 1 s" in line for line in lines), lines
    assert not partial_path(out).exists()


def test_no_timeout_when_null(tmp_path):
    stats = label_structures(_frames(2), EMT, tmp_path / "a.extxyz", tmp_path / "a.failed.extxyz",
                             timeout=None, log=lambda m: None)
    assert stats["labelled"] == 2 and stats["timeouts"] == 0


WRITER = """
import sys
from ase.build import bulk
from mtplib.labeling import label_structures
from mtplib.labeling.testing import LoggingEMT
from mtplib.structures import displace
frames = displace(bulk("Cu", "fcc", a=3.61, cubic=True), "Cu", [[1, 1, 1]], 4, 0.05, 0.02, seed=0)
out, calls, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
print(label_structures(frames, lambda: LoggingEMT(calls, delay=delay), out,
                       out.replace(".extxyz", ".failed.extxyz")), flush=True)
"""


def test_two_writers_on_one_chunk_never_lose_labels(tmp_path):
    out = tmp_path / "chunk_0.extxyz"
    calls = tmp_path / "calls.log"
    cmd = [sys.executable, "-c", WRITER, str(out), str(calls)]
    first = subprocess.Popen(cmd + ["2.0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=ROOT)
    while not calls.exists():       # the first writer holds the lock and is labelling
        time.sleep(0.05)
    second = subprocess.run(cmd + ["0"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    first_out, first_err = first.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, first_err + second.stderr
    assert "waiting: another process is labelling" in second.stdout
    assert str(lock_path(out)) in second.stdout
    assert "already labelled by another process" in second.stdout
    # every structure computed once, and the chunk complete
    assert sorted(int(x) for x in calls.read_text().split()) == [0, 1, 2, 3]
    assert [a.info["index"] for a in read_frames([out])] == [0, 1, 2, 3]
    assert "'labelled': 4" in first_out and "'skipped': 4" in second.stdout


def test_retry_failures_recomputes_only_the_failures(tmp_path):
    out, failed = tmp_path / "chunk_0.extxyz", tmp_path / "chunk_0.failed.extxyz"
    label_structures(_frames(6), lambda: FailingEMT(every=3), out, failed, retries=0,
                     log=lambda m: None)
    assert [a.info["index"] for a in read_frames([failed])] == [0, 3]
    before = {a.info["index"]: a.get_potential_energy() for a in read_frames([out])}
    seen = []

    class Spy(EMT):          # the fixed reference: records what it is asked to compute
        def calculate(self, atoms=None, properties=("energy",), system_changes=()):
            seen.append(int(atoms.info["index"]))
            super().calculate(atoms, properties, system_changes)

    stats = retry_failures(out, failed, Spy, retries=0, log=lambda m: None)
    assert sorted(set(seen)) == [0, 3]
    assert stats["labelled"] == 2 and stats["failed"] == 0
    labelled = read_frames([out])
    assert [a.info["index"] for a in labelled] == list(range(6))
    for a in labelled:
        if a.info["index"] in before:
            assert a.get_potential_energy() == before[a.info["index"]]
        fresh = a.copy()
        fresh.calc = EMT()
        assert a.get_potential_energy() == pytest.approx(fresh.get_potential_energy(), abs=1e-6)
    assert read_frames([failed]) == []
    # nothing left to retry: a second call computes nothing
    seen.clear()
    assert retry_failures(out, failed, Spy, log=lambda m: None)["labelled"] == 0 and not seen
