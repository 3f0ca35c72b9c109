# Stage 5: validation of the final potential. The same MD (start, ensemble, temperature,
# seed; the reference may run a smaller box or fewer steps) is run with the MTP, graded
# against the final potential's active set, and with the reference calculator; RDFs, ADFs
# and coordination numbers are compared.
# The reference run needs no potential (validation_potential), so it starts as soon as a
# core is free, beside stages 1-4.


rule validate_state:
    input:
        potential="results/final/potential.mtp",
        train=final_train,
    output:
        state="results/final/potential.als.npz",
    log:
        "logs/validation/state.log",
    benchmark:
        "logs/benchmarks/validation/state.tsv",
    params:
        elements=config["elements"],
        mode=lookup(dpath="active_learning/selection_mode", within=config),
        weights=AL.selection_weights,
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/al_start.py"


rule validate_md:
    input:
        unpack(validation_potential),
        relaxed_phases=lambda wildcards: (RELAXED_PHASE_FILES
                                          if VALIDATION_RUNS[wildcards.vscenario]["phase"] else []),
    output:
        trajectory="results/validation/{vscenario}/{engine}.extxyz",
        record="results/validation/{vscenario}/{engine}.json",
    log:
        "logs/validation/{vscenario}/{engine}.log",
    benchmark:
        "logs/benchmarks/validation/{vscenario}/{engine}.tsv",
    wildcard_constraints:
        engine="mtp|reference",
    params:
        run=lambda wildcards: VALIDATION_RUNS[wildcards.vscenario],
        phases=PHASES_BUILT,
        elements=config["elements"],
        reference=FINAL_REFERENCE,
        gamma_select=lookup(dpath="active_learning/gamma_select", within=config),
        gamma_break=lookup(dpath="active_learning/gamma_break", within=config),
        md_engine=lookup(dpath="active_learning/md_engine", within=config),
    # the reference MD (an hour of xTB) needs no potential: it fills a core left idle by the
    # stages before it, never takes one that the relaxation, labels or fits could use; the
    # MTP runs go before the relabelling of their frames, so that the longest relabelling does
    # not start last
    priority: lambda wildcards: -1 if wildcards.engine == "reference" else 1
    resources:
        runtime=60,
    conda:
        FINAL_REFERENCE_ENV
    script:
        "../scripts/validate_md.py"


rule validate_compare:
    input:
        unpack(validation_reference),
        mtp="results/validation/{vscenario}/mtp.extxyz",
        mtp_record="results/validation/{vscenario}/mtp.json",
    output:
        similarity="results/validation/{vscenario}/similarity.json",
        rdf=report("results/validation/{vscenario}/rdf.png", caption="../report/rdf.rst",
                   category="Validation", subcategory="{vscenario}"),
        adf=report("results/validation/{vscenario}/adf.png", caption="../report/adf.rst",
                   category="Validation", subcategory="{vscenario}"),
    log:
        "logs/validation/{vscenario}/compare.log",
    benchmark:
        "logs/benchmarks/validation/{vscenario}/compare.tsv",
    params:
        rdf=lookup(dpath="validation/rdf", within=config),
        adf=lookup(dpath="validation/adf", within=config),
        coordination_cutoffs=lookup(dpath="validation/coordination_cutoffs", within=config),
        elements=config["elements"],
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/validate_compare.py"


rule validate_relabel:
    input:
        trajectory="results/validation/{vscenario}/mtp.extxyz",
        potential="results/final/potential.mtp",
    output:
        relabelled="results/validation/{vscenario}/relabelled.extxyz",
        own_md="results/validation/{vscenario}/own_md.json",
    log:
        "logs/validation/{vscenario}/relabel.log",
    benchmark:
        "logs/benchmarks/validation/{vscenario}/relabel.tsv",
    params:
        frames=lookup(dpath="validation/md_force_frames", within=config),
        reference=FINAL_REFERENCE,
        elements=config["elements"],
    resources:
        runtime=60,
    conda:
        FINAL_REFERENCE_ENV
    script:
        "../scripts/validate_relabel.py"


rule validate_reference_checks:
    input:
        relaxed_phases=RELAXED_PHASE_FILES,
    output:
        checks="results/validation/reference_checks.json",
    log:
        "logs/validation/reference_checks.log",
    benchmark:
        "logs/benchmarks/validation/reference_checks.tsv",
    params:
        reference=FINAL_REFERENCE,
        phases=PHASES_BUILT,
        elements=config["elements"],
        validation=config["validation"],
        gamma_only_min_height=FINAL_GAMMA_MIN_HEIGHT,
    # needs no potential: like the reference MD, it fills a core the stages before it leave idle
    priority: -1
    conda:
        FINAL_REFERENCE_ENV
    script:
        "../scripts/validate_reference_checks.py"


rule validate_summary:
    input:
        similarity=expand("results/validation/{vscenario}/similarity.json",
                          vscenario=VALIDATION_RUNS),
        own_md=(expand("results/validation/{vscenario}/own_md.json", vscenario=VALIDATION_RUNS)
                if SETTINGS.validation.md_force_frames else []),
        potential="results/final/potential.mtp",
        test=final_test,
        stage_test=lambda wildcards: final_stage_test(wildcards) if FINAL_SPLIT else [],
        relaxed_phases=RELAXED_PHASE_FILES,
        reference_checks=("results/validation/reference_checks.json"
                          if SETTINGS.validation.energy_volume or SETTINGS.validation.elastic
                          else []),
    output:
        summary=report("results/validation/summary.json", caption="../report/validation.rst",
                       category="Validation"),
        parity=report("results/validation/parity.png", caption="../report/validation_parity.rst",
                      category="Validation"),
        energy_volume=report("results/validation/energy_volume.png",
                             caption="../report/energy_volume.rst", category="Validation"),
        verdicts=report("results/validation/verdicts.txt", caption="../report/verdicts.rst",
                        category="Validation"),
    log:
        "logs/validation/summary.log",
    benchmark:
        "logs/benchmarks/validation/summary.tsv",
    params:
        names=list(VALIDATION_RUNS),
        runs=VALIDATION_RUNS,
        phases=PHASES_BUILT,
        elements=config["elements"],
        validation=config["validation"],
        gamma_only_min_height=FINAL_GAMMA_MIN_HEIGHT,
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/validate_summary.py"
