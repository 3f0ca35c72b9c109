"""The fast path of `mtplib evaluate`: `.cfg` and extxyz as joined arrays (`Frames`) against the
general readers and writers (read_cfg/write_cfg, ase.io), and `evaluate_frames` against
`evaluate_many`; the CLI's output against the old Atoms path, byte for byte."""
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write
from conftest import random_potential, triclinic_cell

from mtplib.cli import main
from mtplib.io import Frames, read_frames, write_dataset, write_frames
from mtplib.io.cfg import read_cfg, read_cfg_frames, write_cfg, write_cfg_frames
from mtplib.io.extxyz import read_extxyz_frames, write_extxyz_frames

SPECIES = ["Ag", "Pd", "Cu"]


def _labelled(atoms, rng, stress=True):
    atoms.calc = SinglePointCalculator(
        atoms, energy=float(rng.normal() * 10), forces=rng.normal(size=(len(atoms), 3)),
        stress=rng.normal(size=6) * 1e-2 if stress else None)
    return atoms


def _dataset(info=True):
    """Multi-species periodic cells (triclinic, orthorhombic) and a non-periodic cluster."""
    rng = np.random.default_rng(3)
    tri = triclinic_cell(["Ag", "Pd"], n_atoms=6, seed=1)
    tri.positions += rng.normal(scale=1e-3, size=tri.positions.shape)
    ortho = Atoms("Pd2Cu", cell=[3.9, 4.1, 4.3], pbc=True,
                  positions=[[0, 0, 0], [1.95, 2.05, 0.1], [0.2, 2.0, 2.2]])
    cluster = Atoms("CuAgPd", positions=[[0, 0, 0], [2.6, 0, 0], [0, 2.7, 0.3]])
    if info:
        tri.info["conf_id"] = "AgPd_tri"
        cluster.info["EFS_by"] = "VASP PBE"
    return [_labelled(tri, rng), _labelled(ortho, rng), _labelled(cluster, rng, stress=False)]


def _assert_frames_equal(a, b, types=True):
    np.testing.assert_array_equal(a.atom_start, b.atom_start)
    np.testing.assert_array_equal(a.numbers, b.numbers)
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.cells, b.cells)
    np.testing.assert_array_equal(a.pbc, b.pbc)
    if types:
        np.testing.assert_array_equal(a.types, b.types)
    for key in ("energy", "forces", "stress", "energies"):
        x, y = getattr(a, key), getattr(b, key)
        assert (x is None) == (y is None), key
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=key)


def test_cfg_fast_reader_equals_read_cfg(tmp_path):
    path = tmp_path / "set.cfg"
    write_cfg(path, _dataset(), species=SPECIES)
    fast = read_cfg_frames(path, SPECIES)
    assert fast is not None
    slow = Frames.from_atoms(read_cfg(path, SPECIES))
    _assert_frames_equal(fast, slow)
    assert fast.info == [{"conf_id": "AgPd_tri"}, {}, {"EFS_by": "VASP PBE"}]
    assert np.isnan(fast.stress[2]).all() and not np.isnan(fast.stress[:2]).any()
    # without species: types only, atoms of number 0, as read_cfg
    bare = read_cfg_frames(path)
    assert (bare.numbers == 0).all()
    np.testing.assert_array_equal(bare.types, fast.types)


def test_cfg_fast_writer_writes_write_cfg_bytes(tmp_path):
    images = _dataset()
    write_cfg(tmp_path / "slow.cfg", images, species=SPECIES)
    write_cfg_frames(tmp_path / "fast.cfg", Frames.from_atoms(images), species=SPECIES)
    assert (tmp_path / "fast.cfg").read_bytes() == (tmp_path / "slow.cfg").read_bytes()
    # and it reads back to the same frames
    again = read_cfg_frames(tmp_path / "fast.cfg", SPECIES)
    _assert_frames_equal(again, read_cfg_frames(tmp_path / "slow.cfg", SPECIES))


