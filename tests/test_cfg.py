"""mtplib.io.cfg: MLIP .cfg read/write, the old variant, error messages, conversion."""

from collections import defaultdict

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from conftest import shared_path

from mtplib.io.cfg import convert, iter_cfg, read_cfg, write_cfg


def _labelled(atoms, rng, energy=True, forces=True, stress=True):
    results = {}
    if energy:
        results["energy"] = float(rng.normal() * 10)
    if forces:
        results["forces"] = rng.normal(size=(len(atoms), 3))
    if stress:
        results["stress"] = rng.normal(size=6) * 1e-2
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def _dataset():
    rng = np.random.default_rng(7)
    cell = np.array([[4.1, 0.0, 0.0], [1.3, 3.9, 0.0], [0.7, -0.9, 4.4]])  # triclinic
    tri = Atoms("AgPdPdAg", cell=cell, pbc=True,
                scaled_positions=rng.uniform(size=(4, 3)))
    tri.info["conf_id"] = "AgPd_tri"
    tri.info["EFS_by"] = "VASP PBE"  # a value with a space
    no_stress = Atoms("Pd2", cell=np.eye(3) * 3.9, pbc=True,
                      positions=[[0, 0, 0], [1.95, 1.95, 0.1]])
    no_forces = Atoms("AgCu", cell=np.eye(3) * 5.0, pbc=True,
                      positions=[[0.1, 0, 0], [2.5, 2.4, 2.6]])
    cluster = Atoms("CuAgPd", positions=[[0, 0, 0], [2.6, 0, 0], [0, 2.7, 0.3]])
    cluster.info["conf_id"] = "cluster"
    bare = Atoms("Cu", cell=np.eye(3) * 2.5, pbc=True)
    return [
        _labelled(tri, rng),
        _labelled(no_stress, rng, stress=False),
        _labelled(no_forces, rng, forces=False),
        _labelled(cluster, rng, stress=False),
        bare,  # no labels at all
    ]


SPECIES = ["Ag", "Pd", "Cu"]


def _assert_same(a, b):
    assert a.get_chemical_symbols() == b.get_chemical_symbols()
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.cell.array, b.cell.array)
    np.testing.assert_array_equal(a.pbc, b.pbc)
    ra = a.calc.results if a.calc else {}
    rb = b.calc.results if b.calc else {}
    assert set(ra) == set(rb)
    if "energy" in ra:
        assert ra["energy"] == rb["energy"]
    if "forces" in ra:
        np.testing.assert_array_equal(ra["forces"], rb["forces"])
    if "stress" in ra:  # stress -> virial -> stress costs at most a rounding or two
        np.testing.assert_allclose(ra["stress"], rb["stress"], rtol=1e-15, atol=1e-18)
    for k, v in a.info.items():
        assert str(b.info[k]) == str(v)


def test_round_trip(tmp_path):
    images = _dataset()
    path = tmp_path / "set.cfg"
    write_cfg(path, images, species=SPECIES)
    back = read_cfg(path, species=SPECIES)
    assert len(back) == len(images)
    for a, b in zip(images, back):
        _assert_same(a, b)
    assert back[0].info == {"conf_id": "AgPd_tri", "EFS_by": "VASP PBE"}
    assert list(back[0].arrays["mtp_type"]) == [0, 1, 1, 0]
    assert list(back[3].arrays["mtp_type"]) == [2, 0, 1]
    assert not back[3].pbc.any()
    assert "forces" not in back[2].calc.results and "stress" not in back[1].calc.results
    assert back[4].calc is None
    # and a second round trip gives the same text
    write_cfg(tmp_path / "again.cfg", back, species=SPECIES)
    assert (tmp_path / "again.cfg").read_text() == path.read_text()


def test_plus_stress_is_minus_stress_times_volume(tmp_path):
    atoms = Atoms("Cu", cell=np.eye(3) * 2.0, pbc=True)
    atoms.calc = SinglePointCalculator(atoms, energy=-1.0,
                                       stress=[0.01, 0.02, 0.03, 0.004, 0.005, 0.006])
    write_cfg(tmp_path / "a.cfg", [atoms], species=["Cu"])
    lines = (tmp_path / "a.cfg").read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if line.split()[0] == "PlusStress:")
    assert lines[i].split()[1:] == ["xx", "yy", "zz", "yz", "xz", "xy"]
    np.testing.assert_allclose([float(x) for x in lines[i + 1].split()],
                               [-0.08, -0.16, -0.24, -0.032, -0.04, -0.048], rtol=1e-14)


