"""One model of a config through the evaluate loop (:mod:`.loop`): :func:`evaluate_model` (every evaluator's result,
reused where finished), the config's datasets built once per run (:class:`DatasetCache`) and the K check before
any work (:func:`check_num_classes`). :mod:`.run` (``rbla evaluate``) and :mod:`.tasks` (a Ray task's share) call
them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data import create_dataset
from ..errors import UserError
from ..store import EvaluationStore
from . import guards
from .config import EvalConfig
from .loop import evaluate_folder, plan_result
from .models import ResolvedModel, load_resolved_model


class DatasetCache:
    """The config's datasets, each built once per run, on first use (``cache(ds_id)``)."""

    def __init__(self, cfg: EvalConfig) -> None:
        self.cfg, self.built = cfg, {}

    def __call__(self, ds_id: str):
        if ds_id not in self.built:
            d = self.cfg.datasets[ds_id]
            ds = create_dataset(d.name, d.data_dir, d.resolved_split, input_size=d.input_size,
                                crop_pct=d.crop_pct, interpolation=d.interpolation, download=d.download,
                                bad_images=d.bad_images)
            self.built[ds_id] = d.dataset_spec.make_subset(d.subset, ds, ds_id) if d.subset else ds
        return self.built[ds_id]


def evaluate_model(cfg: EvalConfig, model: ResolvedModel, output: Path, datasets: DatasetCache, *, fast: bool,
                   device, progress: bool, checked: dict | None = None,
                   data_fps: dict[str, str | None] | None = None) -> dict[str, dict[str, Any]]:
    """Every evaluator's EvalResult dict for one model of the config, through the evaluate loop
    (:func:`.loop.evaluate_folder`: reused from ``<output>/<model>/results/`` where finished). ``checked``: the
    run's data checks already passed (an ImageNet-C folder is checked once per run, not per model)."""
    from .. import distributed as dist_utils  # deferred: torch, for the CLI's start time

    is_main = dist_utils.current().is_main
    store = EvaluationStore(output, writer=is_main, log=print if is_main else (lambda msg: None))
    data_fps = data_fps if data_fps is not None else guards.data_fingerprints(cfg)
    from ..evaluation import settings_for_model  # deferred: torch, for the CLI's start time

    planned = []
    for entry in cfg.evaluators:
        ds_id = entry.dataset or model.dataset_id
        # the id says what ran (--fast: pgd10_sound, not pgd40_sound); a stochastic model: AutoAttack's rand
        settings = settings_for_model(entry.name, entry.effective_settings(fast, cfg.fast), model.config.stochastic)
        planned.append(plan_result(entry.effective_id(fast, cfg.fast), entry.name, settings, cfg.datasets[ds_id],
                                   model.meta["num_classes"], cfg.runtime.seed, data_fps.get(ds_id)))

    def load():
        from ..modelcheck import check_finite_model, check_head_width  # deferred: torch (CLI start time)

        loaded = load_resolved_model(model, cfg.runtime.model_dir)
        check_finite_model(loaded, f"model '{model.key}'")
        check_head_width(loaded, datasets(model.dataset_id)[0][0].unsqueeze(0), int(model.meta["num_classes"]),
                         int(model.meta.get("num_ops") or 0), f"model '{model.key}'")
        if cfg.runtime.channels_last:
            import torch  # deferred: torch, for the CLI's start time

            loaded = loaded.to(memory_format=torch.channels_last)
        return loaded

    return evaluate_folder(store.folder(model.key), planned, fingerprint=model.fingerprint, meta=model.meta,
                           load=load, dataset=datasets, device=device, batch_size=cfg.runtime.batch_size,
                           num_workers=cfg.runtime.num_workers, progress=progress, decode=cfg.runtime.decode,
                           checked=checked)


def check_num_classes(cfg: EvalConfig, models: list[ResolvedModel]) -> None:
    """Every model's K equals the K of every dataset its evaluators use (before anything is evaluated)."""
    counted: dict[str, int] = {}
    for model in models:
        k = int(model.meta["num_classes"])
        for ds_id in dict.fromkeys(e.dataset or model.dataset_id for e in cfg.evaluators):
            d = cfg.datasets[ds_id]
            if ds_id not in counted:
                counted[ds_id] = d.dataset_spec.count_classes(d.data_dir)
            if counted[ds_id] != k:
                raise UserError(f"model '{model.key}' has K={k} classes but dataset '{ds_id}' ({d.name}) has "
                                f"{counted[ds_id]}: evaluate it on a dataset with its classes (set the model's "
                                "'dataset' in the config) or fix num_classes")


__all__ = ["DatasetCache", "check_num_classes", "evaluate_model"]
