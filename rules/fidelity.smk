# Fidelity stages (config key fidelity_stages; Novikov et al. 2021, sec. 5.2-5.3). The first
# stage's loop runs in results/al/stage-<first>/ on stage 2's labels; each later stage starts
# in results/al/stage-<name>/ once the previous loop has ended:
#   [fidelity_sparsify] -> fidelity_collect -> fidelity_label (al_label's labelling)
#   -> fidelity_start (seed scan)
# and its loop (rules/active.smk, {alroot} = al/stage-<name>) goes on from start/. Its own
# isolated-atom energies: fidelity_isolated. Every file stays per stage: nothing is redone.
# Its input functions are in rules/common.smk.


rule fidelity_sparsify:
    input:
        unpack(fidelity_sparsify_inputs),
    output:
        kept="results/al/stage-{stage}/sparsify/kept.extxyz",
        summary="results/al/stage-{stage}/sparsify/summary.json",
    log:
        "logs/al/stage-{stage}/sparsify.log",
    benchmark:
        "logs/benchmarks/al/stage-{stage}/sparsify.tsv",
    params:
        elements=config["elements"],
        mtp=config["mtp"],
        fit=config["fit"],
        al=AL_PARAMS,
        threshold=lambda wildcards: STAGES[stage_index(wildcards)].sparsify_threshold,
    resources:
        runtime=60,
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/fidelity_sparsify.py"


rule fidelity_collect:
    input:
        unpack(fidelity_collect_inputs),
        relaxed_phases=RELAXED_PHASE_FILES,
    output:
        structures="results/al/stage-{stage}/relabel/structures.extxyz",
        summary="results/al/stage-{stage}/relabel/collected.json",
    log:
        "logs/al/stage-{stage}/relabel/collect.log",
    benchmark:
        "logs/benchmarks/al/stage-{stage}/relabel/collect.tsv",
    params:
        md_frames=lambda wildcards: STAGES[stage_index(wildcards)].md_frames,
        runs=[asdict(run) for run in AL_RUNS.values()],
        phases=PHASES_BUILT,
        elements=config["elements"],
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/fidelity_collect.py"


use rule al_label_part as fidelity_label_part with:
    input:
        selected="results/al/stage-{stage}/relabel/structures.extxyz",
    output:
        labelled="results/al/stage-{stage}/relabel/label/part_{part}.extxyz",
        failed="results/al/stage-{stage}/relabel/label/part_{part}.failed.extxyz",
    log:
        "logs/al/stage-{stage}/relabel/label_{part}.log",
    benchmark:
        "logs/benchmarks/al/stage-{stage}/relabel/label_{part}.tsv",


use rule al_label as fidelity_label with:
    input:
        labelled=al_label_part_files("results/al/stage-{stage}/relabel", "labelled"),
        failed=al_label_part_files("results/al/stage-{stage}/relabel", "failed"),
    output:
        labelled="results/al/stage-{stage}/relabel/labelled.extxyz",
        failed="results/al/stage-{stage}/relabel/failed.extxyz",
    log:
        "logs/al/stage-{stage}/relabel/label.log",
    benchmark:
        "logs/benchmarks/al/stage-{stage}/relabel/label.tsv",


use rule isolated_energies as fidelity_isolated with:
    output:
        energies="results/al/stage-{stage}/isolated.json",
    log:
        "logs/al/stage-{stage}/isolated.log",
    benchmark:
        "logs/benchmarks/al/stage-{stage}/isolated.tsv",


rule fidelity_start:
    input:
        potential=lambda wildcards: fidelity_previous(wildcards)["potential"],
        labelled="results/al/stage-{stage}/relabel/labelled.extxyz",
        failed="results/al/stage-{stage}/relabel/failed.extxyz",
        isolated="results/al/stage-{stage}/isolated.json",
    output:
        train="results/al/stage-{stage}/start/train.extxyz",
        test="results/al/stage-{stage}/start/test.extxyz",
        potential="results/al/stage-{stage}/start/potential.mtp",
        state="results/al/stage-{stage}/start/potential.als.npz",
        errors="results/al/stage-{stage}/start/errors.json",
        summary="results/al/stage-{stage}/relabel/summary.json",
    log:
        "logs/al/stage-{stage}/start.log",
    benchmark:
        "logs/benchmarks/al/stage-{stage}/start.tsv",
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
        "../scripts/fidelity_start.py"


rule fidelity_record:
    input:
        unpack(fidelity_record_inputs),
    output:
        json="results/al/fidelity.json",
        csv=report("results/al/fidelity.csv", caption="../report/fidelity.rst",
                   category="Active learning"),
    log:
        "logs/al/fidelity.log",
    params:
        stages=[s.name for s in STAGES],
        elements=config["elements"],
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/fidelity_record.py"
