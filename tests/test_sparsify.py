"""sparsify: the training configurations the maxvol active set needs (Novikov 2021, sec. 5.2.1)."""
import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from mtplib.active import ActiveSet, SelectionWeights, sparsify
from mtplib.active.testing import emt_cells, label_emt, linear_fit, tiny_potential
from mtplib.io import read_dataset, write_dataset

THRESHOLD = 1.001


def md_frames(count=60, every=4, seed=0):
    """Consecutive frames of one EMT Cu trajectory at 600 K: a correlated set."""
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    atoms.calc = EMT()
    MaxwellBoltzmannDistribution(atoms, temperature_K=600, rng=np.random.default_rng(seed))
    dyn = Langevin(atoms, 2 * units.fs, temperature_K=600, friction=0.02,
                   rng=np.random.default_rng(seed + 1))
    frames = []
    for _ in range(count):
        dyn.run(every)
        frames.append(label_emt(atoms))
    return frames


@pytest.fixture(scope="module")
def setup():
    pot = linear_fit(tiny_potential(8), emt_cells(20, seed=3))
    return pot, md_frames()


@pytest.mark.parametrize("mode", ["configuration", "neighborhood"])
def test_dropped_configurations_interpolate_on_the_kept_ones(setup, mode):
    pot, frames = setup
    sparse = sparsify(pot, frames, mode=mode, threshold=THRESHOLD)
    kept = sparse.kept
    dropped = sparse.dropped(len(frames))
    assert kept == sorted(set(kept)) and set(kept) <= set(range(len(frames)))
    assert 0 < len(kept) < len(frames) and len(dropped) == len(frames) - len(kept)
    # an independent check through the public active-set path
    aset = ActiveSet.from_training(pot, [frames[k] for k in kept], mode=mode)
    gamma = aset.grade_many([frames[k].copy() for k in dropped])
    assert gamma.max() <= THRESHOLD + 1e-9
    np.testing.assert_allclose(gamma, sparse.gamma[dropped], rtol=1e-9)
    # the kept ones are needed: each has gamma about 1 (a member row) or is below it
    assert sparse.gamma[kept].max() <= THRESHOLD + 1e-9
    again = sparsify(pot, frames, mode=mode, threshold=THRESHOLD)
    assert again.kept == kept
    np.testing.assert_array_equal(again.gamma, sparse.gamma)


def test_a_tighter_threshold_keeps_at_least_as_many(setup):
    pot, frames = setup
    loose = sparsify(pot, frames, threshold=1.5)
    tight = sparsify(pot, frames, threshold=THRESHOLD)
    assert len(loose.kept) <= len(tight.kept)
    aset = ActiveSet.from_training(pot, [frames[k] for k in loose.kept])
    assert aset.grade_many([frames[k].copy() for k in loose.dropped(len(frames))]).max() <= 1.5


def test_selection_weights_give_the_rows_of_the_active_set_they_build(setup):
    """With force rows (MLIP-3's --force-weight), the promise holds against the active set
    that ActiveSet.from_training builds with the same weights, which the loop uses."""
    pot, frames = setup
    frames = frames[:24]
    weights = SelectionWeights(energy=1.0, forces=1.0)
    sparse = sparsify(pot, frames, weights=weights, threshold=THRESHOLD)
    dropped = sparse.dropped(len(frames))
    assert 0 < len(sparse.kept) and dropped
    aset = ActiveSet.from_training(pot, [frames[k] for k in sparse.kept], weights=weights)
    assert aset.weights == weights
    gamma = aset.grade_many([frames[k].copy() for k in dropped])
    assert gamma.max() <= THRESHOLD + 1e-9
    np.testing.assert_allclose(gamma, sparse.gamma[dropped], rtol=1e-9)
    # without the weights (energy rows only) the kept set differs, and it breaks the promise
    # against the active set that the weighted loop builds from it
    plain = sparsify(pot, frames, threshold=THRESHOLD)
    assert plain.kept != sparse.kept
    loop = ActiveSet.from_training(pot, [frames[k] for k in plain.kept], weights=weights)
    assert loop.grade_many([frames[k].copy() for k in plain.dropped(len(frames))]).max() > THRESHOLD


def test_cli_writes_the_kept_configurations_with_labels(setup, tmp_path, capsys):
    from mtplib.cli import main
    pot, frames = setup
    pot.save(tmp_path / "pot.mtp")
    write_dataset(tmp_path / "train.cfg", frames, species=["Cu"])
    assert main(["sparsify", str(tmp_path / "pot.mtp"), str(tmp_path / "train.cfg"),
                 str(tmp_path / "kept.cfg")]) == 0
    out = capsys.readouterr().out
    kept = read_dataset(tmp_path / "kept.cfg", species=["Cu"])
    expect = sparsify(pot, read_dataset(tmp_path / "train.cfg", species=["Cu"])).kept
    assert f"kept {len(expect)} of {len(frames)} configurations" in out
    assert len(kept) == len(expect)
    for atoms, k in zip(kept, expect):
        np.testing.assert_allclose(atoms.positions, frames[k].positions, atol=1e-9)
        assert atoms.get_potential_energy() == pytest.approx(frames[k].get_potential_energy(),
                                                             abs=1e-9)
    assert main(["sparsify", str(tmp_path / "pot.mtp"), str(tmp_path / "nope.cfg"),
                 str(tmp_path / "x.cfg")]) == 2
    assert "nope.cfg" in capsys.readouterr().err
