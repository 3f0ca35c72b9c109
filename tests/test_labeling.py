"""Unit tests of structure generation (mtplib.structures), labelling (mtplib.labeling) and the
workflow's chunking (scripts.mtpflow.settings), without Snakemake."""

import json

import numpy as np
import pytest
from ase.build import bulk
from ase.io import read

from ase.calculators.emt import EMT

from mtplib.labeling import (REGISTRY, ReferenceCode, calculator_factory, get_code, register,
                             runs_python_under_mpi)
from mtplib.labeling.frames import append_frame, label_summary, read_complete_frames
from mtplib.labeling.isolated import isolated_atom, isolated_energies
from mtplib.labeling.label import NonFiniteResult, compute_labels, label_structures, partial_path
from mtplib.labeling.registry import make_calculator, resolve
from mtplib.labeling.testing import FailingEMT, FlakyEMT
from mtplib.structures import build_phase, displace
from scripts.mtpflow import settings as wfsettings


def _frames(n=8, phase="Cu"):
    unit = bulk("Cu", "fcc", a=3.61, cubic=True)
    return displace(unit, phase, [[1, 1, 1]], n, rattle=0.05, cell_strain=0.02, seed=0)


def test_displace_is_seeded_and_records_info():
    unit = bulk("Cu", "fcc", a=3.61, cubic=True)
    a = displace(unit, "Cu", [[1, 1, 1], [2, 1, 1]], 3, rattle=0.05, cell_strain=0.03, seed=7)
    b = displace(unit, "Cu", [[1, 1, 1], [2, 1, 1]], 3, rattle=0.05, cell_strain=0.03, seed=7)
    c = displace(unit, "Cu", [[1, 1, 1], [2, 1, 1]], 3, rattle=0.05, cell_strain=0.03, seed=8)
    assert len(a) == 6
    assert [x.info["index"] for x in a] == list(range(6))
    assert [x.info["supercell"] for x in a] == ["1x1x1"] * 3 + ["2x1x1"] * 3
    assert [len(x) for x in a] == [4] * 3 + [8] * 3
    assert all(x.info["phase"] == "Cu" for x in a)
    np.testing.assert_array_equal(a[4].positions, b[4].positions)
    assert not np.allclose(a[4].positions, c[4].positions)


def test_displace_strain_is_symmetric_and_bounded():
    unit = bulk("Cu", "fcc", a=3.61, cubic=True)
    frames = displace(unit, "Cu", [[1, 1, 1]], 20, rattle=0.0, cell_strain=0.03, seed=1)
    for atoms in frames:
        deformation = np.linalg.solve(unit.cell.array, atoms.cell.array)  # cell' = cell @ F
        eps = deformation - np.eye(3)
        np.testing.assert_allclose(eps, eps.T, atol=1e-12)
        assert np.abs(eps).max() <= 0.03 + 1e-12
        # rattle 0: fractional coordinates unchanged by the strain
        np.testing.assert_allclose(atoms.get_scaled_positions(), unit.get_scaled_positions(), atol=1e-12)


def test_displace_rattle_amplitude():
    unit = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    (atoms,) = displace(unit, "Cu", [[1, 1, 1]], 1, rattle=0.1, cell_strain=0.0, seed=3)
    d = atoms.positions - unit.positions
    d -= np.round(d @ np.linalg.inv(unit.cell.array)) @ unit.cell.array  # undo wrapping
    assert abs(d.std() - 0.1) < 0.015


def test_build_phase_bulk_crystal_file(tmp_path):
    cu = build_phase("Cu", {"bulk": {"name": "Cu", "crystalstructure": "fcc", "a": 3.6, "cubic": True}})
    assert len(cu) == 4 and cu.pbc.all()
    l12 = build_phase("Cu3Au", {"crystal": {"symbols": ["Au", "Cu"], "basis": [[0, 0, 0], [0, 0.5, 0.5]],
                                            "spacegroup": 221, "cellpar": [3.75, 3.75, 3.75, 90, 90, 90]}})
    assert l12.get_chemical_formula() == "AuCu3"
    cu.write(tmp_path / "POSCAR", format="vasp")
    assert len(build_phase("x", {"file": "POSCAR"}, base_dir=tmp_path)) == 4
    with pytest.raises(FileNotFoundError, match=r"phases\.y\.file"):
        build_phase("y", {"file": "missing.cif"}, base_dir=tmp_path)


def test_chunk_indices_cover_all_structures_once():
    phase = {"displacements": {"supercells": [[1, 1, 1], [2, 2, 2]], "structures_per_supercell": 7}}
    assert wfsettings.n_structures(phase) == 14
    assert wfsettings.n_chunks(phase, 5) == 3
    chunks = [list(wfsettings.chunk_indices(14, 5, k)) for k in range(3)]
    assert chunks == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13]]
    with pytest.raises(IndexError, match="chunk 3"):
        wfsettings.chunk_indices(14, 5, 3)


