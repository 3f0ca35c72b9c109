"""Validation verdicts (mtplib.analysis.verdicts): tolerances decide pass/fail; a deliberately
poor potential (level 2, a few iterations) fails against EMT, EMT against itself passes."""
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from mtplib.analysis.properties import elastic_constants, energy_volume
from mtplib.analysis.verdicts import (count_failures, elastic_verdict, failed_verdict,
                                      format_verdicts, limit_verdict)
from mtplib.calculator import MTPCalculator
from mtplib.labeling import compute_labels
from mtplib.potential import MTPotential
from mtplib.training import fit


def cubic(c11, c12, c44):
    c = np.zeros((6, 6))
    c[:3, :3] = c12
    c[np.arange(3), np.arange(3)] = c11
    c[np.arange(3, 6), np.arange(3, 6)] = c44
    return c


def test_elastic_within_relative_or_absolute_passes_and_names_the_worst_component():
    ref = cubic(178.0, 148.0, 40.0)
    # C44 off by 9 GPa: > 15 % of 40 (6 GPa) but within 10 GPa -> pass
    row = elastic_verdict("Au", cubic(170.0, 140.0, 31.0), ref, 0.15, 10.0)
    assert row["pass"] and row["unit"] == "GPa"
    # the Au numbers: C11 86 vs 178, C12 62 vs 148, C44 2.2 vs 40 -> fail; the worst
    # component relative to its allowance is C12 (86 GPa off, 22.2 allowed: 3.9x; C44 3.8x)
    row = elastic_verdict("Au", cubic(86.0, 62.0, 2.2), ref, 0.15, 10.0)
    assert not row["pass"]
    assert row["quantity"].startswith("elastic C12")
    assert (row["value"], row["reference"]) == (62.0, 148.0)
    assert row["tolerance"] == "±15 % or ±10 GPa"


def test_limit_verdict_and_failed_rows():
    assert limit_verdict("Cu", "E-V RMSE", 9.99, 10.0, "meV/atom")["pass"]
    assert not limit_verdict("Cu", "E-V RMSE", 10.01, 10.0, "meV/atom")["pass"]
    assert not limit_verdict("Cu", "E-V RMSE", float("nan"), 10.0, "meV/atom")["pass"]
    row = failed_verdict("Au", "elastic C_ij", "SCF did not converge")
    assert not row["pass"] and row["value"] is None and row["note"] == "SCF did not converge"


def test_table_lists_failures_by_name():
    rows = [limit_verdict("Cu", "E-V RMSE", 3.0, 10.0, "meV/atom"),
            limit_verdict("Cu3Au (md)", "RDF integrated |difference|", 0.2, 0.15, "Å")]
    text = format_verdicts(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["phase", "quantity", "value", "reference", "tolerance", "verdict"]
    assert lines[2].split()[-1] == "PASS" and "3 meV/atom" in lines[2]
    assert lines[3].split()[-1] == "FAIL"
    assert lines[-1] == "1 of 2 verdicts pass; FAILED: Cu3Au (md) RDF integrated |difference|"
    assert count_failures(rows) == 1
    assert format_verdicts(rows[:1]).splitlines()[-1] == "all 1 verdicts pass"


def _verdicts(calc, unit, reference):
    c_ref = elastic_constants(unit, reference)
    c = elastic_constants(unit, calc)
    _, e_ref = energy_volume(unit, reference)
    _, e = energy_volume(unit, calc)
    rmse = 1000 * np.sqrt(np.mean((e - e_ref) ** 2))
    return [elastic_verdict("Au", c, c_ref, 0.15, 10.0),
            limit_verdict("Au", "E-V RMSE", rmse, 10.0, "meV/atom")]


def test_emt_against_itself_passes():
    unit = bulk("Au", "fcc", a=4.08, cubic=True)
    rows = _verdicts(EMT(), unit, EMT())
    assert count_failures(rows) == 0
    assert rows[1]["value"] == 0.0


def test_poor_potential_fails_against_emt():
    """Level 2, 10 iterations, 6 rattled 4-atom Au cells: real numbers, failing verdicts."""
    rng = np.random.default_rng(0)
    unit = bulk("Au", "fcc", a=4.08, cubic=True)
    frames = []
    for k in range(6):
        atoms = unit.copy()
        atoms.set_cell(unit.cell.array * (1 + rng.uniform(-0.02, 0.02)), scale_atoms=True)
        atoms.rattle(0.05, seed=k)
        frames.append(compute_labels(atoms, EMT()))
    init = MTPotential.from_level(2, ["Au"], 2.0, 5.0, 4)
    pot = fit(frames, init, max_iter=10, seed=0, log=None)
    rows = _verdicts(MTPCalculator(pot), unit, EMT())
    print(format_verdicts(rows))
    assert count_failures(rows) >= 1
    assert not rows[0]["pass"]          # the elastic constants of a level-2 potential
    assert rows[0]["reference"] == pytest.approx(elastic_constants(unit, EMT())[
        int(rows[0]["quantity"][9]) - 1, int(rows[0]["quantity"][10]) - 1])