def test_read_without_species_keeps_types(tmp_path):
    write_cfg(tmp_path / "a.cfg", _dataset(), species=SPECIES)
    images = read_cfg(tmp_path / "a.cfg")
    assert set(images[0].numbers) == {0}
    assert list(images[0].arrays["mtp_type"]) == [0, 1, 1, 0]
    # written back from mtp_type alone, the file is unchanged
    write_cfg(tmp_path / "b.cfg", images)
    assert (tmp_path / "b.cfg").read_text() == (tmp_path / "a.cfg").read_text()


def test_direct_coordinates_tabs_and_skipped_sections(tmp_path):
    text = (
        "BEGIN_CFG\n\tSize\n  2\n SuperCell\n 4 0 0\n 0 4 0\n 0 0 4\n"
        "AtomData:\tid\ttype\tdirect_x\tdirect_y\tdirect_z\n"
        " 1 1 0.0 0.0 0.0\n 2 0 0.5\t0.25 0.5\n"
        " Energy\n -3.5\n EnergyWeight\n 1.0\n"
        " Feature mindist 2.1\n"
        "END\n"
    )
    (tmp_path / "d.cfg").write_text(text)
    (atoms,) = read_cfg(tmp_path / "d.cfg", species=["Ag", "Pd"])
    assert atoms.get_chemical_symbols() == ["Pd", "Ag"]
    np.testing.assert_allclose(atoms.positions[1], [2.0, 1.0, 2.0])
    assert atoms.get_potential_energy() == -3.5
    assert atoms.info == {"mindist": "2.1"}
    assert list(iter_cfg(tmp_path / "d.cfg"))[0].arrays["mtp_type"].tolist() == [1, 0]


GOOD = [
    "BEGIN_CFG",
    " Size",
    "    2",
    " Supercell",
    "    3 0 0",
    "    0 3 0",
    "    0 0 3",
    " AtomData:  id type cartes_x cartes_y cartes_z fx fy fz",
    "    1 0 0 0 0 0 0 0",
    "    2 1 1.5 1.5 1.5 0 0 0",
    " Energy",
    "    -2.0",
    "END_CFG",
]


def _bad(tmp_path, lines):
    path = tmp_path / "bad.cfg"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("edit, line, words", [
    (lambda L: L[:2] + ["    3"] + L[3:], 11, ["Size 3", "2 atom lines"]),
    (lambda L: L[:2] + ["    1"] + L[3:], 10, ["more atom lines than Size 1"]),
    (lambda L: L[:-1], 12, ["end of file", "line 1", "END_CFG"]),
    (lambda L: L[:9] + ["    2 1 1.5 abc 1.5 0 0 0"] + L[10:], 10, ["non-numeric", "abc"]),
    (lambda L: L[:11] + ["    -2.0x"] + L[12:], 12, ["Energy", "non-numeric"]),
    (lambda L: L[:2] + ["    two"] + L[3:], 3, ["Size", "integer"]),
    (lambda L: L[:5] + ["    0 3"] + L[6:], 6, ["Supercell", "expected 3"]),
    (lambda L: L[:9] + ["    2 5 1.5 1.5 1.5 0 0 0"] + L[10:], 10, ["type 5", "species"]),
    (lambda L: ["garbage"] + L, 1, ["expected BEGIN_CFG"]),
    (lambda L: L[:-1] + L, 13, ["BEGIN_CFG inside", "line 1"]),
])
def test_bad_input_names_file_and_line(tmp_path, edit, line, words):
    path = _bad(tmp_path, edit(list(GOOD)))
    with pytest.raises(ValueError) as err:
        read_cfg(path, species=["Ag", "Pd"])
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: "), message
    for word in words:
        assert word in message


def test_good_reference_block_reads(tmp_path):
    (atoms,) = read_cfg(_bad(tmp_path, GOOD), species=["Ag", "Pd"])
    assert atoms.get_chemical_symbols() == ["Ag", "Pd"]
    assert atoms.get_potential_energy() == -2.0


