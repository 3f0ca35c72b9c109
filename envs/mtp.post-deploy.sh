#!/usr/bin/env bash
# Run by Snakemake once, right after it creates a conda env (--sdm conda; xtb.post-deploy.sh
# and dft.post-deploy.sh link here): installs the checkout's mtplib into the env. Snakemake
# runs it from its working directory, which is the repository root when snakemake is started
# there (as the README does).
set -euo pipefail
if grep -q '^name = "mtplib"' pyproject.toml 2>/dev/null; then
    python -m pip install --no-deps --no-build-isolation -e .
else
    echo "post-deploy: no mtplib checkout in $PWD; run snakemake from the repository root" >&2
    exit 1
fi
