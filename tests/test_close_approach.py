"""The close-approach criterion: a configuration with atoms nearer than min_dist + margin is a
candidate, checked at every step (not only at graded ones), and a run stops before a pair
crosses min_dist; the selection stage picks such candidates, shortest first."""
import numpy as np
import pytest
from ase.io import read

from mtplib.active import Thresholds, run_md
from mtplib.active.criteria import CloseApproach
from mtplib.active.testing import emt_cells
from mtplib.analysis.errors import min_distance
from scripts.mtpflow.settings import Settings, validate_config


@pytest.fixture(scope="module")
def setup(cu_fit):
    return cu_fit


def test_criterion_selects_and_breaks_below_its_distances():
    c = CloseApproach(select=2.2, break_=2.0)
    assert c.selects(2.1) and not c.selects(2.3) and not c.selects(np.nan)
    assert c.breaks(1.99) and not c.breaks(2.0)
    assert "closer than mtp.min_dist = 2 Å" in c.break_message(7, 1.95)

    class Frame:
        def __init__(self, d):
            self.info = {"shortest_distance": d}
    assert c.rank([Frame(2.15), Frame(2.5), Frame(2.05), Frame(np.nan)]) == [2, 0]


def test_hot_md_stops_before_a_pair_crosses_the_break_distance(setup, tmp_path):
    pot, aset = setup
    start = emt_cells(1, seed=11, rattle=0.02)[0]
    quiet = Thresholds(gamma_select=1e11, gamma_break=1e12, interval=50)
    # the shortest distance at each step of the run without the criterion
    run_md(pot, start.copy(), active_set=aset, ensemble="nvt", temperature=3000, steps=200,
           timestep=2.0, seed=5, log=None, trajectory=tmp_path / "t.extxyz",
           trajectory_interval=1, thresholds=quiet)
    seen = [min_distance(a)[0] for a in read(tmp_path / "t.extxyz", ":")]
    first = float(np.min(seen[:5]))
    low = float(np.min(seen))
    assert low < first - 0.05            # the hot run brings some pair closer than at its start
    brk = (first + low) / 2
    thresholds = Thresholds(gamma_select=1e11, gamma_break=1e12, interval=50,
                            criteria=(CloseApproach(select=brk + 0.03, break_=brk),))
    cand = tmp_path / "cand.extxyz"
    res = run_md(pot, start.copy(), active_set=aset, ensemble="nvt", temperature=3000,
                 steps=200, timestep=2.0, seed=5, thresholds=thresholds, candidates=cand,
                 log=None)
    stop = next(k for k, d in enumerate(seen) if d < brk)
    assert res.reason == "extrapolation" and res.steps == stop, (res.message, stop)
    assert "closer than mtp.min_dist" in res.message
    frames = read(cand, ":")
    assert frames and all(a.info["shortest_distance"] < brk + 0.03 for a in frames)
    # checked at every step although graded only every 50
    assert {int(a.info["step"]) for a in frames} - set(range(0, 201, 50))


def test_config_key_builds_the_criterion_from_min_dist():
    config = validate_config({"elements": ["Cu"], "phases": {"Cu": {"bulk": {"name": "Cu"}}},
                              "active_learning": {"close_approach": 0.15, "scenarios": [
                                  {"name": "md", "start": {"phase": "Cu"}}]}})
    al = Settings.from_config(config).active_learning
    run = al.runs()["md_300K"]
    (c,) = [c for c in al.thresholds(run, 1.1).criteria if isinstance(c, CloseApproach)]
    assert (c.select, c.break_) == (pytest.approx(1.25), 1.1)
    assert al.thresholds(run).criteria == ()
    # a distance the training set holds is not a candidate any more: select at its shortest
    (c,) = al.close_approach_criteria(1.1, training_shortest=1.17)
    assert (c.select, c.break_) == (1.17, 1.1)
    (c,) = al.close_approach_criteria(1.1, training_shortest=1.9)
    assert c.select == pytest.approx(1.25)
    off = Settings.from_config(validate_config({"elements": ["Cu"], "phases": {
        "Cu": {"bulk": {"name": "Cu"}}}})).active_learning
    assert off.close_approach is None and off.close_approach_criteria(1.1) == []


def test_a_bad_close_approach_is_one_line_naming_the_key():
    from scripts.mtpflow.settings import ConfigError
    with pytest.raises(ConfigError) as err:
        validate_config({"elements": ["Cu"], "phases": {"Cu": {"bulk": {"name": "Cu"}}},
                         "active_learning": {"close_approach": -0.1}})
    message = str(err.value)
    assert "\n" not in message and message.startswith(
        "config key 'active_learning.close_approach': -0.1 is less than the minimum of 0"), message
