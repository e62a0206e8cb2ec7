"""A study's statistics: pure functions on per-example outcomes (numpy, scipy, pandas, statsmodels; no torch).
One job per module:

- :mod:`.outcomes`: the per-example correctness table ``(arm, seed, index, class, correct)``;
- :mod:`.bootstrap`: the two-level bootstrap (seeds, then examples within class) of the class mean error, class SD
  and worst-class error of each arm and of the difference of two arms, with intervals and p-values;
- :mod:`.mixed`: the model-based check of the bootstrap (a marginal logistic GEE, and the crossed mixed-effects
  logistic model);
- :mod:`.paired`: paired statistics of two models on the same examples (``rbla compare``: Newcombe's interval per
  class, exact McNemar, Holm, the stratified paired bootstrap);
- :mod:`.endpoints`: the verdict over pre-specified endpoints (Holm's adjustment, :func:`.paired.holm`);
- :mod:`.equivalence`: the equivalence bound of a non-significant difference;
- :mod:`.power`: power from the measured seed and example variance, and the seeds needed;
- :mod:`.matched`: a method's class-wise numbers at the reference's mean robust error, along its knob sweep;
- :mod:`.simulate`: synthetic outcomes with a known truth (tests, docs).

See docs/statistics.md for what each estimates, its assumptions and references.
"""

from __future__ import annotations

from .bootstrap import (
    ESTIMANDS,
    METHODS,
    STATISTICS,
    BootstrapDraws,
    arm_summary,
    bootstrap_draws,
    class_difference,
    difference,
    hierarchical_bootstrap,
    interval,
)
from .endpoints import endpoint_verdicts
from .equivalence import equivalence_bound, includes_zero
from .matched import interpolate_at, matched_robustness, matched_value
from .outcomes import (
    COLUMNS,
    ArmOutcomes,
    arm_outcomes,
    concat_tables,
    outcome_table,
    outcomes_from_predictions,
)
from .power import VarianceComponents, power, power_report, seeds_for_power, variance_components

__all__ = ["COLUMNS", "ESTIMANDS", "METHODS", "STATISTICS", "ArmOutcomes", "BootstrapDraws", "VarianceComponents",
           "arm_outcomes", "arm_summary", "bootstrap_draws", "class_difference", "concat_tables", "difference", "endpoint_verdicts",
           "equivalence_bound", "hierarchical_bootstrap", "includes_zero", "interpolate_at", "interval",
           "matched_robustness", "matched_value", "outcome_table", "outcomes_from_predictions", "power",
           "power_report", "seeds_for_power", "variance_components"]
