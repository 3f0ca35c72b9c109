"""Active learning by relaxation of a candidate pool (Novikov et al. 2021, sec. 6).

Each iteration relaxes every structure of the pool with the current potential
(`relax_pool`, gamma checked every step). A relaxation converges, runs out of steps, fails,
or stops at an extrapolative configuration (gamma >= gamma_break). The stopped
configurations are the candidates: maxvol picks those that grow |det A| (`select_add`),
the reference labels them, and the potential is refitted on the grown training set
(`mtplib.training.fit`, warm start from the previous potential). The loop ends when no
relaxation stops: the last pass is the relaxed pool of the final potential.

With an output folder the loop resumes: each finished iteration leaves its labels and the
refitted potential there (`iteration.json` written last), and a rerun with the same pool,
training set, potential and settings starts after the last finished iteration (a larger
`max_iterations` continues a loop that hit the cap); other inputs start it afresh.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import ase.io
import numpy as np

from ..labeling import read_frames, write_frames_atomic
from ..labeling.label import compute_labels
from ..training import fit
from .grade import ActiveSet
from .md import Thresholds
from .relax import relax_pool
from .select import select_add


def label(images, calculator_factory):
    """Copies of `images` with the reference's energy, forces and stress (periodic cells),
    by the labelling's `compute_labels`; (labelled, failed): a calculation that raises or
    gives non-finite values is failed, its reason in info 'label_error'."""
    labelled, failed = [], []
    for atoms in images:
        try:
            labelled.append(compute_labels(atoms, calculator_factory()))
        except Exception as exc:   # any reference failure is recorded, not fatal
            atoms = atoms.copy()
            atoms.info["label_error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            failed.append(atoms)
    return labelled, failed


@dataclass
class RelaxationLearning:
    """The loop's outcome: the final potential and active set, the training set, one record
    per iteration, and the final pass's relaxations (pool order)."""

    potential: object
    active_set: ActiveSet
    training: list
    iterations: list = field(default_factory=list)
    relaxations: list = field(default_factory=list)
    converged: bool = False
    initial_labels: int = 0

    @property
    def labels_spent(self):
        """Reference calculations: the initial training set and every selection's labels."""
        return self.initial_labels + sum(r["labels"] for r in self.iterations)


def _write_iteration(out_dir, record, relaxations, selected):
    """The iteration's files; iteration.json last: it marks the iteration finished."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "relaxations.json").write_text(
        json.dumps([r.to_dict() for r in relaxations], indent=0) + "\n")
    ase.io.write(out_dir / "selected.extxyz", selected or [], format="extxyz")
    (out_dir / "iteration.json").write_text(json.dumps(record, indent=1) + "\n")


def _fingerprint(pool, training, potential, settings):
    """A digest of what the loop's result depends on (not max_iterations): a saved loop is
    resumed only under the same one."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=repr).encode())
    for atoms in list(pool) + list(training):
        for array in (atoms.numbers, atoms.positions, atoms.cell.array):
            h.update(np.ascontiguousarray(array).tobytes())
        if atoms.calc is not None:
            for key in ("energy", "forces", "stress"):
                if key in atoms.calc.results:
                    h.update(np.asarray(atoms.calc.results[key], dtype=float).tobytes())
    for f in dataclasses.fields(potential):
        if f.compare and f.name != "source":
            value = getattr(potential, f.name)
            h.update(value.tobytes() if isinstance(value, np.ndarray) else repr(value).encode())
    return h.hexdigest()


def _saved_state(out_dir, fingerprint):
    """(records, labelled frames, refitted potential's file) of the finished iterations that a
    rerun can continue from; ([], [], None) when none, or when the folder was written under
    another fingerprint (then it is cleared)."""
    stamp = out_dir / "fingerprint.txt"
    if not stamp.exists() or stamp.read_text().strip() != fingerprint:
        for old in out_dir.glob("iter_*"):
            shutil.rmtree(old)
        out_dir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(fingerprint + "\n")
        return [], [], None
    records, labelled, potential = [], [], None
    for k in range(10 ** 6):
        it = out_dir / f"iter_{k:03d}"
        if not ((it / "iteration.json").exists() and (it / "refitted.mtp").exists()):
            break
        records.append(json.loads((it / "iteration.json").read_text()))
        labelled.extend(read_frames(it / "labelled.extxyz"))
        potential = it / "refitted.mtp"
    return records, labelled, potential


