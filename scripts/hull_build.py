"""Hull target (rule hull_build): formation energies, distance to the hull, on-hull flags
(hull.csv) and the plot, beside the reference's hull when it was computed."""
import json
import sys
from pathlib import Path

from mtpflow.logs import tee_log

from mtplib.analysis.hull import HullError, hull_of_relaxed, hull_plot, write_hull_csv
from mtplib.labeling import read_frames

sm = snakemake  # noqa: F821
elements = list(sm.params.elements)
with tee_log(sm.log[0]) as log:
    record = json.loads(Path(sm.input.record).read_text())
    try:
        hull = hull_of_relaxed(read_frames(sm.input.relaxed), elements, where=sm.input.relaxed)
    except HullError as err:
        state = "converged" if record["converged"] else \
            "did not converge within hull.max_iterations (raise it, or hull.gamma_break)"
        log(f"convex hull: {err}; the active learning of the relaxations {state}")
        sys.exit(1)
    reference = None
    if hasattr(sm.input, "reference"):
        reference = hull_of_relaxed(read_frames(sm.input.reference), elements,
                                    where=sm.input.reference)
    write_hull_csv(sm.output.csv, hull)
    hull_plot(sm.output.plot, hull, reference=reference, label="MTP",
              reference_label="reference")
    on = [hull.names[i] for i in hull.vertices]
    log(f"convex hull: {len(hull.names)} structures, {int(hull.on_hull.sum())} on the hull "
        f"(corners {on}); {record['labels']} labels after the {record['initial_labels']} "
        "stage-2 ones")
