"""Fidelity stage, optional first step (rule fidelity_sparsify, the stage's sparsify): the
previous stage's final training set reduced to what its final potential's active set needs,
and a seed scan on the full and on the kept set, both on the previous stage's test set."""
from mtpflow.fidelity import sparsify_previous
from mtpflow.logs import every_nth, tee_log
from mtpflow.settings import ActiveLearningSettings, FitSettings, MTPSettings, build

sm = snakemake  # noqa: F821
fit_settings = build(FitSettings, sm.params.fit)
iters = every_nth("iter", fit_settings.max_iter // 4)
with tee_log(sm.log[0], terminal=False,
             progress=lambda msg: iters(msg) or msg.startswith("stage ")) as log:
    sparsify_previous(sm.input.train, sm.input.potential, sm.input.test, sm.input.isolated,
                      sm.params.elements, build(MTPSettings, sm.params.mtp), fit_settings,
                      build(ActiveLearningSettings, sm.params.al), sm.params.threshold,
                      sm.wildcards.stage, sm.output.kept, sm.output.summary, log=log)
