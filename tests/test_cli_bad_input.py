"""Bad input on the command line: one line naming the file or option, exit code 2, no
traceback."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.io import write
from conftest import random_potential

from mtplib.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path):
    pot = random_potential(4, ["Cu"])
    pot.save(tmp_path / "pot.mtp")
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
    write(tmp_path / "cu.xyz", atoms)
    zero = atoms.copy()
    zero.positions[1] = zero.positions[0]
    write(tmp_path / "zero.xyz", zero)
    (tmp_path / "empty.xyz").write_text("")
    (tmp_path / "data.foo").write_text("not a structure\n")
    bad = pot.copy()
    bad.species_coeffs = np.array([np.nan])
    bad.save(tmp_path / "nan.mtp")
    bad = pot.copy()
    bad.moment_coeffs = np.where(np.arange(len(pot.moment_coeffs)) == 1, np.inf, pot.moment_coeffs)
    bad.save(tmp_path / "inf.mtp")
    return tmp_path


def _run(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as exc:          # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    return code, err


CASES = [
    ("empty data file", ["evaluate", "{d}/pot.mtp", "{d}/empty.xyz", "{d}/o.xyz"],
     ["empty.xyz", "empty file"]),
    ("unknown format", ["evaluate", "{d}/pot.mtp", "{d}/data.foo", "{d}/o.xyz"],
     ["data.foo", "cannot read"]),
    ("output is a directory", ["evaluate", "{d}/pot.mtp", "{d}/cu.xyz", "{d}"],
     ["output", "is a directory"]),
    ("output in a missing folder", ["evaluate", "{d}/pot.mtp", "{d}/cu.xyz", "{d}/no/o.xyz"],
     ["no such directory"]),
    ("atoms at 0 Å", ["evaluate", "{d}/pot.mtp", "{d}/zero.xyz", "{d}/o.xyz"],
     ["zero.xyz[0]", "0 Å apart"]),
    ("NaN coefficients", ["evaluate", "{d}/nan.mtp", "{d}/cu.xyz", "{d}/o.xyz"],
     ["nan.mtp", "non-finite species_coeffs"]),
    ("inf coefficients", ["errors", "{d}/inf.mtp", "{d}/cu.xyz"],
     ["inf.mtp", "non-finite moment_coeffs"]),
    ("md negative timestep", ["md", "{d}/pot.mtp", "{d}/cu.xyz", "--candidates", "{d}/c.xyz",
                              "--timestep", "-1"], ["--timestep", "-1 is not a positive number"]),
    ("md negative temperature", ["md", "{d}/pot.mtp", "{d}/cu.xyz", "--candidates", "{d}/c.xyz",
                                 "--temperature", "-300"], ["--temperature", "-300 is not a number >= 0"]),
    ("md zero steps", ["md", "{d}/pot.mtp", "{d}/cu.xyz", "--candidates", "{d}/c.xyz",
                       "--steps", "0"], ["--steps", "0 is not a positive integer"]),
    ("init unknown species", ["init", "{d}/x.mtp", "--level", "4", "--species", "Xx"],
     ["--species", "'Xx' is not a chemical element"]),
    ("output swallowed by --species", ["init", "--level", "4", "--species", "Cu", "Au", "{d}/out.mtp"],
     ["--species", "out.mtp", "put it before --species"]),
    ("init output a directory", ["init", "{d}", "--level", "4", "--species", "Cu"],
     ["output", "is a directory"]),
    ("missing data file", ["mindist", "{d}/nope.xyz"], ["nope.xyz", "no such data file"]),
]


@pytest.mark.parametrize("argv,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_cli_input_is_one_line_exit_2(files, capsys, argv, words):
    code, err = _run(capsys, [a.format(d=files) for a in argv])
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err
    assert not (files / "o.xyz").exists()


def test_the_good_inputs_work(files, capsys):
    code, _ = _run(capsys, ["evaluate", f"{files}/pot.mtp", f"{files}/cu.xyz", f"{files}/o.xyz"])
    assert code == 0 and (files / "o.xyz").exists()
    code, _ = _run(capsys, ["init", f"{files}/new.mtp", "--level", "4", "--species", "Cu", "Au"])
    assert code == 0 and (files / "new.mtp").exists()


def test_from_a_shell_no_traceback(files):
    proc = subprocess.run([sys.executable, "-m", "mtplib", "md", f"{files}/pot.mtp",
                           f"{files}/cu.xyz", "--candidates", f"{files}/c.xyz", "--timestep", "-1"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "mtplib md: error: argument --timestep: -1 is not a positive number (see mtplib md --help)"]
