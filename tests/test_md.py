"""MD on arrays (mtplib.md, run_md's engine="native") against ASE's integrators."""
import numpy as np
import pytest
from ase import units
from ase.md.langevin import Langevin
from ase.md import velocitydistribution as vd

from mtplib.active import ActiveSet, Thresholds, run_md
from mtplib.active.testing import emt_cells, linear_fit, tiny_potential
from mtplib.md import (ArrayForces, LangevinArrays, VerletArrays, array_integrator,
                       kinetic_temperature)


@pytest.fixture(scope="module")
def setup():
    train = emt_cells(30, seed=1)
    pot = linear_fit(tiny_potential(8), train)
    pot.source = "cu.mtp"
    return (pot, ActiveSet.from_training(pot, train),
            ActiveSet.from_training(pot, train, mode="neighborhood"))


def start():
    return emt_cells(1, seed=11, rattle=0.02)[0]


def _run(pot, aset, engine, tmp_path, **kwargs):
    lines = []
    atoms = start()
    cand, traj = tmp_path / f"{engine}.cand.extxyz", tmp_path / f"{engine}.traj.extxyz"
    res = run_md(pot, atoms, active_set=aset, candidates=cand, trajectory=traj,
                 trajectory_interval=4, progress_interval=5, log=lines.append, engine=engine,
                 **kwargs)
    return atoms, res, cand.read_bytes() if cand.exists() else b"", traj.read_bytes(), lines


@pytest.mark.parametrize("ensemble,mode,thresholds,extra", [
    ("nvt", "configuration", Thresholds(gamma_select=4.5, gamma_break=5.9), {}),      # stops
    ("nve", "configuration", Thresholds(gamma_select=2.0, gamma_break=1e9, interval=3), {}),
    ("nvt", "neighborhood", Thresholds(gamma_select=3.0, gamma_break=1e9, interval=10), {}),
    ("nvt", "configuration", Thresholds(gamma_select=2.0, gamma_break=1e9, gamma_max=3.0),
     dict(ramp_steps=20, ramp_start=100.0)),
    # a damped equilibration stage before the run: the stage boundary (step 10) is graded once
    ("nve", "configuration", Thresholds(gamma_select=2.0, gamma_break=1e9, interval=5),
     dict(equilibration_steps=10, equilibration_friction=0.2)),
    ("nvt", "configuration", Thresholds(gamma_select=4.5, gamma_break=5.9),
     dict(equilibration_steps=7))])
def test_native_engine_is_ase_bit_for_bit(setup, tmp_path, ensemble, mode, thresholds, extra):
    pot, aset_cfg, aset_nbh = setup
    aset = aset_cfg if mode == "configuration" else aset_nbh
    kwargs = dict(ensemble=ensemble, temperature=3000, steps=60, timestep=2.0, seed=4,
                  thresholds=thresholds, **extra)
    a_atoms, a_res, a_cand, a_traj, a_log = _run(pot, aset, "ase", tmp_path, **kwargs)
    n_atoms, n_res, n_cand, n_traj, n_log = _run(pot, aset, "native", tmp_path, **kwargs)
    assert a_res.candidates >= 1 and a_res.steps > 5            # the comparison covers selection
    np.testing.assert_array_equal(n_atoms.positions, a_atoms.positions)
    np.testing.assert_array_equal(n_atoms.get_momenta(), a_atoms.get_momenta())
    fields = ("steps", "reason", "message", "candidates", "gradings", "max_gamma", "above_max",
              "graded", "graded_below_select", "last_selected_step")
    assert [getattr(n_res, f) for f in fields] == [getattr(a_res, f) for f in fields]
    np.testing.assert_array_equal(np.array(n_res.history), np.array(a_res.history))
    assert (a_res.last_accepted is None) == (n_res.last_accepted is None)
    if a_res.last_accepted is not None:
        np.testing.assert_array_equal(n_res.last_accepted.positions, a_res.last_accepted.positions)
        np.testing.assert_array_equal(n_res.last_accepted.get_momenta(),
                                      a_res.last_accepted.get_momenta())
    assert n_cand == a_cand and n_traj == a_traj
    assert n_log == a_log
    assert n_atoms.get_potential_energy() == a_atoms.get_potential_energy()
    np.testing.assert_array_equal(n_atoms.get_forces(), a_atoms.get_forces())
    if "ramp_steps" in extra:
        assert a_res.above_max >= 1                              # gamma_max is exercised
        # a continued run (thermalize=False) from the final state, also bit for bit
        again = {}
        for engine, atoms in (("ase", a_atoms), ("native", n_atoms)):
            res = run_md(pot, atoms, active_set=aset, engine=engine, log=None, thermalize=False,
                         **dict(kwargs, steps=10, ramp_steps=0))
            again[engine] = (res.steps, res.max_gamma, atoms.positions.copy())
        assert again["ase"][:2] == again["native"][:2]
        np.testing.assert_array_equal(again["ase"][2], again["native"][2])


