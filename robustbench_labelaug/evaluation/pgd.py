"""PGD robust error, class-wise, under one of two protocols.

``sound`` (default): :class:`~robustbench_labelaug.attacks.EarlyStopPGD` on the K-way classifier (the first K
logits) with the TRUE labels, eps in [0,1] pixel space, iterates clipped to [0,1]; a point counts as broken if
any iterate fools it. Same iterates as ``torchattacks.PGD`` with the same settings, never weaker.

``paper``: :class:`~robustbench_labelaug.attacks.PaperPGD`, the attack of the authors' public evaluation code:
PGD on the NORMALISED input of the network with all K+M logits, eps and step (default 0.01) in normalised units
(the effective pixel-space eps is eps * std per channel, reported as ``eps_pixel``), no clipping to the image
range, labels = the network's own clean prediction over the K+M logits, accuracy read from the first K logits
of the last iterate against the true labels. A model without our normalisation inside (not an
``ImageClassifier``) is attacked in its own input space (std = 1).

The random start of each example is drawn from a generator seeded with ``seed`` (default: the run's seed) and
the example's dataset index (:func:`~robustbench_labelaug.attacks.example_starts`, as the generated corruptions
are seeded per image), so the per-sample results do not depend on the batch size, the attack's pool size or the
number of torchrun ranks.

``restarts`` (sound protocol, default 1): the attack is run again from a fresh random start (restart r seeded by
:func:`restart_seed`) on the points no earlier start broke, as ``torchattacks.MultiAttack`` over copies of one
``PGD(random_start=True)`` does and AutoAttack's APGD does with ``n_restarts``; a point counts as broken if any
start breaks it. Restart 0 is the single-start run itself, so ``restarts: 1`` is the plain attack.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ..attacks import EarlyStopPGD, PaperPGD, example_starts
from ..attacks.gradient_probe import require_input_gradient
from ..checks import check_eps, check_positive_int, check_seed, check_steps
from ..errors import UserError
from ..models.classifier import ImageClassifier, InputNormalize, KWayClassifier, unwrap_model
from ..results import keys
from ..results.rules import DEFAULT_EPS, default_alpha
from ..results.vocab import PROTOCOLS, Protocol, ThreatModel
from ..scoring import top1_error
from .base import (
    EvalContext,
    EvalResult,
    Evaluator,
    Measured,
    PartArrays,
    attack_classwise_key,
    classwise_block,
    classwise_sd,
    to_numpy,
)

PAPER_ALPHA = 0.01  # the authors' step size (normalised units)


# -- the whole model behind the K-way view ---------------------------------------------------------------------


def full_model(model: nn.Module, ctx: EvalContext, evaluator: str) -> nn.Module:
    """The whole model with all K+M logits (what a K-way view wraps), in eval mode on ``ctx.device``."""
    inner = unwrap_model(model)
    while isinstance(inner, KWayClassifier):
        inner = unwrap_model(inner.model)
    if isinstance(inner, ImageClassifier) and inner.num_classes != ctx.num_classes:
        raise UserError(f"{evaluator}: the model has K={inner.num_classes} classes but the data has "
                        f"{ctx.num_classes}: evaluate it on its own dataset")
    return inner.to(ctx.device).eval()


def check_full_model(model: nn.Module, dataset: Dataset, ctx: EvalContext, evaluator: str) -> int:
    """The number of extra (transformation) logits M of ``model``; :class:`UserError` if it has fewer than K."""
    x = dataset[0][0].unsqueeze(0).to(ctx.device)
    with torch.no_grad():
        width = model(x).shape[-1]
    if width < ctx.num_classes:
        raise UserError(f"{evaluator}: the model outputs {width} logits but the data has K={ctx.num_classes} "
                        "classes: pass the right num_classes")
    return width - ctx.num_classes


def split_normalization(model: nn.Module) -> tuple[nn.Module, nn.Module, torch.Tensor, torch.Tensor]:
    """``(normalize, net, mean, std)``: an ``ImageClassifier``'s normalisation and inner network; for any other
    model the identity, the model itself, mean 0 and std 1."""
    if isinstance(model, ImageClassifier) and isinstance(model.normalize, InputNormalize):
        return model.normalize, model.net, model.normalize.mean, model.normalize.std
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    return nn.Identity(), model, torch.zeros(1, 1, 1, 1, device=device), torch.ones(1, 1, 1, 1, device=device)


def batch_generator(seed: int, first_index: int, device: torch.device) -> torch.Generator:
    """A generator for the random starts of a whole batch (comparisons with torchattacks' batch-wise starts;
    the evaluators draw per example, :func:`~robustbench_labelaug.attacks.example_starts`)."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + int(first_index))