def test_cfg_fast_reader_declines_other_forms(tmp_path):
    """The old variant, direct coordinates and extra sections go to read_cfg (same values)."""
    text = ("BEGIN_CFG\n Size\n 1\n SuperCell\n 3 0 0\n 0 3 0\n 0 0 3\n"
            " AtomData: id type direct_x direct_y direct_z\n 1 0 0.5 0.5 0.5\n"
            " EnergyWeight\n 1.0\n Energy\n -1.5\nEND_CFG\n")
    path = tmp_path / "old.cfg"
    path.write_text(text)
    assert read_cfg_frames(path, ["Cu"]) is None
    frames = read_frames(path, ["Cu"])
    np.testing.assert_array_equal(frames.positions, [[1.5, 1.5, 1.5]])
    assert frames.energy.tolist() == [-1.5]


def test_cfg_bad_input_still_names_file_and_line(tmp_path):
    path = tmp_path / "bad.cfg"
    write_cfg(path, _dataset(), species=SPECIES)
    lines = path.read_text().splitlines()
    lines[8] = lines[8].replace("e", "x", 1)          # an atom line of the first block
    path.write_text("\n".join(lines) + "\n")
    assert read_cfg_frames(path, SPECIES) is None
    with pytest.raises(ValueError, match=r"bad\.cfg:9: AtomData: non-numeric"):
        read_frames(path, SPECIES)


def test_extxyz_fast_reader_equals_ase(tmp_path):
    path = tmp_path / "set.extxyz"
    images = _dataset(info=False)
    images[0].calc.results["energies"] = np.arange(len(images[0])) * 0.25
    for atoms in images[1:]:
        atoms.calc.results["energies"] = np.ones(len(atoms))
    write(path, images, format="extxyz")
    fast = read_extxyz_frames(path)
    assert fast is not None
    _assert_frames_equal(fast, Frames.from_atoms(read(path, ":")), types=False)
    assert fast.types is None and fast.pbc.tolist()[2] == [False] * 3


def test_extxyz_fast_reader_declines_other_keys(tmp_path):
    path = tmp_path / "info.extxyz"
    images = _dataset(info=False)
    images[0].info["config_type"] = "bulk"
    write(path, images, format="extxyz")
    assert read_extxyz_frames(path) is None
    _assert_frames_equal(read_frames(path), Frames.from_atoms(read(path, ":")), types=False)


@pytest.mark.parametrize("types", [False, True])
def test_extxyz_fast_writer_writes_ase_bytes(tmp_path, types):
    frames = Frames.from_atoms(_dataset(info=False))
    rng = np.random.default_rng(5)
    frames.energies = rng.normal(size=len(frames.numbers))
    if types:                         # as read from a .cfg: the MLIP types become a column
        frames.types = np.array([{47: 0, 46: 1, 29: 2}[z] for z in frames.numbers])
    assert write_extxyz_frames(tmp_path / "fast.extxyz", frames)
    write(tmp_path / "ase.extxyz", frames.to_atoms(), format="extxyz")
    assert (tmp_path / "fast.extxyz").read_bytes() == (tmp_path / "ase.extxyz").read_bytes()


def test_extxyz_fast_writer_declines_info(tmp_path):
    frames = Frames.from_atoms(_dataset(info=True))
    assert not write_extxyz_frames(tmp_path / "x.extxyz", frames)
    assert not (tmp_path / "x.extxyz").exists()
    write_frames(tmp_path / "x.extxyz", frames)          # through ASE
    assert read(tmp_path / "x.extxyz", "0").info["conf_id"] == "AgPd_tri"


def test_evaluate_frames_equals_evaluate_many():
    import numba
    pot = random_potential(6, SPECIES, seed=2)
    images = _dataset(info=False)
    big = triclinic_cell(["Ag", "Pd", "Cu"], n_atoms=6, seed=4).repeat((4, 4, 4))
    images.append(big)                    # 384 atoms: alone through the parallel kernel on 2 threads
    frames = Frames.from_atoms(images)
    for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
        numba.set_num_threads(threads)
        try:
            energy, forces, stress, energies = pot.evaluate_frames(frames)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        expected = pot.evaluate_many(images[:3]) + [pot.evaluate(big)]
        for c, ref in enumerate(expected):
            a0, a1 = frames.atom_start[c], frames.atom_start[c + 1]
            assert energy[c] == ref["energy"]
            np.testing.assert_array_equal(forces[a0:a1], ref["forces"])
            np.testing.assert_array_equal(energies[a0:a1], ref["energies"])
            if ref["stress"] is None:
                assert np.isnan(stress[c]).all()
            else:
                np.testing.assert_allclose(stress[c], ref["stress"], rtol=1e-12, atol=1e-15)