def test_read_complete_frames_drops_and_repairs_torn_tail(tmp_path):
    path = tmp_path / "stream.extxyz"
    frames = _frames(3)
    for atoms in frames[:2]:
        append_frame(path, atoms)
    good_size = path.stat().st_size
    with open(path, "a") as fh:  # a frame torn by kill -9 in the middle of a write
        fh.write("4\nLattice=\"3.6 0 0 0 3.6 0 0 0 3.6\" Properties=species:S:1:pos:R:3\nCu 0 0 0\nCu 1.8")
    got = read_complete_frames(path)
    assert [a.info["index"] for a in got] == [0, 1]
    assert path.stat().st_size == good_size
    append_frame(path, frames[2])
    assert [a.info["index"] for a in read(path, index=":")] == [0, 1, 2]


def test_compute_labels_rejects_non_finite():
    atoms = _frames(1)[0]
    with pytest.raises(NonFiniteResult, match="non-finite energy"):
        compute_labels(atoms, FailingEMT(every=1, mode="nan"))
    labelled = compute_labels(atoms, make_calculator("emt"))
    assert np.isfinite(labelled.get_potential_energy())
    assert labelled.get_stress().shape == (6,)


def test_label_structures_lists_failures_and_labels_the_rest(tmp_path):
    frames = _frames(8)
    out, failed = tmp_path / "c.extxyz", tmp_path / "c.failed.extxyz"
    stats = label_structures(frames, lambda: FailingEMT(every=4), out, failed, retries=2, log=lambda m: None)
    assert stats == {"labelled": 6, "failed": 2, "retried": 2, "skipped": 0, "timeouts": 0}
    bad = read(failed, index=":")
    assert [a.info["index"] for a in bad] == [0, 4]
    assert all("SCF did not converge" in a.info["failure_reason"] for a in bad)
    assert all(a.info["label_attempts"] == 3 for a in bad)
    good = read(out, index=":")
    assert [a.info["index"] for a in good] == [1, 2, 3, 5, 6, 7]
    ref = make_calculator("emt")
    for a in good:
        b = a.copy()
        b.calc = ref
        np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-6)  # extxyz keeps 8 decimals
    assert not partial_path(out).exists() and not partial_path(failed).exists()


def test_label_structures_retries_then_succeeds(tmp_path):
    FlakyEMT.attempts.clear()
    out, failed = tmp_path / "c.extxyz", tmp_path / "c.failed.extxyz"
    stats = label_structures(_frames(3), FlakyEMT, out, failed, retries=1, log=lambda m: None)
    assert stats["labelled"] == 3 and stats["failed"] == 0 and stats["retried"] == 3
    assert [a.info["label_attempts"] for a in read(out, index=":")] == [2, 2, 2]
    assert label_summary(read(out, index=":"), [])["retried"] == 3


def test_label_structures_resumes_from_partial(tmp_path):
    frames = _frames(5)
    out, failed = tmp_path / "c.extxyz", tmp_path / "c.failed.extxyz"
    done = compute_labels(frames[0], make_calculator("emt"))
    append_frame(partial_path(out), done)
    calls = []

    def factory():
        calc = make_calculator("emt")
        original = calc.calculate

        def spy(atoms=None, *args, **kwargs):
            calls.append(atoms.info["index"])
            return original(atoms, *args, **kwargs)

        calc.calculate = spy
        return calc

    stats = label_structures(frames, factory, out, failed, log=lambda m: None)
    assert stats["skipped"] == 1 and stats["labelled"] == 4
    assert 0 not in calls and sorted(set(calls)) == [1, 2, 3, 4]
    assert [a.info["index"] for a in read(out, index=":")] == [0, 1, 2, 3, 4]


def test_reference_errors_name_the_config_key():
    with pytest.raises(ValueError, match=r"reference\.name.*'nonsense'"):
        resolve("nonsense")
    with pytest.raises(ImportError, match=r"reference\.name.*no_such_module.*not importable"):
        resolve("no_such_module:Calc")
    try:
        import tblite.ase  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"reference\.name.*'tblite'.*mtplib\[xtb\]"):
            resolve("tblite")
    assert resolve("mtplib.labeling.testing:FailingEMT") is FailingEMT
    assert runs_python_under_mpi("gpaw") and not runs_python_under_mpi("vasp")


def test_isolated_atom_spin_settings():
    atoms, kw, mode = isolated_atom("O", "tblite", {"method": "GFN1-xTB"}, 15.0, spin=True)
    assert kw["multiplicity"] == 3 and kw["spin_polarization"] == 1.0 and not atoms.pbc.any()
    atoms, kw, mode = isolated_atom("Cu", "gpaw", {}, 12.0, spin=True)
    assert atoms.get_initial_magnetic_moments()[0] == 1.0 and kw["hund"] is True and atoms.pbc.all()
    atoms, kw, mode = isolated_atom("Cu", "vasp", {}, 12.0, spin=False)
    assert mode == "none" and "ispin" not in kw
    np.testing.assert_allclose(atoms.cell.lengths(), [12.0] * 3)