def pgd_protocol(result: Mapping[str, Any]) -> str:
    """The protocol of a stored PGD result (``sound`` when it does not say)."""
    return str(result.get("protocol") or result.get("settings", {}).get("protocol") or Protocol.SOUND)


def _stack(out: dict[str, list[np.ndarray]]) -> PartArrays:
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}


def linf_and_range(adv: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample L-inf distance (pixel units) and whether ``adv`` lies inside [0,1]."""
    flat = adv.flatten(1)
    return (flat - images.flatten(1)).abs().amax(1), (flat.amin(1) >= 0) & (flat.amax(1) <= 1)


def predict_sound(model: nn.Module, batches: Iterator, *, eps: float, alpha: float | None, steps: int,
                  random_start: bool, seed: int, num_classes: int | None = None) -> PartArrays:
    """Per-sample arrays of :class:`EarlyStopPGD` on ``model`` with the true labels."""
    attack = EarlyStopPGD(model, eps=eps, alpha=alpha, steps=steps, random_start=random_start,
                          num_classes=num_classes)
    keys = ("index", "y_true", "y_clean", "y_pred", "broken", "iterate", "linf", "in_range")
    out: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    stream = ((x, y, idx, example_starts(x, eps, seed, idx) if random_start else None) for x, y, idx in batches)
    for key, images, labels, res in attack.perturb_stream(stream):
        linf, in_range = linf_and_range(res.adv, images)
        for name, t in zip(keys, to_numpy(key, labels, res.clean_pred, res.pred, res.broken, res.iterate, linf,
                                          in_range)):
            out[name].append(t)
    return _stack(out)


def restart_seed(seed: int, restart: int) -> int:
    """The seed of restart ``restart`` (0: ``seed`` itself, so one start is the plain attack)."""
    return int(seed) if restart == 0 else (int(seed) * 1_000_003 + 7_919 * int(restart)) % (2 ** 31 - 1)


def predict_sound_restarts(model: nn.Module, batches: Iterator, *, eps: float, alpha: float | None, steps: int,
                           seed: int, restarts: int, num_classes: int | None = None) -> PartArrays:
    """:func:`predict_sound` from ``restarts`` random starts per example (restart r seeded by
    :func:`restart_seed`): restart 0 attacks every example, restart r only those no earlier start broke that the
    model classifies correctly; a broken point keeps the arrays of the start that broke it (``restart``: which)."""
    parts: list[PartArrays] = []
    for x, y, idx in batches:
        best = predict_sound(model, iter([(x, y, idx)]), eps=eps, alpha=alpha, steps=steps, random_start=True,
                             seed=seed, num_classes=num_classes)
        best["restart"] = np.where(best["broken"].astype(bool), 0, -1)
        position = {int(i): k for k, i in enumerate(best["index"])}
        for r in range(1, restarts):
            open_ = ~best["broken"].astype(bool) & (best["y_clean"] == best["y_true"])
            if not open_.any():
                break
            keep = torch.isin(idx, torch.as_tensor(best["index"][open_], device=idx.device))
            more = predict_sound(model, iter([(x[keep], y[keep], idx[keep])]), eps=eps, alpha=alpha, steps=steps,
                                 random_start=True, seed=restart_seed(seed, r), num_classes=num_classes)
            for k in np.flatnonzero(more["broken"].astype(bool)):
                p = position[int(more["index"][k])]
                for name, values in more.items():
                    best[name][p] = values[k]
                best["restart"][p] = r
        parts.append(best)
    keys = parts[0].keys() if parts else ("index",)
    return {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0) for k in keys}


def predict_paper(model: nn.Module, batches: Iterator, num_classes: int, *, eps: float, alpha: float,
                  steps: int, random_start: bool, seed: int) -> PartArrays:
    """Per-sample arrays of :class:`PaperPGD` on the normalised input of ``model`` (all K+M logits)."""
    normalize, net, mean, std = split_normalization(model)
    attack = PaperPGD(net, eps=eps, alpha=alpha, steps=steps, random_start=random_start)
    keys = ("index", "y_true", "y_clean", "y_pred", "attack_label", "linf", "in_range")
    out: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for x, y, idx in batches:
        with torch.no_grad():
            xn = normalize(x)
            logits = net(xn)
        labels = logits.argmax(1)  # cleverhans' default: the model's own prediction over all K+M logits
        adv_n = attack(xn, labels, start=example_starts(xn, eps, seed, idx) if random_start else None)
        with torch.no_grad():
            pred = net(adv_n)[:, :num_classes].argmax(1)
        linf, in_range = linf_and_range(adv_n * std + mean, x)
        for key, t in zip(keys, to_numpy(idx, y, logits[:, :num_classes].argmax(1), pred, labels, linf,
                                         in_range)):
            out[key].append(t)
    return _stack(out)


@dataclass
class PGDEvaluator(Evaluator):
    """PGD robust error (%) and its class-wise breakdown (key ``pgd``) under the ``sound`` or ``paper``
    protocol (see the module docstring).

    Settings: ``protocol``; ``eps`` (pixel units for ``sound``, normalised units for ``paper``); ``steps``;
    ``alpha`` (None: 2.5 * eps / steps for ``sound``, 0.01 for ``paper``); ``random_start``; ``restarts``
    (``sound``: random starts per example, default 1; a point is broken if any breaks it); ``n_examples``
    (taken round-robin over the classes, see :func:`~robustbench_labelaug.evaluation.base.select_examples`);
    ``seed`` (None: the run's seed)."""

    name = "pgd"

    protocol: str = Protocol.SOUND
    eps: float = DEFAULT_EPS
    steps: int = 40
    alpha: float | None = None
    random_start: bool = True
    restarts: int = 1
    seed: int | None = None

    def validate(self) -> None:
        self.restarts = check_positive_int(self.name, "restarts", self.restarts)
        if self.restarts > 1 and self.protocol == Protocol.PAPER:
            raise UserError("pgd: restarts apply to the sound protocol (the authors' code runs one start): use "
                            "protocol: sound or restarts: 1")
        if self.restarts > 1 and not self.random_start:
            raise UserError(f"pgd: restarts {self.restarts} without random_start repeat the same attack: set "
                            "random_start: true or restarts: 1")
        if self.protocol not in PROTOCOLS:
            raise UserError(f"pgd: protocol '{self.protocol}' is not known: use 'sound' (K-way classifier, true "
                            "labels, pixel space) or 'paper' (the authors' evaluation code)")
        self.eps, self.steps = check_eps(self.name, self.eps), check_steps(self.name, self.steps)
        self.seed = check_seed(self.name, self.seed)
        if self.alpha is not None:
            self.alpha = check_eps(self.name, self.alpha, "alpha")
        if self.protocol == Protocol.PAPER and (self.alpha if self.alpha is not None else PAPER_ALPHA) > self.eps:
            raise UserError(f"pgd: the paper protocol needs alpha <= eps (cleverhans asserts it), got alpha="
                            f"{self.alpha if self.alpha is not None else PAPER_ALPHA} and eps={self.eps}: raise eps "
                            "or set alpha")

    def fingerprinted(self, settings: dict[str, Any]) -> dict[str, Any]:
        """One start (the default) is the attack as before restarts existed: its cached results stay valid."""
        return {k: v for k, v in settings.items() if not (k == "restarts" and v == 1)}

    def resolve(self) -> None:
        # the settings keep alpha as given (None: the protocol's default)
        if self.alpha is None:
            self.alpha = PAPER_ALPHA if self.protocol == Protocol.PAPER else default_alpha(self.eps, self.steps)
        self._eps_pixel: list[float] = [self.eps]

    def prepare(self, model: nn.Module, dataset: Dataset, ctx: EvalContext) -> None:
        super().prepare(model, dataset, ctx)
        if self.protocol == Protocol.PAPER:
            std = split_normalization(full_model(model, ctx, self.name))[3]
            self._eps_pixel = [float(self.eps * s) for s in std.flatten().tolist()]
        else:
            self._eps_pixel = [self.eps]

    @classmethod
    def headline(cls, result: Mapping[str, Any]) -> list[Measured]:
        settings, protocol = result.get("settings", {}), pgd_protocol(result)
        prefix = keys.pgd_key(protocol)
        steps = settings.get("steps")
        words = str(Protocol.SOUND) if protocol == Protocol.SOUND else f"{protocol} protocol"
        restarts = int(settings.get("restarts") or 1)
        starts = f", {restarts} restarts" if restarts > 1 else ""
        key = attack_classwise_key(result, "pgd")
        return [Measured(keys.error(prefix), f"PGD-{steps} err ({words}{starts})",
                         result["metrics"].get(keys.ROBUST_ERROR),
                         protocol=f"PGD-{steps if steps is not None else '?'} ({protocol}{starts})"),
                Measured(keys.steps(prefix), "PGD steps", steps, unit="", show=False),
                Measured(keys.count(prefix), "PGD n", result.get("num_examples"), unit="", show=False),
                Measured(keys.eps_pixel(prefix), "PGD eps (pixels)", settings.get("eps_pixel", settings.get("eps")),
                         unit="", show=False),
                Measured(keys.class_sd(prefix), f"class SD PGD-{steps} ({words})", classwise_sd(result, key),
                         show=protocol == Protocol.SOUND, stored=False),
                Measured(keys.worst_class(prefix), f"worst class PGD-{steps} ({words})",
                         classwise_sd(result, key, keys.WORST_ERROR), show=protocol == Protocol.SOUND, stored=False),
                Measured(keys.CLEAN_ERROR, "clean err", result["metrics"].get(keys.CLEAN_ERROR), fallback=True),
                Measured(keys.CLEAN_N, "clean n", result.get("num_examples"), unit="", show=False, fallback=True)]

    @classmethod
    def threat_eps(cls, result: Mapping[str, Any]) -> tuple[float | None, int]:
        eps = (result.get("settings") or {}).get("eps")
        sound = pgd_protocol(result) == Protocol.SOUND  # the paper protocol's eps is in normalised units
        return (float(eps), 1) if sound and eps is not None else (None, 99)

    @classmethod
    def classwise_refs(cls, result: Mapping[str, Any]) -> dict[str, str]:
        protocol = pgd_protocol(result)
        return {keys.pgd_key(protocol): attack_classwise_key(result, keys.PGD)}

    # -- the model the attack sees ---------------------------------------------------------------------------
    def classifier(self, model: nn.Module, ctx: EvalContext) -> nn.Module:
        if self.protocol == Protocol.PAPER:
            return full_model(model, ctx, self.name)
        return super().classifier(model, ctx)

    def check_model(self, model: nn.Module, dataset: Dataset, ctx: EvalContext) -> None:
        if self.protocol == Protocol.PAPER:
            check_full_model(model, dataset, ctx, self.name)
        else:
            super().check_model(model, dataset, ctx)
        require_input_gradient(model, dataset[0][0].unsqueeze(0).to(ctx.device), self.name)

    # -- predict / score ---------------------------------------------------------------------------------------
    def predict(self, model: nn.Module, batches: Iterator, part: str, ctx: EvalContext) -> PartArrays:
        seed = int(self.settings["seed"])
        if self.protocol == Protocol.PAPER:
            return predict_paper(model, batches, ctx.num_classes, eps=self.eps, alpha=self.alpha,
                                 steps=self.steps, random_start=self.random_start, seed=seed)
        if self.restarts > 1:
            return predict_sound_restarts(model, batches, eps=self.eps, alpha=self.alpha, steps=self.steps,
                                          seed=seed, restarts=self.restarts)
        return predict_sound(model, batches, eps=self.eps, alpha=self.alpha, steps=self.steps,
                             random_start=self.random_start, seed=seed)

    def protocol_settings(self) -> dict[str, Any]:
        """What the attack did, in words and numbers (stored in ``EvalResult.settings``)."""
        common = {"protocol": self.protocol, "attack": f"PGD-{self.steps}", "norm": ThreatModel.LINF, "eps": self.eps,
                  "alpha": self.alpha, "steps": self.steps, "random_start": self.random_start,
                  "restarts": self.restarts,
                  "eps_pixel": max(self._eps_pixel), "eps_pixel_per_channel": self._eps_pixel}
        if self.protocol == Protocol.PAPER:
            return {**common, "attack_class": "PaperPGD", "input_space": "normalised (eps and alpha in "
                    "normalised units; eps_pixel = eps * std)", "clip_to_image_range": False,
                    "labels": "model's own clean prediction over all K+M logits",
                    "loss": "cross entropy over all K+M logits", "prediction": "first K logits, last iterate",
                    "reference": "github.com/f-amerehi/LA LA.ipynb: cleverhans projected_gradient_descent("
                                 "net, x, eps, 0.01, 40, np.inf) on normalised inputs"}
        return {**common, "attack_class": "EarlyStopPGD", "input_space": "[0,1] pixels (normalisation inside "
                "the model)", "clip_to_image_range": True, "labels": "true labels",
                "loss": "cross entropy over the K class logits", "prediction": "first K logits; broken if any "
                "iterate fools the classifier"}

    def score(self, arrays: dict[str, PartArrays], dataset: Dataset, ctx: EvalContext) -> EvalResult:
        a = arrays["all"]
        y_true, y_pred, y_clean = a["y_true"], a["y_pred"], a["y_clean"]
        n = int(len(a["index"]))
        details: dict[str, Any] = {
            "max_linf_pixel": float(a["linf"].max()) if n else None,
            "fraction_outside_image_range": float(np.mean(~a["in_range"].astype(bool))) if n else None,
        }
        if self.protocol == Protocol.SOUND:
            attacked = int(np.sum(y_clean == y_true))
            broken = a["broken"].astype(bool)
            details.update(attacked=attacked, broken=int(broken.sum()),
                           attack_success_rate=100.0 * broken.sum() / attacked if attacked else None,
                           median_breaking_iterate=float(np.median(a["iterate"][broken])) if broken.any()
                           else None)
        else:
            labels = a["attack_label"]
            details.update(attack_label_is_true_label=float(np.mean(labels == y_true)) if n else None,
                           attack_label_is_transformation=float(np.mean(labels >= ctx.num_classes)) if n else None)
        return EvalResult(
            evaluator=self.name,
            metrics={keys.ROBUST_ERROR: top1_error(y_true, y_pred), keys.CLEAN_ERROR: top1_error(y_true, y_clean)},
            settings=self.protocol_settings(),
            classwise={"pgd": classwise_block(y_true, y_pred, ctx.num_classes, ctx.seed)},
            protocol=self.protocol,
            details=details,
            num_examples=n,
        )
