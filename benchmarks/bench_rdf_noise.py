#!/usr/bin/env python3
"""How much of the validation's RDF difference is the reference run's sampling noise? The
RDF comparison computed with the MTP as its own reference.

Protocol (fixed before the first run): for a finished run's validation scenario with a
reference MD (results/validation/<scenario>/{mtp,reference}.extxyz), every figure is the
comparison's own (mtpflow.validation.compare's settings: the config's validation.rdf, the
first fifth of each trajectory dropped; per pair and the total g(r): the integrated
|difference| and the first-peak shift):

1. `verdict`: the run's MTP trajectory against its reference trajectory, recomputed (it must
   equal results/validation/<scenario>/similarity.json);
2. `reference halves`: the reference's frames (after the drop) in two halves, against each
   other (each half without its own first fifth too);
3. a twin run: the final MTP from the reference's own start structure (its box, its seed),
   in the scenario's ensemble, temperature and damped start, for the MTP run's length, its
   frames written at the reference trajectory's spacing. Cut into consecutive windows of
   the reference run's length (the same number of frames, the first fifth dropped), each
   window is compared with the scenario's MTP trajectory, as the verdict compares the
   reference with it: `window vs MTP run` (mean, min and max over the windows) is the
   verdict a potential would get against itself, sampled as the reference is sampled: the
   comparison's noise floor. `twin vs MTP run` (the whole twin run, dropped fifth) and
   `twin vs reference` separate the box size and the potential.

The twin writes a frame every fifth of that spacing, and `dense window vs MTP run` uses every
frame of each window (the same simulated time, five times the frames): whether denser frames
of the same reference run would lower the floor.

If the noise floor is near the tolerance (validation.tolerances), the verdict cannot tell a
good potential from a bad one with this reference run.

    python benchmarks/bench_rdf_noise.py RUN_DIR [--scenario amorphous_3000K]
        [--configfile config/examples/hfo2_tblite.yaml]
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import yaml
from ase.io import read

from mtplib import MTPotential
from mtplib.active import run_md
from mtplib.active.md import NATIVE_ENSEMBLES
from mtplib.analysis.structure import compare_curves, rdf, total_rdf
from scripts.mtpflow.settings import (Settings, damped_start_kwargs, phases_built,
                                      validate_config)
from scripts.mtpflow.validation import FRAMES


def curves(images, settings, elements):
    images = images[int(0.2 * len(images)):] or images
    r, g, rho = rdf(images, settings["r_max"], settings["bins"], elements)
    g["total"] = total_rdf(g, rho)
    return r, g


def difference(r, test, reference):
    return {k: (v["integrated_absolute_difference"], v["first_peak_shift"])
            for k, v in compare_curves(r, test, reference).items()}


def row(label, diffs):
    return "| " + label + " | " + " | ".join(
        f"{d:.3f} / {'-' if s is None else f'{s:+.2f}'}" for d, s in diffs.values()) + " |"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="the run's directory (results/ inside)")
    p.add_argument("--scenario", default="amorphous_3000K")
    p.add_argument("--configfile", type=Path, default=Path("config/examples/hfo2_tblite.yaml"))
    args = p.parse_args()
    config = validate_config(yaml.safe_load(args.configfile.read_text()))
    settings = Settings.from_config(config, checked=True)
    elements = config["elements"]
    rdf_settings = config["validation"]["rdf"]
    run = settings.validation.runs()[args.scenario]
    res = args.run / "results"
    where = res / "validation" / args.scenario
    mtp_frames = read(where / "mtp.extxyz", ":")
    ref_frames = [a for a in read(where / "reference.extxyz", ":") if "md_failure" not in a.info]
    r, g_mtp = curves(mtp_frames, rdf_settings, elements)
    _, g_ref = curves(ref_frames, rdf_settings, elements)
    verdict = difference(r, g_mtp, g_ref)
    stored = json.loads((where / "similarity.json").read_text())["rdf"]
    for k, (d, _) in verdict.items():
        assert abs(d - stored[k]["integrated_absolute_difference"]) < 1e-9, (k, d, stored[k])

    kept = ref_frames[int(0.2 * len(ref_frames)):]
    half = len(kept) // 2
    # curves() drops each half's own first fifth again: 40 % of the kept frames per half
    _, g_a = curves(kept[:half], rdf_settings, elements)
    _, g_b = curves(kept[half:], rdf_settings, elements)
    halves = difference(r, g_a, g_b)

    # the twin: the MTP from the reference's start, frames at the reference's spacing
    ref_steps, mtp_steps = run.steps_of("reference"), run.steps_of("mtp")
    spacing = max(1, ref_steps // FRAMES)
    fine = max(1, spacing // 5)
    every = spacing // fine
    atoms = run.start_structure(phases_built(config["phases"], args.run), "reference")
    pot = MTPotential.load(res / "final" / "potential.mtp", species=elements)
    trajectory = Path(f"/tmp/bench_rdf_noise_{args.scenario}.extxyz")
    trajectory.unlink(missing_ok=True)
    start = time.perf_counter()
    result = run_md(pot, atoms, ensemble=run.ensemble, temperature=run.temperature,
                    steps=mtp_steps, timestep=run.timestep, pressure=run.pressure, seed=run.seed,
                    trajectory=trajectory, trajectory_interval=fine,
                    progress_interval=max(1, mtp_steps // 5), scenario=f"{args.scenario} twin",
                    engine="native" if run.ensemble in NATIVE_ENSEMBLES else "ase",
                    **damped_start_kwargs(run.equilibration))
    dense_twin = read(trajectory, ":")
    print(f"twin run: {result.steps} steps ({result.reason}), {len(atoms)} atoms, "
          f"{len(dense_twin)} frames every {fine} steps, {time.perf_counter() - start:.0f} s")
    twin = dense_twin[::every]                      # at the reference's spacing
    window = len(ref_frames)          # the reference run's frames, its first fifth included
    start_frame = int(round(int(run.equilibration["steps"]) / spacing))
    starts = range(start_frame, len(twin) - window + 1, window)
    windows = [twin[s:s + window] for s in starts]
    dense_windows = [dense_twin[s * every:(s + window - 1) * every + 1] for s in starts]
    per_window = [difference(r, g_mtp, curves(w, rdf_settings, elements)[1]) for w in windows]
    per_dense = [difference(r, g_mtp, curves(w, rdf_settings, elements)[1])
                 for w in dense_windows]
    _, g_twin = curves(twin, rdf_settings, elements)

    keys = list(verdict)
    print(f"\n{args.scenario}: MTP run {len(mtp_frames)} frames ({len(mtp_frames[0])} atoms), "
          f"reference {len(ref_frames)} frames ({len(ref_frames[0])} atoms), "
          f"{len(windows)} twin windows of {window} frames")
    print("\nintegrated |difference| (Å) / first-peak shift (Å)")
    print("| comparison | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    print(row("verdict: MTP run vs reference", verdict))
    print(row("reference halves", halves))
    for label, results in (("window", per_window), (f"dense window (x{every})", per_dense)):
        for name, stat in (("mean", np.mean), ("min", np.min), ("max", np.max)):
            print(f"| {label} vs MTP run, {name} | " + " | ".join(
                f"{stat([w[k][0] for w in results]):.3f} / "
                f"{stat([abs(w[k][1]) for w in results if w[k][1] is not None]):.2f}"
                for k in keys) + " |")
    print(row("twin (whole) vs MTP run", difference(r, g_twin, g_mtp)))
    print(row("twin (whole) vs reference", difference(r, g_twin, g_ref)))
    tol = config["validation"]["tolerances"]
    fails = {k: sum(w[k][0] > tol["rdf_difference"] for w in per_window) for k in keys}
    shifted = {k: sum(w[k][1] is not None and abs(w[k][1]) > tol["rdf_first_peak_shift"] + 1e-9
                      for w in per_window) for k in keys}
    print(f"\nwindows over the tolerance {tol['rdf_difference']} Å, per pair (of {len(windows)}): "
          f"{fails}")
    print(f"windows with a first-peak shift over {tol['rdf_first_peak_shift']} Å: {shifted}")
    print(f"dense windows over the tolerance: "
          f"{ {k: sum(w[k][0] > tol['rdf_difference'] for w in per_dense) for k in keys} }")


if __name__ == "__main__":
    main()
