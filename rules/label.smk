# Stage 2: label every structure with the reference calculator, resumably and
# in chunks; merge, list failures, and compute isolated-atom energies.
#
# The calculator jobs use shell: so that they can run under '{mpi} -n {tasks}'
# (a script: directive cannot be wrapped by mpiexec/srun); they run in the conda env that
# the reference code's registry entry names (REFERENCE_ENV).


rule label_chunk:
    input:
        structures="results/structures/{phase}.extxyz",
    output:
        labelled="results/labels/{phase}/chunk_{chunk}.extxyz",
        failed="results/labels/{phase}/chunk_{chunk}.failed.extxyz",
    log:
        "logs/label/{phase}/chunk_{chunk}.log",
    benchmark:
        "logs/benchmarks/label/{phase}/chunk_{chunk}.tsv",
    params:
        reference=REFERENCE_JSON,
        launcher=python_launcher,
        command_prefix=command_prefix,
        python=PYTHON,
        script=f"{SCRIPTS}/label.py",
    threads: lookup(dpath="reference/threads", within=config)
    resources:
        tasks=lookup(dpath="reference/mpi_tasks", within=config),
        mpi=LABEL_MPI,
        runtime=60,
    conda:
        REFERENCE_ENV
    shell:
        "export OMP_NUM_THREADS={threads}; "
        "{params.launcher} {params.python:q} {params.script:q}"
        " --structures {input.structures:q} --chunk {wildcards.chunk}"
        " --reference {params.reference:q}"
        " --mpi-prefix={params.command_prefix:q}"
        " --output {output.labelled:q} --failed {output.failed:q} > {log:q} 2>&1"


# Not part of `all`: `snakemake --cores all retry_failed` relabels only the failed structures of
# every finished chunk, in place, with the reference as it is now (after a fix); the next
# `snakemake --cores all` reruns what depends on the chunks. A rule without outputs runs
# whenever it is targeted.
rule retry_failed:
    input:
        structures=expand("results/structures/{phase}.extxyz", phase=PHASES),
        labelled=chunk_files("labelled"),
        failed=chunk_files("failed"),
    log:
        "logs/label/retry_failed.log",
    params:
        chunks=" ".join(f"{phase}:{k}" for phase in PHASES
                        for k in range(n_chunks(config["phases"][phase], REFERENCE.chunk_size))),
        reference=REFERENCE_JSON,
        launcher=python_launcher,
        command_prefix=command_prefix,
        python=PYTHON,
        script=f"{SCRIPTS}/label.py",
    threads: lookup(dpath="reference/threads", within=config)
    resources:
        tasks=lookup(dpath="reference/mpi_tasks", within=config),
        mpi=LABEL_MPI,
    conda:
        REFERENCE_ENV
    shell:
        "export OMP_NUM_THREADS={threads}; : > {log:q}; "
        "for pc in {params.chunks}; do p=${{pc%:*}}; k=${{pc##*:}}; "
        "f=results/labels/$p/chunk_$k.failed.extxyz; [ -s $f ] || continue; "
        "{params.launcher} {params.python:q} {params.script:q} --retry-failed"
        " --structures results/structures/$p.extxyz --chunk $k"
        " --reference {params.reference:q} --mpi-prefix={params.command_prefix:q}"
        " --output results/labels/$p/chunk_$k.extxyz --failed $f >> {log:q} 2>&1 || exit 1; "
        "done; grep -h '^{{' {log:q} || echo 'no failed structures to retry' >> {log:q}"


rule isolated_energies:
    output:
        energies=report(
            "results/labels/isolated.json",
            category="Labels",
            labels={"file": "isolated-atom energies"},
        ),
    log:
        "logs/label/isolated.log",
    benchmark:
        "logs/benchmarks/label/isolated.tsv",
    params:
        reference=stage_reference_json,
        elements=",".join(config["elements"]),
        launcher=python_launcher,
        command_prefix=command_prefix,
        python=PYTHON,
        script=f"{SCRIPTS}/label_isolated.py",
    threads: lambda wildcards: stage_reference(wildcards).threads
    resources:
        tasks=lambda wildcards: stage_reference(wildcards).mpi_tasks,
        mpi=stage_label_mpi,
        runtime=30,
    conda:
        STAGE_REFERENCE_ENV
    shell:
        "export OMP_NUM_THREADS={threads}; "
        "{params.launcher} {params.python:q} {params.script:q}"
        " --elements {params.elements:q} --reference {params.reference:q}"
        " --mpi-prefix={params.command_prefix:q} --output {output.energies:q} > {log:q} 2>&1"


rule merge_labels:
    input:
        labelled=chunk_files("labelled"),
        failed=chunk_files("failed"),
    output:
        train="results/labels/train.extxyz",
        test="results/labels/test.extxyz",
        failed="results/labels/failed.extxyz",
        summary=report(
            "results/labels/summary.json",
            category="Labels",
            labels={"file": "labelling summary"},
        ),
    log:
        "logs/label/merge.log",
    benchmark:
        "logs/benchmarks/label/merge.tsv",
    params:
        fit=config["fit"],
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/merge_labels.py"
