"""Stage 4 (rule al_select): merge the candidates of every scenario and select by maxvol."""
from mtpflow.active import select
from mtpflow.logs import tee_log
from mtpflow.settings import ActiveLearningSettings, build

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    select(sm.input.potential, sm.input.state, list(sm.input.candidates),
           getattr(sm.input, "failed", None), build(ActiveLearningSettings, sm.params.al),
           sm.params.elements, int(sm.wildcards.i), sm.output.candidates, sm.output.selected,
           sm.output.summary, train_file=sm.input.train, log=log)
