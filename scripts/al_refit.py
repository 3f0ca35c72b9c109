"""Stage 4 (rule al_refit): merged training set, refit potential, its active set and errors."""
import sys

from mtpflow.active import RefitFailed, refit
from mtpflow.logs import every_nth, tee_log
from mtpflow.settings import ActiveLearningSettings, FitSettings, MTPSettings, build

sm = snakemake  # noqa: F821
al, fit_settings = build(ActiveLearningSettings, sm.params.al), build(FitSettings, sm.params.fit)
with tee_log(sm.log[0], terminal=False,
             progress=every_nth("iter", (al.refit_max_iter or fit_settings.max_iter) // 4)) as log:
    try:
        errors = refit(sm.input.potential, sm.input.train, sm.input.labelled, sm.input.test,
                       sm.input.isolated, sm.params.elements, build(MTPSettings, sm.params.mtp),
                       fit_settings, al,
                       int(sm.wildcards.i), sm.output.train, sm.output.potential,
                       sm.output.state, sm.output.errors, valid_data=sm.params.valid_data,
                       log=log)
    except RefitFailed as err:
        print(f"{sm.log[0]}: {err}", flush=True)
        log(str(err))
        sys.exit(1)
    log(f"training set {errors['training_set_size']} (+{errors['labels_added']}), "
        f"refit: {errors['refit']}")