def test_isolated_energies_emt():
    result = isolated_energies(["Cu", "Au"], "emt", {}, box=12.0)
    # EMT's zero is the fcc crystal, so a lone atom costs the cohesive energy
    assert result["energies"]["Cu"] == pytest.approx(3.51, abs=0.05)
    assert result["energies"]["Au"] == pytest.approx(3.80, abs=0.05)
    json.dumps(result)


def test_summarize_counts():
    good = _frames(3)
    bad = _frames(1)
    bad[0].info.update(failure_reason="RuntimeError: x", label_attempts=3)
    s = label_summary(good, bad)
    assert (s["labelled"], s["failed"], s["retried"]) == (3, 1, 1)
    assert s["failures"] == [{"phase": "Cu", "index": 0, "reason": "RuntimeError: x"}]
    json.dumps(s)


def test_stale_partial_from_other_structures_is_discarded(tmp_path):
    out, failed = tmp_path / "c.extxyz", tmp_path / "c.failed.extxyz"
    old = compute_labels(_frames(2)[1], make_calculator("emt"))
    old.positions += 0.1  # same (phase, index), different structure: the config changed
    append_frame(partial_path(out), old)
    messages = []
    stats = label_structures(_frames(2), lambda: make_calculator("emt"), out, failed, log=messages.append)
    assert stats["skipped"] == 0 and stats["labelled"] == 2
    assert any("discarding partial results: 1" in m for m in messages)
    fresh = read(out, index=":")[1]
    np.testing.assert_allclose(fresh.positions, _frames(2)[1].positions, atol=1e-7)


def test_compile_kernels_covers_serial_and_parallel_paths(tmp_path):
    """The warm-up before stage 3 runs the config's species through the fit, the serial and
    the parallel evaluation (>= 2 * ATOMS_PER_THREAD atoms) and both active-set modes."""
    from mtplib.potential import ATOMS_PER_THREAD
    from mtplib.potential import MTPotential
    from mtplib.warmup import _toy_structures, compile_kernels

    large = _toy_structures(["Cu", "Au"], 5.0, 2 * ATOMS_PER_THREAD + 8, 1)[0]
    assert len(large) >= 2 * ATOMS_PER_THREAD and set(large.get_chemical_symbols()) == {"Cu", "Au"}
    assert large.get_all_distances(mic=True)[np.triu_indices(len(large), 1)].min() > 1.5
    pot = MTPotential.from_level(4, ["Cu", "Au"], 2.0, 4.5, 4)
    record = compile_kernels(pot, tmp_path / "kernels.json", log=lambda m: None)
    assert json.loads((tmp_path / "kernels.json").read_text()) == record
    assert record["elements"] == ["Cu", "Au"]
    assert record["basis_functions"] == pot.alpha_scalar_moments
    assert record["cpu_s"] > 0 and record["wall_s"] > 0


class ScaledEMT(EMT):
    """A made-up 'code' for the registry test: EMT with energies and forces scaled."""

    def __init__(self, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        super().calculate(atoms, properties, system_changes)
        for key in ("energy", "free_energy", "forces", "stress", "energies"):
            if key in self.results:
                self.results[key] = self.results[key] * self.factor


def test_a_new_reference_code_is_one_registry_entry(tmp_path):
    """Registering a code is all it takes to label with it and to get its isolated atoms."""
    def spin(atoms, kwargs, moment):
        kwargs["spin_note"] = moment
        return "noted"

    def prepare(kwargs, mpi_prefix):
        kwargs.pop("spin_note", None)
        kwargs["factor"] = kwargs.pop("scale", 1.0)
        return kwargs

    code = register(ReferenceCode("scaled-emt", __name__, "ScaledEMT", conda_env="mtp",
                                  isolated_periodic=True, isolated_spin=spin, prepare=prepare))
    try:
        assert get_code("scaled-emt") is code and runs_python_under_mpi("scaled-emt")
        frames = _frames(3)
        out, failed = tmp_path / "c.extxyz", tmp_path / "c.failed.extxyz"
        stats = label_structures(frames, calculator_factory("scaled-emt", {"scale": 2.0}), out,
                                 failed, log=lambda m: None)
        assert stats["labelled"] == 3 and stats["failed"] == 0
        for labelled, atoms in zip(read(out, index=":"), frames):
            atoms.calc = EMT()
            assert labelled.get_potential_energy() == pytest.approx(2 * atoms.get_potential_energy())
            np.testing.assert_allclose(labelled.get_forces(), 2 * atoms.get_forces(), atol=1e-10)
        atoms, kw, mode = isolated_atom("Ni", "scaled-emt", {"scale": 2.0}, 10.0, spin=True)
        assert atoms.pbc.all() and mode == "noted" and kw["spin_note"] > 0
        result = isolated_energies(["Cu"], "scaled-emt", {"scale": 2.0}, box=12.0)
        assert result["energies"]["Cu"] == pytest.approx(2 * isolated_energies(["Cu"], "emt", {})
                                                         ["energies"]["Cu"])
    finally:
        REGISTRY.pop("scaled-emt")
