"""Stage 5, validation of the final potential against the reference calculator.

* :func:`run_md`: the same MD (start, ensemble, temperature, seed) driven by the MTP or by
  the reference; the trajectory is saved.
* :func:`compare`: partial RDFs and ADFs of both trajectories (first `discard` fraction
  dropped as equilibration), plots on the same axes and similarity numbers.
* :func:`summarize`: ``summary.json`` (every scenario's similarity, test-set errors of the
  final potential, energy-volume and elastic comparisons when configured), parity plots.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

EV_PER_A3_TO_GPA = 160.21766208


def calculator(engine, potential_file, reference, elements):
    """The MTP (engine 'mtp') or the reference calculator (engine 'reference')."""
    if engine == "mtp":
        from ..calculator import MTPCalculator
        return MTPCalculator(potential_file, species=list(elements))
    from .reference import make_calculator
    return make_calculator(reference["name"], reference.get("kwargs"))


def start_structure(spec, phases):
    from .displace import build_phase
    return build_phase(spec["phase"], phases[spec["phase"]]).repeat(tuple(spec["supercell"]))


def run_md(calc, spec, phases, out_trajectory, frames=50, log=print):
    """MD of one validation scenario; `frames` snapshots (energy, forces) to the trajectory."""
    from ase.io import write
    from ase.md import velocitydistribution as vd

    from ..active.md import make_integrator
    from .scenarios import ENSEMBLES

    atoms = start_structure(spec, phases)
    rng = np.random.default_rng(spec["seed"])
    vd.MaxwellBoltzmannDistribution(atoms, temperature_K=spec["temperature"], rng=rng)
    vd.Stationary(atoms)
    atoms.calc = calc
    dyn = make_integrator(atoms, ENSEMBLES[spec["ensemble"]], spec["timestep"],
                          spec["temperature"], rng)
    interval = max(1, spec["steps"] // frames)
    out = Path(out_trajectory)
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)

    def snapshot():
        frame = atoms.copy()
        frame.info.update(step=dyn.nsteps, temperature=atoms.get_temperature(),
                          energy=atoms.get_potential_energy())
        write(tmp, frame, format="extxyz", append=True)

    dyn.attach(snapshot, interval=interval)
    dyn.run(spec["steps"])
    tmp.replace(out)
    log(f"{spec['name']}: {spec['steps']} steps, {len(atoms)} atoms, final T "
        f"{atoms.get_temperature():.0f} K")


def _figure(n, size=3.6):
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(size * cols, size * 0.85 * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes


def comparison_plot(x, curves, path, xlabel, ylabel):
    """One panel per key; every labelled set of curves ({label: {key: y}}) on the same axes."""
    keys = sorted({k for c in curves.values() for k in c})
    fig, axes = _figure(max(1, len(keys)))
    for ax, key in zip(axes, keys):
        for (label, c), style in zip(curves.items(), ("-", "--", ":")):
            if key in c:
                ax.plot(x, c[key], style, label=label, lw=1.2)
        ax.set_title(key)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def compare(mtp_trajectory, reference_trajectory, rdf_config, adf_config, elements, out_json,
            out_rdf, out_adf, discard=0.2):
    """RDF and ADF of both trajectories, plotted together, with similarity numbers."""
    from ase.io import read

    from ..analysis.structure import adf, compare_curves, rdf, resolve_cutoffs

    def frames(path):
        images = read(path, index=":")
        return images[int(discard * len(images)):] or images

    mtp, ref = frames(mtp_trajectory), frames(reference_trajectory)
    r, g_ref, _ = rdf(ref, rdf_config["r_max"], rdf_config["bins"], elements)
    _, g_mtp, _ = rdf(mtp, rdf_config["r_max"], rdf_config["bins"], elements)
    cutoffs = resolve_cutoffs(adf_config["cutoffs"], elements, r, g_ref)   # one set for both
    theta, p_ref, _ = adf(ref, cutoffs, adf_config["bins"], elements)
    _, p_mtp, _ = adf(mtp, cutoffs, adf_config["bins"], elements)
    comparison_plot(r, {"MTP": g_mtp, "reference": g_ref}, out_rdf, "r (Å)", "g(r)")
    comparison_plot(theta, {"MTP": p_mtp, "reference": p_ref}, out_adf, "angle (degrees)",
                    "density (1/degree)")
    result = {"frames": {"mtp": len(mtp), "reference": len(ref)}, "adf_cutoffs": cutoffs,
              "rdf": compare_curves(r, g_mtp, g_ref), "adf": compare_curves(theta, p_mtp, p_ref)}
    result["rdf_integrated_absolute_difference"] = float(np.mean(
        [v["integrated_absolute_difference"] for v in result["rdf"].values()]))
    result["adf_integrated_absolute_difference"] = float(np.mean(
        [v["integrated_absolute_difference"] for v in result["adf"].values()])) if result["adf"] else None
    Path(out_json).write_text(json.dumps(result, indent=2) + "\n")
    return result


def energy_volume(unit, calcs, scales=np.linspace(0.94, 1.06, 9)):
    """{name: (volumes per atom, energies per atom)} for isotropic scalings of `unit`."""
    out = {}
    for name, calc in calcs.items():
        volumes, energies = [], []
        for s in scales:
            atoms = unit.copy()
            atoms.set_cell(unit.cell.array * s, scale_atoms=True)
            atoms.calc = calc
            volumes.append(atoms.get_volume() / len(atoms))
            energies.append(atoms.get_potential_energy() / len(atoms))
        out[name] = (np.array(volumes), np.array(energies))
    return out


def elastic_constants(unit, calc, delta=0.005):
    """Clamped-ion elastic constants C_ij (GPa, Voigt) by central differences of the stress."""
    C = np.zeros((6, 6))
    voigt = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    for j, (a, b) in enumerate(voigt):
        stresses = []
        for sign in (1, -1):
            eps = np.zeros((3, 3))
            eps[a, b] = eps[b, a] = sign * delta / (1 if a == b else 2)
            atoms = unit.copy()
            atoms.set_cell(unit.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            atoms.calc = calc
            stresses.append(atoms.get_stress(voigt=True))
        C[:, j] = (stresses[0] - stresses[1]) / (2 * delta) * EV_PER_A3_TO_GPA
    return C


def summarize(similarity_files, names, potential_file, train_file, reference, phases, elements,
              fit_config, validation, out_summary, out_parity, out_ev, log=print):
    """summary.json and the test-set parity plot of the final potential; the energy-volume
    curves (and elastic constants) of every phase when configured."""
    from ..analysis.errors import error_metrics
    from ..analysis.plots import parity_plots
    from ..io import read_dataset
    from ..potential import MTPotential
    from .displace import build_phase
    from .fitting import split

    pot = MTPotential.load(potential_file, species=list(elements))
    summary = {"potential": str(potential_file), "scenarios": {}}
    for name, path in zip(names, similarity_files):
        data = json.loads(Path(path).read_text())
        summary["scenarios"][name] = data
    _, test = split(read_dataset(train_file), fit_config)
    sets = {"test": (test, pot.evaluate_many(test))} if test else {}
    if validation.get("valid_data"):
        valid = read_dataset(validation["valid_data"], species=list(elements))
        sets["valid"] = (valid, pot.evaluate_many(valid))
    summary["errors"] = {k: error_metrics(*v) for k, v in sets.items()}
    parity_plots(sets, out_parity)
    calcs = {"MTP": calculator("mtp", potential_file, reference, elements),
             "reference": calculator("reference", potential_file, reference, elements)}
    names_ev = list(phases) if validation["energy_volume"] else []
    fig, axes = _figure(max(1, len(names_ev)))
    summary["energy_volume"] = {}
    summary["elastic"] = {}
    for ax, phase in zip(axes, names_ev):
        unit = build_phase(phase, phases[phase])
        try:
            curves = energy_volume(unit, calcs)
        except Exception as exc:       # a reference failure (SCF) must not lose the summary
            summary["energy_volume"][phase] = {"error": f"{type(exc).__name__}: {exc}"}
            log(f"energy-volume of {phase} failed: {exc}")
            continue
        entry = {}
        for label, (v, e) in curves.items():
            ax.plot(v, e, "o-" if label == "MTP" else "s--", label=label)
            c2, c1, _ = np.polyfit(v, e, 2)
            entry[f"v0_{label}"] = float(-c1 / (2 * c2))
        entry["energy_rmse_meV_per_atom"] = float(1000 * np.sqrt(np.mean(
            (curves["MTP"][1] - curves["reference"][1]) ** 2)))
        summary["energy_volume"][phase] = entry
        ax.set_title(phase)
        ax.set_xlabel("volume (Å³/atom)")
        ax.set_ylabel("energy (eV/atom)")
        ax.legend(fontsize="small")
    if not names_ev:
        axes[0].text(0.5, 0.5, "energy_volume: false", ha="center", transform=axes[0].transAxes)
    fig.tight_layout()
    fig.savefig(out_ev, dpi=110)
    if validation["elastic"]:
        for phase in phases:
            unit = build_phase(phase, phases[phase])
            try:
                c = {k: elastic_constants(unit, calc) for k, calc in calcs.items()}
            except Exception as exc:
                summary["elastic"][phase] = {"error": f"{type(exc).__name__}: {exc}"}
                log(f"elastic constants of {phase} failed: {exc}")
                continue
            summary["elastic"][phase] = {
                "C_mtp_GPa": np.round(c["MTP"], 2).tolist(),
                "C_reference_GPa": np.round(c["reference"], 2).tolist(),
                "max_abs_difference_GPa": float(np.abs(c["MTP"] - c["reference"]).max())}
    Path(out_summary).write_text(json.dumps(summary, indent=2) + "\n")
    for name, data in summary["scenarios"].items():
        log(f"{name}: RDF integrated |difference| {data['rdf_integrated_absolute_difference']:.4f} Å")
    return summary
