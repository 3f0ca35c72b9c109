"""Scenario grids and MD schedules (Novikov 2021, sec. 5.2.2)."""
import ase.io
import numpy as np
import pytest
from ase.build import bulk

from mtplib.active import ActiveSet, Thresholds, run_md
from mtplib.active.grid import (GridPoint, Segment, expand_grid, parse_schedule, run_schedule,
                                scaled_start, segment_seed)
from mtplib.active.testing import emt_cells, linear_fit, tiny_potential


def test_grid_expands_every_combination_with_unique_names():
    points = expand_grid("solid", [700, 900, 1100], [1.0, 1.02, 1.04])
    assert len(points) == 9 and len({p.name for p in points}) == 9
    assert points[0] == GridPoint("solid_700K_x1", 700.0, 1.0, 0)
    assert points[4] == GridPoint("solid_900K_x1p02", 900.0, 1.02, 0)
    assert [p.temperature for p in points] == [700.0] * 3 + [900.0] * 3 + [1100.0] * 3
    seeds = expand_grid("liq", [1000.5], seeds=[0, 1])
    assert [p.name for p in seeds] == ["liq_1000p5K_s0", "liq_1000p5K_s1"]
    with pytest.raises(ValueError, match="run 'solid_700K' occurs twice"):
        expand_grid("solid", [700, 700])
    with pytest.raises(ValueError, match="scenario 'solid': 'scalings' is empty"):
        expand_grid("solid", [700], [])
    with pytest.raises(ValueError, match="lattice scaling -1"):
        expand_grid("solid", [700], [-1])


def test_schedule_parsing_names_the_segment_and_key():
    segs = parse_schedule([{"steps": 10, "temperature": 3000, "scaling": 1.05},
                           {"steps": 5, "temperature": 1000}])
    assert segs == [Segment(10, 3000.0, 1.05), Segment(5, 1000.0, 1.0)]
    with pytest.raises(ValueError, match=r"liquid\[1\]: missing 'temperature'"):
        parse_schedule([{"steps": 1, "temperature": 1}, {"steps": 2}], where="liquid")
    with pytest.raises(ValueError, match=r"liquid\[0\]: unknown key\(s\) \['temp'\]"):
        parse_schedule([{"steps": 1, "temp": 1}], where="liquid")
    with pytest.raises(ValueError, match="no segments"):
        parse_schedule([])


@pytest.fixture(scope="module")
def rough():
    """A level-8 Cu potential fitted to a few near-equilibrium cells: hot MD extrapolates."""
    train = emt_cells(12, seed=1, rattle=0.03, strain=0.01)
    pot = linear_fit(tiny_potential(8, min_dist=1.8), train)
    return pot, ActiveSet.from_training(pot, train)


def test_schedule_scales_the_cell_and_is_reproducible(rough):
    pot, _ = rough
    start = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    segs = [Segment(6, 1500, 1.04), Segment(4, 600, 1.0), Segment(5, 600, 1.01)]
    runs = []
    for _ in range(2):
        atoms = start.copy()
        runs.append((run_schedule(pot, atoms, segs, seed=3, log=None), atoms))
    (res, atoms), (res2, atoms2) = runs
    assert res.result.reason == "finished" and res.result.steps == 15
    assert [r.steps for r in res.segments] == [6, 4, 5]
    np.testing.assert_allclose(atoms.cell.array, start.cell.array * 1.01, rtol=1e-14)
    np.testing.assert_array_equal(atoms.positions, atoms2.positions)
    assert segment_seed(3, 0) != segment_seed(3, 1) != segment_seed(4, 1)


def test_one_configuration_per_trajectory_when_select_equals_break(rough, tmp_path):
    """A 3 x 3 grid (temperature x lattice scaling) with gamma_select = gamma_break: every
    trajectory writes at most one candidate, and one that writes it stops there."""
    pot, aset = rough
    start = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    gamma = 1.2
    counts = {}
    for point in expand_grid("solid", [600, 1200, 2400], [0.98, 1.0, 1.03]):
        out = tmp_path / f"{point.name}.extxyz"
        res = run_md(pot, scaled_start(start, point.scaling), active_set=aset,
                     temperature=point.temperature, steps=150, seed=point.seed,
                     thresholds=Thresholds(gamma_select=gamma, gamma_break=gamma),
                     candidates=out, scenario=point.name, log=None)
        frames = ase.io.read(out, ":") if out.exists() else []
        counts[point.name] = len(frames)
        assert res.candidates == len(frames) <= 1
        if frames:
            assert res.reason == "extrapolation" and frames[0].info["step"] == res.steps
            assert frames[0].info["gamma"] > gamma
    assert sum(counts.values()) >= 3, counts
