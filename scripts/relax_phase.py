"""Stage 1 (rule relax_phase): one phase's unit cell relaxed by the final reference within
its space group (phases.<name>.relax), and a JSON record of the relaxation."""
import json
import sys

from ase.io import write
from mtpflow.logs import every_nth, tee_log
from mtpflow.settings import ReferenceSettings, build

from mtplib.analysis.properties import relax_unit_cell
from mtplib.labeling import ReferenceFailed, RetryingCalculator
from mtplib.structures import build_phase, check_species

sm = snakemake  # noqa: F821
name, phase = sm.wildcards.phase, sm.params.phase
relax = phase["relax"]
reference = build(ReferenceSettings, sm.params.reference)
with tee_log(sm.log[0], terminal=False, progress=every_nth("step", 10)) as log:
    unit = build_phase(name, phase)
    check_species(unit, sm.params.elements, f"config key 'phases.{name}'")
    calc = RetryingCalculator(reference.calculator_factory(symbols=sm.params.elements),
                              retries=reference.retries, timeout=reference.timeout, log=log)
    try:
        relaxed, record = relax_unit_cell(unit, calc, fmax=relax["fmax"], steps=relax["steps"],
                                          cell=relax["cell"], min_height=sm.params.min_height,
                                          log=log)
    except ReferenceFailed as err:
        # one line on the console; each failed attempt's reason is in the log
        print(f"{sm.log[0]}: phases.{name}.relax: the reference ({reference.name}) failed "
              f"after {len(calc.failures)} attempts: {err}", flush=True)
        log(f"relaxation stopped: {err}")
        sys.exit(1)
    record["phase"] = name
    record["cellpar_before"] = [round(float(x), 6) for x in unit.cell.cellpar()]
    record["cellpar_after"] = [round(float(x), 6) for x in relaxed.cell.cellpar()]
    write(sm.output.structure, relaxed, format="extxyz")
    with open(sm.output.record, "w") as fh:
        json.dump(record, fh, indent=1)
    status = "converged" if record["converged"] else f"NOT converged (phases.{name}.relax.steps)"
    log(f"{name}: relaxed in {record['steps']} steps, {status}: volume "
        f"{record['volume_per_atom_before']:.3f} -> {record['volume_per_atom_after']:.3f} "
        f"Å³/atom, largest force {record['max_force']:.4f} eV/Å, largest stress "
        f"{record['max_stress_GPa']:.3f} GPa")
    if not record["converged"]:
        print(f"warning: phases.{name}.relax: not converged in {record['steps']} steps "
              f"(largest force {record['max_force']:.3f} eV/Å); see {sm.log[0]}", flush=True)
