"""Common corruptions: top-1 error per corruption x severity E_{c,s}, corruption errors CE_c and mCE.

One part per corruption and severity (``"gaussian_noise/3"``), each cached and resumed as a unit. The images
come from an ImageNet-C folder (``data_dir``) or are generated with imagecorruptions and cached
(:mod:`robustbench_labelaug.data.corruptions`). ``mce`` is the unnormalised mean over corruptions of the mean over
severities (the paper's); on ImageNet-C with a 1000-class model the AlexNet-normalised mCE of Hendrycks &
Dietterich is added (``mce_alexnet``, also as ``mce_normalized``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn
from torch.utils.data import Dataset

from ..checks import check_min_size
from ..data.corruptions import (
    MIN_CORRUPTION_SIZE,
    CorruptionGenerator,
    parse_part,
    part_name,
    select_corruptions,
)
from ..data.registry import CORRUPTION_FOLDERS, CorruptionFolder, get_dataset_spec
from ..errors import UserError
from ..results import keys
from ..scoring import corruption_errors, top1_error
from .base import EvalContext, EvalResult, Measured, PartArrays, classwise_block, once_per_run
from .clean import LabelEvaluator

MCE_LABEL = "mCE (unnormalised)"  # the mean corruption error, not divided by AlexNet's (the paper's mCE)


@dataclass
class CorruptionEvaluator(LabelEvaluator):
    """Top-1 error under the 15 common corruptions x 5 severities (or the ``corruptions`` / ``severities``
    selected) on the first ``n_examples`` images.

    ``data_dir``: an ImageNet-C folder (``<data_dir>/<corruption>/<severity>/<wnid>/<file>``, the clean data
    being the matching ImageNet folder); its images get the clean eval transform's size and interpolation with
    ``crop_pct`` (1.0: no extra crop, as ImageNet-C is evaluated; ``None``: exactly the clean transform).
    Without ``data_dir`` the corruptions are generated from the clean images (``seed``, ``min_size``: see
    :mod:`robustbench_labelaug.data.corruptions`) and cached in ``cache_dir`` (default: the user cache, shared
    by every model evaluated on the same data; not part of the settings' fingerprint)."""

    name = "corruptions"
    source_key = "corruptions_source"

    data_dir: str | Path | None = None
    corruptions: list[str] | str | None = None
    severities: list[int] | int | str | None = None
    seed: int = 0
    min_size: int = MIN_CORRUPTION_SIZE
    crop_pct: float | None = 1.0
    cache_dir: str | Path | None = field(default=None, metadata={"fingerprint": False})

    def validate(self) -> None:
        self.corruptions, self.severities = select_corruptions(self.corruptions, self.severities)
        self.min_size = check_min_size(self.name, self.min_size)
        if self.crop_pct is not None and not 0 < float(self.crop_pct) <= 1:
            raise UserError(f"corruptions: crop_pct={self.crop_pct} must be in (0, 1] (or null for the clean "
                            "transform)")

    def fingerprinted(self, settings: dict[str, Any]) -> dict[str, Any]:
        # what the images depend on: the ImageNet-C folder, or the generator's seed and size
        drop = ("seed", "min_size") if self.data_dir else ("data_dir", "crop_pct")
        settings = {k: v for k, v in settings.items() if k not in drop}
        if self.data_dir:
            settings["data_dir"] = str(self.data_dir)
        return settings

    def resolve(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser() if self.data_dir else None
        self._generator: CorruptionGenerator | None = None
        self._source = None  # a dataset's own corruptions (registry), else generated
        self._transform = None
        self._folder: CorruptionFolder | None = None  # the dataset's corruption layout read from data_dir
        self._progress = True

    @classmethod
    def headline(cls, result: Mapping[str, Any]) -> list[Measured]:
        """mCE, said to be unnormalised (the paper's mean of the CEs, not divided by AlexNet's), and the
        AlexNet-normalised one where the dataset has AlexNet's errors."""
        metrics, table = result.get("metrics", {}), result.get("details", {}).get("E") or {}
        cells = [v for row in table.values() for v in row if v is not None]
        return [Measured(keys.MCE, MCE_LABEL, metrics.get(keys.MCE)),
                Measured(keys.MCE_NORMALIZED, "mCE (AlexNet=100)", metrics.get(keys.MCE_NORMALIZED), show=False),
                Measured(keys.CORRUPTIONS_ERROR, "corruption err", sum(cells) / len(cells) if cells else None,
                         show=False)]

    # -- parts ------------------------------------------------------------------------------------------------
    def parts(self, dataset: Dataset) -> list[str]:
        return [part_name(c, s) for c in self.corruptions for s in self.severities]

    def part_dataset(self, dataset: Dataset, part: str) -> Dataset:
        corruption, severity = parse_part(part)
        indices = self.example_indices(dataset)
        if self.data_dir is not None:
            split_fn = (self._folder or CORRUPTION_FOLDERS.get("imagenet_c")).function("split")
            return split_fn(self.data_dir, corruption, severity, dataset, indices, self._transform)
        if self._source is not None:
            return self._source(dataset, indices, corruption, severity)
        if self._generator is None:
            self._generator = CorruptionGenerator(dataset, indices, seed=self.seed, min_size=self.min_size,
                                                  cache_dir=self.cache_dir, progress=self._progress)
        return self._generator.split(corruption, severity)

    # -- the run -----------------------------------------------------------------------------------------------
    def prepare(self, model: nn.Module, dataset: Dataset, ctx: EvalContext) -> None:
        super().prepare(model, dataset, ctx)
        # Refuse a bad ImageNet-C / CIFAR-C folder before predicting anything (nothing is written).
        spec = get_dataset_spec(ctx.dataset) if ctx.dataset is not None else None
        if self.data_dir is not None:
            # the dataset's layout (the registry's; ImageNet-C where the dataset is not named), checked by rank 0
            # only, once per run (the runner's ctx.checked), not again for every model
            self._folder = (spec.corruption_folder() if spec is not None else None) \
                or CORRUPTION_FOLDERS.get("imagenet_c")
            check = self._folder.function("check")
            indices = self.example_indices(dataset)
            key = (self._folder.name, str(self.data_dir), tuple(self.corruptions), tuple(self.severities),
                   id(dataset), tuple(indices))
            self.data_dir = once_per_run(ctx, key, check, self.data_dir, self.corruptions, self.severities,
                                         dataset, indices)
            transform = self._folder.function("transform")
            self._transform = None if transform is None else transform(dataset, self.crop_pct)
        elif spec is not None and spec.corruption_function() is not None:  # the dataset's own corruptions
            self._source = spec.corruption_function()
            self.settings["source"] = f"dataset '{ctx.dataset}' (its registered corruptions)"
        self._progress, self._generator = ctx.progress, None

    def finish(self) -> None:
        self._generator = None  # frees the clean images held for generation

    def score(self, arrays: dict[str, PartArrays], dataset: Dataset, ctx: EvalContext) -> EvalResult:
        table = {c: [top1_error(arrays[part_name(c, s)]["y_true"], arrays[part_name(c, s)]["y_pred"])
                     for s in self.severities] for c in self.corruptions}
        folder = self._folder if self.data_dir is not None else None
        normalized = folder is not None and folder.normalized_k == ctx.num_classes  # AlexNet-normalised mCE
        ce = corruption_errors(table, severities=self.severities, normalize="alexnet" if normalized else None)
        cells = [v for row in table.values() for v in row]
        metrics = {keys.MCE: ce["mce"], keys.MEAN_CORRUPTION_ERROR: float(np.mean(cells))}
        if normalized:
            metrics[keys.MCE_ALEXNET] = metrics[keys.MCE_NORMALIZED] = ce["mce_normalized"]
        y_true = np.concatenate([a["y_true"] for a in arrays.values()])
        y_pred = np.concatenate([a["y_pred"] for a in arrays.values()])
        details: dict[str, Any] = {
            "E": ce["E"], "CE": ce["CE"], "corruptions": ce["corruptions"], "severities": ce["severities"],
            "source": folder.name if folder is not None else "generated (imagecorruptions)",
        }
        if normalized:
            details.update(CE_normalized=ce["CE_normalized"], reference=ce["reference"])
        if self.data_dir is not None:
            details["data_dir"] = str(self.data_dir)
        else:
            details.update(seed=self.seed, min_size=self.min_size)
        return EvalResult(
            evaluator=self.name,
            metrics=metrics,
            classwise={"corruptions": classwise_block(y_true, y_pred, ctx.num_classes, ctx.seed)},
            details=details,
            num_examples=int(len(next(iter(arrays.values()))["index"])),
        )
