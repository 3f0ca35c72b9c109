"""Stage 1 (rule displace): displaced, strained supercells of one phase."""
from ase.io import write
from mtpflow.logs import tee_log

from mtplib.structures import build_phase, check_species, displace

sm = snakemake  # noqa: F821
name, phase = sm.wildcards.phase, sm.params.phase
with tee_log(sm.log[0], terminal=False) as log:
    unit = build_phase(name, phase)
    check_species(unit, sm.params.elements, f"config key 'phases.{name}'")
    frames = displace(unit, name, **phase["displacements"])
    write(sm.output.structures, frames, format="extxyz")
    log(f"{name}: {unit.get_chemical_formula()} unit cell, {len(frames)} structures "
        f"({', '.join(sorted({str(len(a)) for a in frames}))} atoms)")
