# Stage 2: label every structure with the reference calculator, resumably and
# in chunks; merge, list failures, and compute isolated-atom energies.
#
# The calculator jobs use shell: so that they can run under '{mpi} -n {tasks}'
# (a script: directive cannot be wrapped by mpiexec/srun). The repository root
# goes on PYTHONPATH so that mtplib and 'module:Class' calculators of the
# checkout (e.g. tests.helpers) import without an install.


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
        reference=json.dumps(config["reference"]),
        chunk_size=lookup(dpath="reference/chunk_size", within=config),
        launcher=python_launcher,
        command_prefix=command_prefix,
        root=workflow.basedir,
    threads: lookup(dpath="reference/threads", within=config)
    resources:
        tasks=lookup(dpath="reference/mpi_tasks", within=config),
        mpi=LABEL_MPI,
        runtime=60,
    conda:
        "../envs/mtp.yaml"
    shell:
        "export OMP_NUM_THREADS={threads} PYTHONPATH={params.root:q}${{PYTHONPATH:+:$PYTHONPATH}}; "
        "{params.launcher} python -m mtplib.workflow.label"
        " --structures {input.structures:q} --chunk {wildcards.chunk}"
        " --chunk-size {params.chunk_size} --reference {params.reference:q}"
        " --mpi-prefix={params.command_prefix:q}"
        " --output {output.labelled:q} --failed {output.failed:q} > {log:q} 2>&1"


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
        reference=json.dumps(config["reference"]),
        elements=",".join(config["elements"]),
        launcher=python_launcher,
        command_prefix=command_prefix,
        root=workflow.basedir,
    threads: lookup(dpath="reference/threads", within=config)
    resources:
        tasks=lookup(dpath="reference/mpi_tasks", within=config),
        mpi=LABEL_MPI,
        runtime=30,
    conda:
        "../envs/mtp.yaml"
    shell:
        "export OMP_NUM_THREADS={threads} PYTHONPATH={params.root:q}${{PYTHONPATH:+:$PYTHONPATH}}; "
        "{params.launcher} python -m mtplib.workflow.isolated"
        " --elements {params.elements:q} --reference {params.reference:q}"
        " --mpi-prefix={params.command_prefix:q} --output {output.energies:q} > {log:q} 2>&1"


rule merge_labels:
    input:
        labelled=chunk_files("labelled"),
        failed=chunk_files("failed"),
    output:
        train="results/labels/train.extxyz",
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
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/merge_labels.py"
