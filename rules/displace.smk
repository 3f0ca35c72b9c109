# Stage 1: displaced and strained supercells of every phase.


rule displace:
    input:
        unpack(phase_source),
    output:
        structures="results/structures/{phase}.extxyz",
    log:
        "logs/displace/{phase}.log",
    benchmark:
        "logs/benchmarks/displace/{phase}.tsv",
    params:
        phase=lambda wildcards: PHASES_BUILT[wildcards.phase],
        elements=lookup(dpath="elements", within=config),
    resources:
        runtime=10,
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/displace.py"


# The unit cell relaxed with the final reference within its space group (phases.<name>.relax).
rule relax_phase:
    input:
        unpack(given_phase_source),
    output:
        structure=relaxed_phase_file("{phase}"),
        record="results/structures/relaxed/{phase}.json",
    log:
        "logs/relax/{phase}.log",
    benchmark:
        "logs/benchmarks/relax/{phase}.tsv",
    params:
        phase=lookup(dpath="phases/{phase}", within=config),
        elements=config["elements"],
        reference=FINAL_REFERENCE,
        min_height=FINAL_GAMMA_MIN_HEIGHT,
    resources:
        runtime=60,
    conda:
        FINAL_REFERENCE_ENV
    script:
        "../scripts/relax_phase.py"
