"""Hull target (rule hull_pool): the candidate pool, derivative superstructures from icet."""
from ase.io import write
from mtpflow.logs import tee_log

from mtplib.active.pool import PoolSettings, enumerate_pool

sm = snakemake  # noqa: F821
hull = sm.params.hull
with tee_log(sm.log[0]) as log:
    pool = enumerate_pool(PoolSettings(elements=tuple(sm.params.elements),
                                       lattices=tuple(hull["lattices"]),
                                       max_atoms=hull["max_atoms"],
                                       max_structures=hull["max_structures"], seed=hull["seed"]))
    write(sm.output.pool, pool, format="extxyz")
    log(f"candidate pool: {len(pool)} structures of up to {hull['max_atoms']} atoms on "
        f"{', '.join(hull['lattices'])}")