def test_write_unknown_symbol_names_it(tmp_path):
    atoms = Atoms("AgAu", cell=np.eye(3) * 4, pbc=True, positions=[[0, 0, 0], [2, 2, 2]])
    with pytest.raises(ValueError, match=r"element 'Au'.*\['Ag', 'Pd'\]"):
        write_cfg(tmp_path / "x.cfg", [atoms], species=["Ag", "Pd"])
    with pytest.raises(ValueError, match="no species"):
        write_cfg(tmp_path / "x.cfg", [atoms])


def test_convert_cfg_extxyz_cfg(tmp_path):
    images = _dataset()
    write_cfg(tmp_path / "a.cfg", images, species=SPECIES)
    assert convert(tmp_path / "a.cfg", tmp_path / "a.extxyz", species=SPECIES) == 5
    assert convert(tmp_path / "a.extxyz", tmp_path / "b.cfg", species=SPECIES) == 5
    back = read_cfg(tmp_path / "b.cfg", SPECIES)
    # ASE writes extended XYZ with 8 decimals, so this trip is exact only to 1e-8
    for a, b in zip(images, back):
        assert a.get_chemical_symbols() == b.get_chemical_symbols()
        np.testing.assert_allclose(b.positions, a.positions, atol=1e-8)
        np.testing.assert_allclose(b.cell.array, a.cell.array, atol=1e-8)
        ra, rb = (a.calc.results if a.calc else {}), (b.calc.results if b.calc else {})
        assert set(ra) == set(rb)
        for key in ra:
            np.testing.assert_allclose(rb[key], ra[key], atol=1e-7)
        assert b.info == a.info
    np.testing.assert_array_equal(back[3].pbc, False)
    # without species the MLIP types travel through extxyz as the mtp_type column
    convert(tmp_path / "a.cfg", tmp_path / "c.xyz")
    types = [a.arrays["mtp_type"].tolist() for a in read_cfg(tmp_path / "a.cfg")]
    convert(tmp_path / "c.xyz", tmp_path / "c.cfg")
    assert [a.arrays["mtp_type"].tolist() for a in read_cfg(tmp_path / "c.cfg")] == types


@pytest.fixture(scope="module")
def agpd():
    return read_cfg(shared_path("data", "agpd", "train.cfg"), species=["Ag", "Pd"])


def test_old_variant_agpd(agpd):
    assert len(agpd) == 774
    assert sum(len(a) for a in agpd) == 3117
    first = agpd[0]
    assert first.info["conf_id"] == "Ag" and first.get_chemical_symbols() == ["Ag"]
    assert first.get_potential_energy() == -2.7083959
    # old `Stress` = +stress * volume: -0.40560847 eV over the 17.10 Å^3 cell
    volume = 2 * 2.045**3
    np.testing.assert_allclose(first.get_stress()[:3], -0.40560847 / volume, rtol=1e-12)
    assert {t for a in agpd for t in a.arrays["mtp_type"]} == {0, 1}


def test_old_variant_stress_sign_matches_energies(agpd):
    """Along each energy-volume series of one structure, -trace(stress) V = -3 V dE/dV."""
    series = defaultdict(list)
    for a in agpd:
        v = a.get_volume()
        key = (a.info["conf_id"], len(a), np.round(a.cell.array / v ** (1 / 3), 3).tobytes(),
               np.round(a.get_scaled_positions(), 3).tobytes())
        series[key].append(a)
    agree = []
    for s in series.values():
        s = sorted(s, key=lambda a: a.get_volume())
        for lo, mid, hi in zip(s, s[1:], s[2:]):
            dv = hi.get_volume() - lo.get_volume()
            if dv < 1e-3 * mid.get_volume():
                continue
            dedv = (hi.get_potential_energy() - lo.get_potential_energy()) / dv
            pressure = -np.mean(mid.get_stress()[:3])
            if abs(dedv) > 0.05:  # eV/Å^3; away from equilibrium
                agree.append(np.sign(pressure) == np.sign(-dedv))
    assert len(agree) > 50
    assert np.mean(agree) > 0.95