def learn_by_relaxation(pool, training, init_potential, calculator_factory, *, thresholds=None,
                        optimizer="bfgs", fmax=0.01, steps=200, relax_cell=True, pressure=0.0,
                        max_iterations=20, max_select=None, mode="configuration",
                        selection_weights=None, fit_options=None, out_dir=None, log=print):
    """Active learning on the relaxation of `pool` (list of Atoms), from the labelled
    `training` set; `init_potential` is fitted on it first (seed and options `fit_options`,
    passed to `mtplib.training.fit`). `calculator_factory()` gives a fresh reference
    calculator. Records go to `out_dir`/iter_NNN/ when given. `selection_weights`
    (`SelectionWeights` or a dict; None: the mode's default) choose the active set's rows."""
    log = log or (lambda *a, **k: None)
    thresholds = thresholds or Thresholds(gamma_select=2.0, gamma_break=2.0)
    fit_options = dict(fit_options or {})
    quiet = (lambda *a, **k: None)
    training = list(training)
    result = RelaxationLearning(potential=None, active_set=None, training=training,
                                initial_labels=len(training))
    first, potential = 0, None
    if out_dir is not None:
        out_dir = Path(out_dir)
        settings = dict(thresholds=thresholds, optimizer=optimizer, fmax=fmax, steps=steps,
                        relax_cell=relax_cell, pressure=pressure, max_select=max_select,
                        mode=mode, selection_weights=selection_weights, fit_options=fit_options)
        records, labelled, saved = _saved_state(
            out_dir, _fingerprint(pool, training, init_potential, settings))
        if saved is not None:
            potential = type(init_potential).load(saved, species=init_potential.species)
            result.iterations, first = records, len(records)
            training = training + labelled
            result.training = training
            log(f"resuming after iteration {first - 1}: {len(labelled)} labels of "
                f"{out_dir} reused")
    if potential is None:
        potential = fit(training, init_potential, log=quiet, **fit_options)
    for iteration in range(first, max_iterations + 1):
        aset = ActiveSet.from_training(potential, training, mode=mode,
                                       where=f"training set of iteration {iteration}",
                                       weights=selection_weights)
        result.potential, result.active_set = potential, aset
        relaxations = relax_pool(potential, pool, active_set=aset, thresholds=thresholds,
                                 optimizer=optimizer, fmax=fmax, steps=steps,
                                 relax_cell=relax_cell, pressure=pressure, log=log)
        counts = {s: sum(r.status == s for r in relaxations)
                  for s in ("converged", "stopped", "not-converged", "failed")}
        stopped = [r.atoms for r in relaxations if r.status == "stopped"]
        record = dict(iteration=iteration, training_size=len(training), **counts,
                      candidates=len(stopped), selected=0, labels=0, label_failures=0,
                      max_gamma=float(max((r.max_gamma for r in relaxations), default=0.0)),
                      mtp_calls=int(sum(r.calls for r in relaxations)))
        selected, labelled = [], []
        it_dir = None if out_dir is None else out_dir / f"iter_{iteration:03d}"
        if stopped and iteration < max_iterations:
            # select_add refuses swaps that would leave A singular (an underdetermined
            # start): no fallback needed here (run_swaps(checked=True))
            sel = select_add(aset, stopped, max_count=max_select,
                             where=f"stopped configurations of iteration {iteration}")
            selected = [stopped[k] for k in sel.selected]
            log(f"iteration {iteration}: {len(stopped)} relaxations stopped; labelling the "
                f"{len(selected)} selected")
            labelled, failed = label(selected, calculator_factory)
            if it_dir is not None:       # what a resumed loop reads back, bit for bit
                it_dir.mkdir(parents=True, exist_ok=True)
                write_frames_atomic(it_dir / "labelled.extxyz", labelled)
                labelled = read_frames(it_dir / "labelled.extxyz")
            record.update(selected=len(selected), labels=len(selected),
                          label_failures=len(failed))
            training = training + labelled
            result.training = training
        log(f"iteration {iteration}: training {record['training_size']}, converged "
            f"{counts['converged']}, stopped {counts['stopped']}, not converged "
            f"{counts['not-converged']}, failed {counts['failed']}; selected {record['selected']}")
        result.iterations.append(record)
        result.relaxations = relaxations
        done = not stopped or iteration == max_iterations or not selected
        if not done:
            potential = fit(training, potential, log=quiet, warm_start=True, **fit_options)
            if it_dir is not None:
                potential.save(it_dir / "refitted.mtp")
                potential = type(potential).load(it_dir / "refitted.mtp",
                                                 species=potential.species)
        if it_dir is not None:
            _write_iteration(it_dir, record, relaxations, selected)
        if not stopped:
            result.converged = True
        if done:
            break
    return result
