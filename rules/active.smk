# Stage 4: active learning. Iteration {i} lives in results/{alroot}/iter_{i}/ (results/al/, or
# results/al/stage-<name>/ per fidelity stage, rules/fidelity.smk):
#   al_md (one job per scenario) -> al_select -> al_label_part (the selection in parts, side
#   by side) -> al_label -> al_refit -> checkpoint al_iteration.
# The number of iterations is found at run time: al_iterations() (rules/common.smk) walks
# checkpoints.al_iteration until an iteration.json says converged or max_iterations is
# reached. Finished iterations are ordinary outputs, so they are never redone.


rule al_start:
    input:
        potential="results/fit/best.mtp",
        train="results/labels/train.extxyz",
    output:
        state="results/al/start/best.als.npz",
    log:
        "logs/al/start.log",
    benchmark:
        "logs/benchmarks/al/start.tsv",
    params:
        elements=config["elements"],
        mode=lookup(dpath="active_learning/selection_mode", within=config),
        weights=AL.selection_weights,
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/al_start.py"


rule al_md:
    input:
        unpack(al_previous),
        unpack(committee_file),
        unpack(al_previous_last),
        relaxed_phases=RELAXED_PHASE_FILES,
    output:
        candidates="results/{alroot}/iter_{i}/md/{scenario}.extxyz",
        summary="results/{alroot}/iter_{i}/md/{scenario}.json",
        last="results/{alroot}/iter_{i}/md/{scenario}.last.extxyz",
    log:
        "logs/{alroot}/iter_{i}/md/{scenario}.log",
    benchmark:
        "logs/benchmarks/{alroot}/iter_{i}/md/{scenario}.tsv",
    params:
        run=lambda wildcards: asdict(AL_RUNS[wildcards.scenario]),
        al=AL_PARAMS,
        phases=PHASES_BUILT,
        elements=config["elements"],
    resources:
        runtime=60,
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/al_md.py"


rule al_select:
    input:
        unpack(al_previous),
        candidates=al_md_outputs("extxyz"),
        runs=al_md_outputs("json"),
    output:
        candidates="results/{alroot}/iter_{i}/candidates.extxyz",
        selected="results/{alroot}/iter_{i}/selected.extxyz",
        summary="results/{alroot}/iter_{i}/selection.json",
    log:
        "logs/{alroot}/iter_{i}/select.log",
    benchmark:
        "logs/benchmarks/{alroot}/iter_{i}/select.tsv",
    params:
        al=AL_PARAMS,
        elements=config["elements"],
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/al_select.py"


rule al_label_part:
    input:
        selected="results/{alroot}/iter_{i}/selected.extxyz",
    output:
        labelled="results/{alroot}/iter_{i}/label/part_{part}.extxyz",
        failed="results/{alroot}/iter_{i}/label/part_{part}.failed.extxyz",
    log:
        "logs/{alroot}/iter_{i}/label_{part}.log",
    benchmark:
        "logs/benchmarks/{alroot}/iter_{i}/label_{part}.tsv",
    params:
        reference=stage_reference_json,
        launcher=python_launcher,
        command_prefix=command_prefix,
        python=PYTHON,
        script=f"{SCRIPTS}/label.py",
        parts=al_label_parts,
    threads: lambda wildcards: stage_reference(wildcards).threads
    resources:
        tasks=lambda wildcards: stage_reference(wildcards).mpi_tasks,
        mpi=stage_label_mpi,
        runtime=60,
    conda:
        STAGE_REFERENCE_ENV
    shell:
        "export OMP_NUM_THREADS={threads}; "
        "{params.launcher} {params.python:q} {params.script:q} --structures {input.selected:q}"
        " --part {wildcards.part} --parts {params.parts}"
        " --reference {params.reference:q} --mpi-prefix={params.command_prefix:q}"
        " --output {output.labelled:q} --failed {output.failed:q} > {log:q} 2>&1"


rule al_label:
    input:
        labelled=al_label_part_files("results/{alroot}/iter_{i}", "labelled"),
        failed=al_label_part_files("results/{alroot}/iter_{i}", "failed"),
    output:
        labelled="results/{alroot}/iter_{i}/labelled.extxyz",
        failed="results/{alroot}/iter_{i}/failed.extxyz",
    log:
        "logs/{alroot}/iter_{i}/label.log",
    benchmark:
        "logs/benchmarks/{alroot}/iter_{i}/label.tsv",
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/al_label_merge.py"


