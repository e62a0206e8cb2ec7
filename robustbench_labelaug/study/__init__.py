"""``rbla study -c study.yaml``: a study from one config (docs/study.md).

One config declares the dataset, the study eps and the curves' eps_max, the measures (evaluators), the arms (a zoo
entry's recipe plus knobs, one knob sweep per arm; seeds; an eps scan), the pre-specified endpoints (alpha, Holm),
the trade-off figure's measure and the power reports' effects of interest. The study trains every cell (arm x knob
value x eps x seed) through ``rbla train``'s code and evaluates it through the runner's evaluation (one store, the
same caches), as engine works (``--jobs``, ``--address``), into one resumable study folder, then writes
``study.json`` (cells, aggregates with intervals, verdicts, matched robustness, power), ``verdicts.md``,
``tradeoff.png`` and ``eps_scan.png``.

Modules: :mod:`.config` (the schema, loading, validation; packaged configs in ``study_configs/``), :mod:`.plan`
(points, trainings, cells), :mod:`.cells` (training arguments, the engine's training work, the cell records that
refuse a changed cell), :mod:`.analysis` (the statistics, through :mod:`robustbench_labelaug.stats`),
:mod:`.figures`, :mod:`.report` (verdicts.md), :mod:`.run` (:func:`run_study`), :mod:`.cli`.
"""

from .._lazy import lazy_exports

__getattr__ = lazy_exports(__name__, {
    **dict.fromkeys(("Study", "StudyConfig", "load_study_config", "packaged_study_configs"), ".config"),
    **dict.fromkeys(("Plan", "make_plan"), ".plan"),
    "analyse": ".analysis",
    **dict.fromkeys(("run_study", "plan_study"), ".run"),
})

__all__ = ["Plan", "Study", "StudyConfig", "analyse", "load_study_config", "make_plan", "packaged_study_configs",
           "plan_study", "run_study"]
