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
        phase=lookup(dpath="phases/{phase}", within=config),
        elements=lookup(dpath="elements", within=config),
    resources:
        runtime=10,
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/displace.py"