def test_native_engine_blow_up_and_no_grading(setup):
    pot, aset, _ = setup
    for engine in ("ase", "native"):
        res = run_md(pot, start(), active_set=aset, steps=5, temperature=10, log=None,
                     thresholds=Thresholds(gamma_break=1e9, min_distance=2.6), engine=engine)
        assert res.reason == "blow-up" and "closer than 2.6 Å" in res.message and res.steps == 0
    a, b = start(), start()
    run_md(pot, a, ensemble="nvt", temperature=300, steps=12, seed=2, log=None)
    res = run_md(pot, b, ensemble="nvt", temperature=300, steps=12, seed=2, log=None,
                 engine="native")
    assert res.steps == 12 and res.gradings == 0
    np.testing.assert_array_equal(a.positions, b.positions)


def test_native_engine_refuses_what_it_does_not_run(setup):
    pot, aset, _ = setup
    with pytest.raises(ValueError, match=r"engine 'native' runs the ensembles .* 'nvt-nhc'"):
        run_md(pot, start(), active_set=aset, ensemble="nvt-nhc", steps=2, log=None,
               engine="native")
    from ase.constraints import FixAtoms
    fixed = start()
    fixed.set_constraint(FixAtoms(indices=[0]))
    with pytest.raises(ValueError, match=r"engine 'native' .* with constraints"):
        run_md(pot, fixed, ensemble="nve", steps=2, log=None, engine="native")
    with pytest.raises(ValueError, match=r"unknown MD engine 'lammps'"):
        run_md(pot, start(), steps=2, log=None, engine="lammps")


def test_array_forces_equal_evaluate_and_grade(setup):
    pot, aset, aset_nbh = setup
    atoms = start()
    plain = ArrayForces(pot, atoms)(atoms.positions)
    ref = pot.evaluate(atoms)
    np.testing.assert_array_equal(plain["forces"], ref["forces"])
    assert plain["energy"] == ref["energy"] and "gamma" not in plain
    for active in (aset, aset_nbh):
        graded = ArrayForces(pot, atoms, active)(atoms.positions, grade=True)
        ref = active.evaluate(atoms)
        assert graded["gamma"] == ref["gamma"] > 0
        np.testing.assert_array_equal(graded["forces"], ref["forces"])
    np.testing.assert_array_equal(graded["gamma_atoms"], ref["gamma_atoms"])


def _thermalised(temperature, seed):
    atoms = start()
    thermalize = getattr(vd, "thermalize_momenta", vd.MaxwellBoltzmannDistribution)
    thermalize(atoms, temperature_K=temperature, rng=np.random.default_rng(seed))
    vd.Stationary(atoms)
    return atoms


def test_verlet_arrays_conserve_energy(setup):
    pot, _, _ = setup
    atoms = _thermalised(600, 0)
    from ase.md.verlet import VelocityVerlet
    stepper = array_integrator(VelocityVerlet(atoms, timestep=1.0 * units.fs))
    assert isinstance(stepper, VerletArrays)
    forces_of = ArrayForces(pot, atoms)
    masses = atoms.get_masses()
    x, p = atoms.get_positions(), atoms.get_momenta()
    res = forces_of(x)
    f = res["forces"]
    total = []
    for _ in range(400):
        x, p, f = stepper.step(x, p, f, lambda y: forces_of(y)["forces"])
        ekin = 0.5 * np.vdot(p, p / masses[:, None])
        total.append(forces_of(x)["energy"] + ekin)
    total = np.array(total)
    ekin_scale = 1.5 * len(atoms) * units.kB * 600
    # a symplectic integrator: bounded fluctuation, no drift (per atom, against k_B T)
    print("NVE total-energy range / kinetic scale", np.ptp(total) / ekin_scale,
          "drift", (total[-50:].mean() - total[:50].mean()) / ekin_scale)
    assert np.ptp(total) < 0.003 * ekin_scale, np.ptp(total) / ekin_scale
    assert abs(total[-50:].mean() - total[:50].mean()) < 0.001 * ekin_scale


