"""Stage 4 (rule al_md): learning-on-the-fly MD of one scenario run in iteration {i}."""
from mtpflow.active import explore
from mtpflow.logs import tee_log
from mtpflow.settings import ActiveLearningSettings, MDRun, build

sm = snakemake  # noqa: F821
with tee_log(sm.log[0], terminal=False) as log:
    summary = explore(sm.input.potential, sm.input.state, build(MDRun, sm.params.run),
                      build(ActiveLearningSettings, sm.params.al), sm.params.phases,
                      sm.params.elements, int(sm.wildcards.i), sm.output.candidates,
                      sm.output.summary, sm.output.last,
                      previous_last=getattr(sm.input, "previous_last", None),
                      committee_file=getattr(sm.input, "committee", None),
                      train_file=sm.input.train, log=log)
    log(f"{summary['scenario']}: {summary['steps']}/{summary['steps_requested']} steps, "
        f"{summary['reason']}, max gamma {summary['max_gamma']:.4g}")
