"""Stage 1 (rule displace): displaced, strained supercells of one phase."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (the checkout's mtplib)

from ase.io import write  # noqa: E402

from mtplib.workflow.displace import build_phase, displace  # noqa: E402

name = snakemake.wildcards.phase  # noqa: F821
phase = snakemake.params.phase  # noqa: F821
elements = snakemake.params.elements  # noqa: F821

with open(snakemake.log[0], "w") as log:  # noqa: F821
    unit = build_phase(name, phase)
    unknown = sorted(set(unit.get_chemical_symbols()) - set(elements))
    if unknown:
        raise ValueError(
            f"config key 'phases.{name}': species {unknown} are not in config key 'elements' {elements}"
        )
    frames = displace(unit, name, **phase["displacements"])
    write(snakemake.output.structures, frames, format="extxyz")  # noqa: F821
    print(
        f"{name}: {unit.get_chemical_formula()} unit cell, {len(frames)} structures "
        f"({', '.join(sorted({str(len(a)) for a in frames}))} atoms)",
        file=log,
    )