def test_evaluate_frames_names_unknown_species_and_types():
    pot = random_potential(6, ["Ag", "Pd"], seed=2)
    frames = Frames.from_atoms(_dataset(info=False))
    with pytest.raises(ValueError, match=r"data\[1\]: species \['Cu'\] not in the potential"):
        pot.evaluate_frames(frames)
    frames.types = np.full(len(frames.numbers), 2)
    with pytest.raises(ValueError, match=r"data\[0\]: MLIP type 2 out of range for 2 species"):
        pot.evaluate_frames(frames)


def _old_evaluate(pot, images, out, species):
    """What `mtplib evaluate` wrote before the fast path: Atoms, evaluate, SinglePointCalculator."""
    for atoms, res in zip(images, [pot.evaluate(a) for a in images]):
        atoms.calc = SinglePointCalculator(atoms, energy=res["energy"], forces=res["forces"],
                                           stress=res["stress"], energies=res["energies"])
    write_dataset(out, images, species=species)


@pytest.mark.parametrize("src,dst", [("cfg", "cfg"), ("extxyz", "extxyz"), ("cfg", "extxyz"),
                                     ("extxyz", "cfg")])
def test_cli_evaluate_writes_the_old_bytes(tmp_path, src, dst):
    pot = random_potential(6, SPECIES, seed=2)
    pot.save(tmp_path / "pot.mtp")
    pot = pot.load(tmp_path / "pot.mtp")
    data = tmp_path / f"in.{src}"
    images = _dataset(info=False)
    if src == "cfg":
        write_cfg(data, images, species=SPECIES)
        images = read_cfg(data, species=SPECIES)
    else:
        write(data, images, format="extxyz")
        images = read(data, ":")
    _old_evaluate(pot, images, tmp_path / f"old.{dst}", SPECIES)
    assert main(["evaluate", str(tmp_path / "pot.mtp"), str(data), str(tmp_path / f"new.{dst}"),
                 "--species", *SPECIES]) == 0
    assert (tmp_path / f"new.{dst}").read_bytes() == (tmp_path / f"old.{dst}").read_bytes()


def test_cli_evaluate_bad_species_is_one_line(tmp_path, capsys):
    pot = random_potential(6, ["Ag", "Pd"], seed=2)
    pot.save(tmp_path / "pot.mtp")
    write(tmp_path / "in.extxyz", _dataset(info=False), format="extxyz")
    assert main(["evaluate", str(tmp_path / "pot.mtp"), str(tmp_path / "in.extxyz"),
                 str(tmp_path / "out.extxyz"), "--species", "Ag", "Pd"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "in.extxyz[1]: species ['Cu'] not in the potential" in err[0]


def test_cli_verb_table_matches_the_sub_command_modules():
    """`build_parser` skips SUBCOMMAND_MODULES for a core verb: the table must list every
    verb each module adds, and no core verb may be among them."""
    import argparse
    import importlib

    from mtplib.cli import CORE_VERBS, SUBCOMMAND_MODULES, build_parser
    for module, verbs in SUBCOMMAND_MODULES.items():
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).add_parsers(sub)
        assert tuple(sub.choices) == verbs
    full = build_parser()._subparsers._group_actions[0].choices
    core = build_parser("evaluate")._subparsers._group_actions[0].choices
    assert tuple(core) == CORE_VERBS
    assert set(full) == set(CORE_VERBS).union(*SUBCOMMAND_MODULES.values())


def test_evaluate_imports_no_training_scipy_optimize_or_ase_io(tmp_path):
    """Start-up of `mtplib evaluate` on .cfg/extxyz: none of the slow imports it does not need."""
    import subprocess
    import sys
    pot = random_potential(6, SPECIES, seed=2)
    pot.save(tmp_path / "pot.mtp")
    write_cfg(tmp_path / "in.cfg", _dataset(info=False), species=SPECIES)   # (Features: ASE)
    code = ("import sys; from mtplib.cli import main; "
            "main(['evaluate', sys.argv[1], sys.argv[2], sys.argv[3]]); "
            "print(' '.join(m for m in ('mtplib.training', 'scipy.optimize', 'ase.io', "
            "'matplotlib', 'snakemake') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "pot.mtp"),
                          str(tmp_path / "in.cfg"), str(tmp_path / "out.extxyz")],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[-1] == ""
    assert (tmp_path / "out.extxyz").exists()
