"""Fidelity stages (config key fidelity_stages): the config, and a two-stage workflow (EMT, then
EMT with ASAP's cutoff: a different potential-energy surface) through Snakemake."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.calculators.emt import EMT
from ase.io import read
from test_al_workflow import snakemake

from mtplib.active import ActiveSet
from mtplib.potential import MTPotential
from scripts.mtpflow.settings import ConfigError, Settings, validate_config

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "config" / "examples" / "cuau_tiny.yaml"
HIGH_KWARGS = {"asap_cutoff": True}


def staged_config(md_frames=2):
    config = yaml.safe_load(TINY.read_text())
    reference = config.pop("reference")
    config["fidelity_stages"] = [
        {"name": "low", "reference": reference},
        {"name": "high", "reference": {**reference, "kwargs": HIGH_KWARGS}, "md_frames": md_frames}]
    return config


# ---- the config ----------------------------------------------------------------------------
def test_stages_are_typed_and_the_first_reference_labels_stage_2():
    config = validate_config(staged_config())
    settings = Settings.from_config(config, checked=True)
    low, high = settings.fidelity_stages
    assert (low.name, high.name) == ("low", "high")
    assert (low.md_frames, high.md_frames) == (0, 2)
    assert high.reference.kwargs == HIGH_KWARGS and high.reference.retries == 1
    assert high.reference.timeout == 3600          # a default of the reference section
    assert settings.reference == low.reference and settings.reference.chunk_size == 2
    assert high.al_root == "al/stage-high"
    assert (low.sparsify, high.sparsify) == (False, False)       # the defaults
    assert high.sparsify_threshold == 1.001


def test_sparsify_keys_are_typed():
    config = staged_config()
    config["fidelity_stages"][1].update(sparsify=True, sparsify_threshold=1.5)
    settings = Settings.from_config(validate_config(config), checked=True)
    high = settings.fidelity_stages[1]
    assert high.sparsify is True and high.sparsify_threshold == 1.5
    assert isinstance(high.sparsify_threshold, float)


def test_without_stages_nothing_changes():
    config = validate_config(yaml.safe_load(TINY.read_text()))
    assert config["fidelity_stages"] == []
    assert Settings.from_config(config, checked=True).fidelity_stages == ()


@pytest.mark.parametrize("change, message", [
    (lambda c: c["fidelity_stages"].pop(), "config key 'fidelity_stages': 1 stage given"),
    (lambda c: c["fidelity_stages"][1].update(name="low"),
     "config key 'fidelity_stages': stage names ['low', 'low'] are not unique"),
    (lambda c: c.update(reference={"name": "emt"}),
     "config keys 'reference' and 'fidelity_stages': give the references only in fidelity_stages"),
    (lambda c: c["fidelity_stages"][1]["reference"].update(nme="emt"),
     "config key 'fidelity_stages.1.reference': 'nme' was unexpected (did you mean 'name'?)"),
    (lambda c: c["fidelity_stages"][1].update(name="a/b"), "config key 'fidelity_stages.1.name'"),
    (lambda c: c.update(active_learning={"committee_criterion": {"enabled": True}}),
     "config keys 'fidelity_stages' and 'active_learning.committee_criterion'"),
    (lambda c: c.update(elements=["Cu", "Au", "Hf"]),
     "config key 'elements': reference 'emt' cannot compute ['Hf']"),
    (lambda c: c["fidelity_stages"][0].update(sparsify=True),
     "config key 'fidelity_stages[low].sparsify': the first stage has no previous training set"),
    (lambda c: c["fidelity_stages"][1].update(sparsify="yes"),
     "config key 'fidelity_stages.1.sparsify': 'yes' is not of type 'boolean'"),
    (lambda c: c["fidelity_stages"][1].update(sparsify=True, sparsify_threshold=0.9),
     "config key 'fidelity_stages.1.sparsify_threshold': 0.9 is less than the minimum of 1"),
    (lambda c: c["fidelity_stages"][1].update(sparsify_treshold=1.1),
     "config key 'fidelity_stages.1': 'sparsify_treshold' was unexpected (did you mean "
     "'sparsify_threshold'?)"),
])
def test_stage_mistakes_are_one_line_naming_the_key(change, message):
    config = staged_config()
    change(config)
    with pytest.raises(ConfigError) as err:
        validate_config(copy.deepcopy(config), read_files=False)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


# ---- the workflow --------------------------------------------------------------------------
def workflow_config(md_frames=2):
    """Two stages with a tiny MTP and a short loop (a few minutes in all)."""
    config = staged_config(md_frames=md_frames)
    config["mtp"] = {"level": 6, "radial_basis_size": 4, "max_dist": 4.5}
    config["fit"] = {"seeds": 2, "max_iter": 30}
    config["active_learning"] = {
        "max_iterations": 2, "gamma_select": 1.5, "gamma_break": 1400.0, "max_select": 2,
        "scenarios": [{"name": "cuau", "start": {"phase": "CuAu", "supercell": [2, 2, 1]},
                       "temperatures": [600], "steps": 40, "timestep": 2.0, "interval": 5}]}
    config["validation"] = {"scenarios": [], "elastic": False, "energy_volume": False}
    return config


@pytest.mark.slow
def test_two_stages_relabel_refit_and_a_rerun_does_nothing(tmp_path):
    config = workflow_config(md_frames=2)
    path = tmp_path / "staged.yaml"
    path.write_text(yaml.safe_dump(config))
    snakemake(tmp_path, path, timeout=900)

    results = tmp_path / "results"
    al = results / "al"
    assert not (al / "iter_000").exists()          # every loop lives in its stage's folder
    record = json.loads((al / "fidelity.json").read_text())
    assert [s["stage"] for s in record["stages"]] == ["low", "high"]
    low_iters = sorted((al / "stage-low").glob("iter_*/iteration.json"))
    high_iters = sorted((al / "stage-high").glob("iter_*/iteration.json"))
    assert low_iters and high_iters
    assert record["stages"][0]["iterations"] == len(low_iters)
    assert record["stages"][1]["iterations"] == len(high_iters)

    # relabelled: the low stage's final training set, 2 MD frames and the test set
    low_final = read(low_iters[-1].parent / "train.extxyz", ":")
    test = read(results / "labels" / "test.extxyz", ":")
    collected = json.loads((al / "stage-high" / "relabel" / "collected.json").read_text())
    assert collected == {"train": len(low_final), "md": 2, "test": len(test), "md_requested": 2}
    relabel = json.loads((al / "stage-high" / "relabel" / "summary.json").read_text())
    assert (relabel["relabelled"], relabel["failed"]) == (len(low_final) + 2 + len(test), 0)
    assert record["stages"][1]["start_reference_calls"] == relabel["relabelled"]
    start_train = read(al / "stage-high" / "start" / "train.extxyz", ":")
    start_test = read(al / "stage-high" / "start" / "test.extxyz", ":")
    assert len(start_train) == len(low_final) + 2 and len(start_test) == len(test)
    # the new labels are the high reference's, not the low one's
    for old, new in zip(test, start_test):
        np.testing.assert_allclose(new.positions, old.positions)
        atoms = new.copy()
        atoms.calc = EMT(**HIGH_KWARGS)
        assert new.get_potential_energy() == pytest.approx(atoms.get_potential_energy(), abs=1e-8)
        assert abs(new.get_potential_energy() - old.get_potential_energy()) > 1e-3
    for old, new in zip(low_final, start_train):
        assert (new.info["phase"], new.info["index"]) == (old.info["phase"], old.info["index"])
    # the high loop starts from the relabelled set and its iterations grow it
    first = json.loads(high_iters[0].read_text())
    assert first["training_set_size"] == len(start_train) + first["labels_added"]
    final_train = read(high_iters[-1].parent / "train.extxyz", ":")
    assert record["stages"][1]["training_set_size"] == len(final_train)
    assert (results / "final" / "potential.mtp").exists()
    assert 0 < record["stages"][1]["end_force_rmse"] < 0.5

    again = snakemake(tmp_path, path, "-n")
    assert "Nothing to be done" in again, again[-2000:]
    # a change of the second stage redoes its jobs only, never the first stage's
    config["fidelity_stages"][1]["md_frames"] = 3
    path.write_text(yaml.safe_dump(config))
    dry = snakemake(tmp_path, path, "-n")
    assert "rule fidelity_collect:" in dry
    assert "stage-low" not in "".join(line for line in dry.splitlines() if "output:" in line)
    for rule in ("label_chunk", "fit_seed", "al_start"):
        assert f"rule {rule}:" not in dry


def keys(frames):
    return [(a.info["phase"], int(a.info["index"])) for a in frames]


@pytest.mark.slow
def test_a_sparsified_stage_relabels_only_what_the_active_set_needs(tmp_path):
    """sparsify on the second stage: the low stage's final training set is reduced to the
    configurations its final potential's active set needs, and only those are relabelled with
    the high reference. Neighbourhood mode (a row per atom) and 8 rattled Cu cells in stage 2
    (they span only the Cu-Cu part of the basis): the low stage's set has more rows than the
    active set needs, so some configurations are dropped."""
    config = workflow_config(md_frames=0)
    config["fidelity_stages"][1]["sparsify"] = True
    config["active_learning"]["selection_mode"] = "neighborhood"
    config["phases"]["Cu"]["displacements"]["structures_per_supercell"] = 8
    path = tmp_path / "sparse.yaml"
    path.write_text(yaml.safe_dump(config))
    snakemake(tmp_path, path, timeout=900)

    al = tmp_path / "results" / "al"
    low_iters = sorted((al / "stage-low").glob("iter_*/iteration.json"))
    low_final = read(low_iters[-1].parent / "train.extxyz", ":")
    sparse = al / "stage-high" / "sparsify"
    summary = json.loads((sparse / "summary.json").read_text())
    kept = read(sparse / "kept.extxyz", ":")
    before = len(low_final)
    assert (summary["before"], summary["kept"]) == (before, len(kept))
    assert 0 < summary["kept"] < before and summary["dropped"] == before - len(kept)
    assert summary["rounds"] >= 1 and summary["mode"] == "neighborhood"
    assert [tuple(k) for k in summary["kept_keys"]] == keys(kept)
    # every dropped configuration interpolates on the kept ones' active set (recomputed)
    kept_keys = set(keys(kept))
    assert kept_keys <= set(keys(low_final))
    dropped = [a for a in low_final if keys([a])[0] not in kept_keys]
    pot = MTPotential.load(low_iters[-1].parent / "potential.mtp", species=config["elements"])
    aset = ActiveSet.from_training(pot, kept, mode="neighborhood")
    gamma = aset.grade_many([a.copy() for a in dropped])
    assert gamma.max() <= summary["threshold"] + 1e-9
    assert summary["max_dropped_gamma"] == pytest.approx(gamma.max(), rel=1e-9)
    # like-for-like errors on the low stage's test set: both seed scans, finite
    for name in ("before", "kept"):
        errors = summary["errors"][name]
        assert errors["configurations"] == (before if name == "before" else len(kept))
        for key in ("energy_per_atom_rmse", "forces_rmse"):
            assert np.isfinite(errors[key]) and errors[key] > 0, (name, key, errors)

    # only the kept ones are relabelled and trained on at the high stage's start
    collected = json.loads((al / "stage-high" / "relabel" / "collected.json").read_text())
    assert (collected["train"], collected["sparsified_from"]) == (len(kept), before)
    start_train = read(al / "stage-high" / "start" / "train.extxyz", ":")
    assert keys(a for a in start_train if a.info["fidelity_set"] == "train") == keys(kept)
    record = json.loads((al / "fidelity.json").read_text())
    low, high = record["stages"]
    assert (low["sparsify_before"], low["sparsify_kept"]) == (None, None)
    assert (high["sparsify_before"], high["sparsify_kept"]) == (before, len(kept))
    assert "sparsify_kept" in (al / "fidelity.csv").read_text().splitlines()[0]

    again = snakemake(tmp_path, path, "-n")
    assert "Nothing to be done" in again, again[-2000:]