rule al_refit:
    input:
        unpack(al_previous),
        unpack(lambda wildcards: stage_data(wildcards.alroot)),
        labelled="results/{alroot}/iter_{i}/labelled.extxyz",
    output:
        train="results/{alroot}/iter_{i}/train.extxyz",
        potential="results/{alroot}/iter_{i}/potential.mtp",
        state="results/{alroot}/iter_{i}/potential.als.npz",
        errors="results/{alroot}/iter_{i}/errors.json",
    log:
        "logs/{alroot}/iter_{i}/refit.log",
    benchmark:
        "logs/benchmarks/{alroot}/iter_{i}/refit.tsv",
    params:
        elements=config["elements"],
        mtp=config["mtp"],
        fit=config["fit"],
        al=AL_PARAMS,
        valid_data=lookup(dpath="validation/valid_data", within=config),
    resources:
        runtime=60,
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/al_refit.py"


checkpoint al_iteration:
    input:
        runs=al_md_outputs("json"),
        selection="results/{alroot}/iter_{i}/selection.json",
        failed="results/{alroot}/iter_{i}/failed.extxyz",
        errors="results/{alroot}/iter_{i}/errors.json",
        potential="results/{alroot}/iter_{i}/potential.mtp",
        state="results/{alroot}/iter_{i}/potential.als.npz",
    output:
        summary="results/{alroot}/iter_{i}/iteration.json",
    log:
        "logs/{alroot}/iter_{i}/iteration.log",
    benchmark:
        "logs/benchmarks/{alroot}/iter_{i}/iteration.tsv",
    params:
        gamma_break=AL.gamma_break,
        convergence=AL.convergence,
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/al_iteration.py"


rule al_record:
    input:
        summaries=al_summaries,
        failed=al_failed,
    output:
        record=report("results/{alroot}/record.csv", caption="../report/al_record.rst",
                      category="Active learning"),
        curve=report("results/{alroot}/learning_curve.png", caption="../report/learning_curve.rst",
                     category="Active learning"),
        failures=report("results/{alroot}/failures.json", caption="../report/al_failures.rst",
                        category="Active learning"),
    log:
        "logs/{alroot}/record.log",
    params:
        empty_status=AL.skipped or "",
    benchmark:
        "logs/benchmarks/{alroot}/record.tsv",
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/al_record.py"


# The final fit's 80/20 split (active_learning.final_test_fraction > 0): a seeded fraction of
# everything labelled joins stage 2's held-out set as the final fit's test set.
rule final_split:
    input:
        train=al_final_train,
        test=final_stage_test,
    output:
        train="results/final/train.extxyz",
        test="results/final/test.extxyz",
        record="results/final/split.json",
    log:
        "logs/final/split.log",
    benchmark:
        "logs/benchmarks/final/split.tsv",
    params:
        fraction=AL.final_test_fraction,
        seed=AL.final_split_seed,
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/final_split.py"


# Final fit: a seed scan (the stage-3 fitting code) on everything labelled (less the
# final_split's held-out part).
rule final_seed:
    input:
        train=final_train,
        test=final_test,
        isolated=final_isolated,
    output:
        potential="results/final/seeds/seed_{seed}.mtp",
        errors="results/final/seeds/seed_{seed}.json",
    log:
        "logs/final/seed_{seed}.log",
    benchmark:
        "logs/benchmarks/final/seed_{seed}.tsv",
    params:
        elements=",".join(config["elements"]),
        mtp=MTP_JSON,
        fit=FINAL_FIT_JSON,
        max_iter=AL.final_max_iter or SETTINGS.fit.max_iter,
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
        " --mtp {params.mtp:q} --fit {params.fit:q} --max-iter {params.max_iter} --seed {wildcards.seed}"
        " --potential {output.potential:q} 2>&1 | tee {log:q} | awk '/^progress: /'"


rule final_gather:
    input:
        potentials=expand("results/final/seeds/seed_{seed}.mtp", seed=SEEDS),
        errors=expand("results/final/seeds/seed_{seed}.json", seed=SEEDS),
        train=final_train,
        test=final_test,
    output:
        table=report("results/final/seeds.csv", caption="../report/final_seeds.rst",
                     category="Final potential"),
        best="results/final/potential.mtp",
        committee="results/final/committee.json",
        errors=report("results/final/errors.json", caption="../report/final_errors.rst",
                      category="Final potential"),
        parity=report("results/final/parity.png", caption="../report/final_parity.rst",
                      category="Final potential"),
        seed_errors="results/final/seed_errors.png",
    log:
        "logs/final/gather.log",
    benchmark:
        "logs/benchmarks/final/gather.tsv",
    params:
        elements=config["elements"],
        fit=config["fit"],
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/fit_gather.py"