def test_langevin_arrays_hold_the_temperature(setup):
    pot, _, _ = setup
    atoms = _thermalised(300, 1)
    dyn = Langevin(atoms, timestep=2.0 * units.fs, temperature_K=300, friction=0.02 / units.fs,
                   fixcm=False, rng=np.random.default_rng(5))
    stepper = array_integrator(dyn)
    assert isinstance(stepper, LangevinArrays)
    forces_of = ArrayForces(pot, atoms)
    masses = atoms.get_masses()
    x, p = atoms.get_positions(), atoms.get_momenta()
    f = forces_of(x)["forces"]
    temps = []
    for step in range(3000):
        x, p, f = stepper.step(x, p, f, lambda y: forces_of(y)["forces"])
        if step >= 500:
            temps.append(kinetic_temperature(p, masses))
    # 32 atoms: the instantaneous T fluctuates by ~15 %; the mean of ~100 correlation times
    print("Langevin mean T", np.mean(temps))
    assert abs(np.mean(temps) - 300) < 25, np.mean(temps)
    atoms.set_momenta(p)
    assert kinetic_temperature(p, masses) == atoms.get_temperature()


def test_cli_md_engine_native(setup, tmp_path, capsys):
    import ase.io

    from mtplib.cli import main
    pot, _, _ = setup
    pot_path = tmp_path / "cu.mtp"
    pot.save(pot_path)
    ase.io.write(tmp_path / "start.extxyz", start())
    outputs = {}
    for engine in ("ase", "native"):
        out = tmp_path / f"{engine}.extxyz"
        assert main(["md", str(pot_path), str(tmp_path / "start.extxyz"), "--species", "Cu",
                     "--no-gamma", "--steps", "8", "--out", str(out), "--engine", engine,
                     "--candidates", str(tmp_path / "cand.extxyz")]) == 0
        outputs[engine] = out.read_bytes()
    assert outputs["ase"] == outputs["native"]
    assert "8 steps, finished" in capsys.readouterr().out
    assert main(["md", str(pot_path), str(tmp_path / "start.extxyz"), "--species", "Cu",
                 "--no-gamma", "--steps", "8", "--ensemble", "npt", "--engine", "native",
                 "--candidates", str(tmp_path / "cand.extxyz")]) == 2
    assert "engine 'native' runs the ensembles" in capsys.readouterr().err


def test_equilibration_stage_takes_out_released_heat(setup):
    """A strongly rattled cell releases its strain energy as heat: under a weak Langevin
    thermostat it stays near 2500 K for 300 K; after a damped equilibration stage it is near
    300 K. The run counts the stage's steps and grades the stage boundary once."""
    pot, aset, _ = setup
    squeezed = emt_cells(1, seed=11, rattle=0.25)[0]      # far from equilibrium positions
    final = {}
    for equil in (0, 60):
        atoms = squeezed.copy()     # near critical damping (0.05/fs): the fastest relaxation
        run_md(pot, atoms, ensemble="nvt", temperature=300, steps=30, timestep=2.0, seed=3,
               friction=0.001, equilibration_steps=equil, equilibration_friction=0.05,
               log=None)
        final[equil] = atoms.get_temperature()
    # after the damped stage and 30 weakly thermostatted steps the cell is far cooler than
    # after 30 weakly thermostatted steps alone
    assert final[60] < 0.25 * final[0], final
    atoms = squeezed.copy()
    res = run_md(pot, atoms, active_set=aset, ensemble="nvt", temperature=300, steps=12,
                 equilibration_steps=8, log=None, seed=1,
                 thresholds=Thresholds(gamma_select=1e11, gamma_break=1e12, interval=1))
    assert res.steps == 20 and res.reason == "finished"
    assert [s for s, _ in res.history] == list(range(21))     # each step graded once
    with pytest.raises(ValueError, match="equilibration"):
        run_md(pot, squeezed.copy(), steps=1, equilibration_steps=1, equilibration_friction=0,
               log=None)
