# Before stage 3: compile the numba kernels once (they are cached on disk), alongside
# stages 1-2, instead of in every fitting job at the same time.
rule compile_kernels:
    output:
        record="results/fit/kernels.json",
    log:
        "logs/fit/kernels.log",
    benchmark:
        "logs/benchmarks/fit/kernels.tsv",
    params:
        elements=config["elements"],
        mtp=config["mtp"],
    priority: 10
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/compile_kernels.py"


# Stage 3: seed-scanned fitting. One job per seed (parallel locally, separate cluster jobs),
# all on the same train/test split (fit.split_seed); a gather rule picks the best.
rule fit_seed:
    input:
        train="results/labels/train.extxyz",
        test="results/labels/test.extxyz",
        isolated="results/labels/isolated.json",
        kernels=rules.compile_kernels.output.record,
    output:
        potential="results/fit/seeds/seed_{seed}.mtp",
        errors="results/fit/seeds/seed_{seed}.json",
    log:
        "logs/fit/seed_{seed}.log",
    benchmark:
        "logs/benchmarks/fit/seed_{seed}.tsv",
    params:
        elements=",".join(config["elements"]),
        mtp=MTP_JSON,
        fit=FIT_JSON,
        launcher=fit_launcher,
        python=PYTHON,
        script=f"{SCRIPTS}/fit_seed.py",
    resources:
        tasks=lookup(dpath="fit/mpi_tasks", within=config),
        mpi=FIT_MPI,
        cpus_per_task=1,
    conda:
        "../envs/mtp.yaml"
    shell:
        "{params.launcher} {params.python:q} {params.script:q} --train {input.train:q}"
        " --test {input.test:q} --isolated {input.isolated:q} --elements {params.elements:q}"
        " --mtp {params.mtp:q} --fit {params.fit:q} --seed {wildcards.seed}"
        " --potential {output.potential:q} 2>&1 | tee {log:q} | awk '/^progress: /'"


rule fit_gather:
    input:
        potentials=expand("results/fit/seeds/seed_{seed}.mtp", seed=SEEDS),
        errors=expand("results/fit/seeds/seed_{seed}.json", seed=SEEDS),
        train="results/labels/train.extxyz",
        test="results/labels/test.extxyz",
    output:
        table=report("results/fit/seeds.csv", caption="../report/seeds.rst", category="Fitting"),
        best="results/fit/best.mtp",
        committee="results/fit/committee.json",
        errors="results/fit/errors.json",
        parity=report("results/fit/parity.png", caption="../report/parity.rst", category="Fitting"),
        seed_errors=report("results/fit/seed_errors.png", caption="../report/seed_errors.rst",
                           category="Fitting"),
    log:
        "logs/fit/gather.log",
    benchmark:
        "logs/benchmarks/fit/gather.tsv",
    params:
        elements=config["elements"],
        fit=config["fit"],
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/fit_gather.py"
