"""Config-driven evaluation, ``rbla evaluate -c CONFIG``: models through the configured evaluators into
RobustBench model_info JSONs.

A config (YAML, see ``eval_configs/``) has these top-level keys; unknown keys are errors::

    title: "digits: Std / Adv / Adv+"           # leaderboard title (optional)
    runtime: {batch_size: 64, device: auto, num_workers: 0, model_dir: ./models, output: ./output/eval,
              seed: 0, progress: true, plots: true}
    datasets:                                   # id -> create_dataset() arguments
      digits: {name: digits, split: test}
      imagenet: {name: imagenet, data_dir: "${IMAGENET_DIR}", split: val, input_size: 224, crop_pct: 0.875}
    models:                                     # zoo entries, or one's own checkpoints
      - zoo: digits_adv_plus                    # optional: name (output key), dataset (id)
      - {name: mine, checkpoint: output/train/x/last.pth.tar, dataset: digits}   # arch, K, M, training,
                                                # delta, eps default to what the checkpoint records
    evaluators:                                 # run in order, for every model
      - {name: clean}
      - {id: pgd40_paper, name: pgd, settings: {eps: 0.03, steps: 40, protocol: paper}, fast: {steps: 5}}
    fast: {n_examples: 64}                      # --fast: cap on every evaluator's n_examples

``${VAR}`` / ``$VAR`` in any string are expanded from the environment (an unset variable is an error naming it);
relative paths are relative to the working directory. Each evaluator entry gets a unique ``id`` (default: its
name) that keys its results; ``settings`` go to ``create_evaluator(name, **settings)``; with ``--fast`` the
entry's ``fast`` settings are laid over them and ``n_examples`` is capped by the top-level ``fast`` block, and the
default output folder gets a ``-fast`` suffix, so quick and full results never mix.

Output (``runtime.output`` or ``--output``): one evaluation folder per model (``<output>/<model>/``: its results,
finished parts and which checkpoint they belong to), ``model_info/<model>.json`` (RobustBench's ModelInfo + the
"labelaug" block), ``leaderboard.md`` and ``plots/``. The folder's layout and when a stored result is reused,
recomputed or refused are :mod:`robustbench_labelaug.store`'s: a re-run reuses finished results (nothing is
loaded) and resumes an interrupted one from its finished parts; results computed with other settings or
checkpoint are refused (use another output folder or delete the stale one) rather than mixed in, and results of
changed data are recomputed. Under torchrun the evaluators shard the examples; only rank 0 writes.

Modules: :mod:`.config` (schema, loading, validation), :mod:`.models` (zoo entries and checkpoints resolved and
loaded), :mod:`.loop` (the one evaluate loop, shared with ``benchmark()``), :mod:`.per_model` (:func:`evaluate_model`: one model),
:mod:`.run` (:func:`evaluate_config`), :mod:`.tasks` (Ray tasks), :mod:`.cli`.
"""

from __future__ import annotations

from .._lazy import lazy_exports

# each name loads its module on first use: the config schema (rbla evaluate --help, rbla study) without the loop
__getattr__ = lazy_exports(__name__, {
    **dict.fromkeys(("DatasetConfig", "EvalConfig", "EvaluatorConfig", "ModelConfig", "RuntimeConfig", "load_config"),
                    ".config"),
    "evaluate_model": ".per_model",
    "evaluate_config": ".run",
})

__all__ = ["DatasetConfig", "EvalConfig", "EvaluatorConfig", "ModelConfig", "RuntimeConfig", "evaluate_config",
           "evaluate_model", "load_config"]
