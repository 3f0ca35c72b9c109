# The hull target (config key hull.enabled): candidate pool -> active learning on the
# relaxation of the pool (from the stage-2 labels and the stage-3 potential) -> formation
# energies and the lower convex hull. Files under results/hull/.


rule hull_pool:
    output:
        pool="results/hull/pool.extxyz",
    log:
        "logs/hull/pool.log",
    benchmark:
        "logs/benchmarks/hull/pool.tsv",
    params:
        elements=config["elements"],
        hull=config["hull"],
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/hull_pool.py"


rule hull_learn:
    input:
        pool="results/hull/pool.extxyz",
        potential="results/fit/best.mtp",
        train="results/labels/train.extxyz",
    output:
        relaxed="results/hull/relaxed.extxyz",
        potential="results/hull/potential.mtp",
        train="results/hull/train.extxyz",
        record="results/hull/record.json",
    log:
        "logs/hull/learn.log",
    benchmark:
        "logs/benchmarks/hull/learn.tsv",
    params:
        elements=config["elements"],
        hull=config["hull"],
        fit=config["fit"],
        reference=job_reference(config["reference"]),
        selection_mode=AL.selection_mode,
        selection_weights=AL.selection_weights,
        out_dir="results/hull/al",
    conda:
        REFERENCE_ENV
    script:
        "../scripts/hull_learn.py"


rule hull_reference:
    input:
        pool="results/hull/pool.extxyz",
    output:
        relaxed="results/hull/reference_relaxed.extxyz",
    log:
        "logs/hull/reference.log",
    benchmark:
        "logs/benchmarks/hull/reference.tsv",
    params:
        hull=config["hull"],
        reference=job_reference(config["reference"]),
    conda:
        REFERENCE_ENV
    script:
        "../scripts/hull_reference.py"


rule hull_build:
    input:
        unpack(hull_inputs),
    output:
        csv=report("results/hull/hull.csv", category="Convex hull"),
        plot=report("results/hull/hull.png", caption="../report/hull.rst", category="Convex hull"),
    log:
        "logs/hull/hull.log",
    benchmark:
        "logs/benchmarks/hull/hull.tsv",
    params:
        elements=config["elements"],
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/hull_build.py"
