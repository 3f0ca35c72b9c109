"""Fidelity stage start (rule fidelity_start): the relabelled training and test sets, the seed
scan on them and the active set that the stage's loop starts from."""
from mtpflow.fidelity import relabel_refit
from mtpflow.logs import every_nth, tee_log
from mtpflow.settings import ActiveLearningSettings, FitSettings, MTPSettings, build

sm = snakemake  # noqa: F821
fit_settings = build(FitSettings, sm.params.fit)
with tee_log(sm.log[0], terminal=False,
             progress=every_nth("iter", fit_settings.max_iter // 4)) as log:
    relabel_refit(sm.input.potential, sm.input.labelled, sm.input.failed, sm.input.isolated,
                  sm.params.elements, build(MTPSettings, sm.params.mtp), fit_settings,
                  build(ActiveLearningSettings, sm.params.al), sm.wildcards.stage,
                  sm.output.train, sm.output.test, sm.output.potential, sm.output.state,
                  sm.output.errors, sm.output.summary, valid_data=sm.params.valid_data, log=log)
