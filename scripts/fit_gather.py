"""Stage 3 and 4 ends (rules fit_gather, final_gather): the seed table, the best potential,
the committee, the best seed's errors, parity plots and the spread over seeds."""
import shutil
from pathlib import Path

from mtpflow.logs import tee_log
from mtpflow.settings import FitSettings, build

from mtplib.analysis.errors import describe_metric
from mtplib.analysis.plots import parity_plots, seed_error_plot
from mtplib.labeling import read_frames
from mtplib.potential import MTPotential
from mtplib.training import gather

sm = snakemake  # noqa: F821
fit_settings = build(FitSettings, sm.params.fit)
with tee_log(sm.log[0]) as log:
    rows = gather(sm.input.potentials, fit_settings.metric, fit_settings.committee_size,
                  sm.output.table, sm.output.best, sm.output.committee, log=None)
    best = describe_metric(fit_settings.metric, rows[0][fit_settings.metric])
    log(f"best seed {rows[0]['seed']} ({best} on {sm.input.test}) of {len(rows)}; "
        f"committee in {sm.output.committee}")
    shutil.copyfile(Path(rows[0]["potential"]).with_suffix(".json"), sm.output.errors)
    pot = MTPotential.load(sm.output.best, species=list(sm.params.elements))
    train, test = read_frames(sm.input.train), read_frames(sm.input.test)
    sets = {"train": (train, pot.evaluate_many(train))}
    if test:
        sets["test"] = (test, pot.evaluate_many(test))
    parity_plots(sets, sm.output.parity)
    seed_error_plot(rows, fit_settings.metric, sm.output.seed_errors)
    log(f"{sm.output.best}: seed {rows[0]['seed']}, trained on {sm.input.train}")
