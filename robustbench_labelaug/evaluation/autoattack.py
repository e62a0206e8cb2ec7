"""AutoAttack robust error, class-wise: pyautoattack 0.2.0 (the code RobustBench runs), L-inf, against the K-way
classifier with the true labels in [0,1] pixel space. With ``n_examples``, ``selection: robustbench`` (default)
takes RobustBench's examples, the first n of the dataset (its first n test points; on a dataset with
``subset: robustbench`` the first n of its ImageNet id list), so the number compares with RobustBench's;
``class_balanced`` takes them round-robin over the classes, as the other evaluators do.

AutoAttack needs its examples in memory: each rank collects its shard (under torchrun every rank attacks its own
share), runs ``AutoAttack(model, norm="Linf", eps, version, device, seed).run_standard_evaluation`` on it and
keeps the per-sample predictions on the adversarial examples it returns, which give the per-class errors."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyautoattack
import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from .. import distributed as dist_utils
from ..attacks import EarlyStopPGD, example_starts
from ..attacks.gradient_probe import require_input_gradient
from ..checks import check_eps, check_seed
from ..errors import UserError
from ..fileio import atomic_write_bytes
from ..packages import package_version
from ..results import keys
from ..results.model_info import autoattack_protocol
from ..results.rules import DEFAULT_EPS
from ..results.vocab import Protocol, ThreatModel
from ..scoring import top1_error
from ..store import part_path
from .base import (
    SELECTIONS,
    EvalContext,
    EvalResult,
    Evaluator,
    Measured,
    PartArrays,
    attack_classwise_key,
    classwise_block,
    to_numpy,
)
from .selection import FIRST_N

VERSIONS = ("standard", "plus", "rand")
ATTACKS = {"standard": ("apgd-ce", "apgd-t", "fab-t", "square"),  # pyautoattack 0.2.0's attacks per version
           "plus": ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"), "rand": ("apgd-ce", "apgd-dlr")}
UNION_PGD_STEPS = 40  # pgd_first: the sound PGD-40 of the pgd evaluator


def _collect(model: nn.Module, batches: Iterator, max_index: int | None):
    xs, ys, idxs, cleans = [], [], [], []
    for x, y, idx in batches:
        if max_index is not None:
            keep = idx < max_index
            x, y, idx = x[keep], y[keep], idx[keep]
        if len(idx) == 0:
            continue
        with torch.no_grad():
            cleans.append(model(x).argmax(1).cpu())
        xs.append(x.cpu())
        ys.append(y.cpu())
        idxs.append(idx.cpu())
    if not xs:
        return None
    return torch.cat(xs), torch.cat(ys), torch.cat(idxs), torch.cat(cleans)


def _pgd_first(model: nn.Module, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor, *, eps: float, steps: int,
               seed: int, batch_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sound EarlyStopPGD-``steps`` (per-example random starts, as the ``pgd`` evaluator draws them): per point
    whether it broke, the prediction at its fooling iterate and its L-inf distance."""
    attack = EarlyStopPGD(model, eps=eps, steps=steps)
    broken, pred, linf = torch.zeros(len(y), dtype=torch.bool), y.clone(), torch.zeros(len(y))
    pos = {int(i): p for p, i in enumerate(index.tolist())}
    stream = ((x[s:s + batch_size].to(device), y[s:s + batch_size].to(device), index[s:s + batch_size],
               example_starts(x[s:s + batch_size], eps, seed, index[s:s + batch_size]))
              for s in range(0, len(y), batch_size))
    for done in attack.perturb_stream(stream):
        rows = torch.tensor([pos[int(k)] for k in done.key.tolist()], dtype=torch.long)
        out = done.outcome
        broken[rows] = out.broken.cpu()
        pred[rows] = torch.where(out.broken, out.pred, pred[rows].to(out.pred.device)).cpu()
        linf[rows] = torch.where(out.broken.cpu(), (out.adv.cpu() - x[rows]).flatten(1).abs().amax(1), 0.0)
    return broken, pred, linf


def autoattack_key(eps: float, version: str, seed: int, pgd_steps: int) -> tuple:
    """What a :func:`predict_autoattack` result is, as a key of ``EvalContext.predictions``."""
    return ("autoattack", float(eps), version, int(seed), int(pgd_steps))


class _AttackState:
    """AutoAttack's progress on this rank's points, checkpointed atomically after every batch of every attack:
    ``robust`` (not broken yet), ``y_pred``/``linf`` (at the adversarial example where broken), ``broken_by``
    (-1: never; 0: PGD first; a + 1: the a-th attack of the version), the attack under way and its points."""

    def __init__(self, path: Path | None, key: str, n: int, clean_ok: torch.Tensor, y_clean: torch.Tensor) -> None:
        self.path, self.key = path, key
        self.robust, self.y_pred, self.linf = clean_ok.clone(), y_clean.clone(), torch.zeros(n)
        self.broken_by = torch.full((n,), -1, dtype=torch.long)
        self.attack, self.pool, self.next_batch = -1, torch.zeros(0, dtype=torch.long), 0
        if path is not None and path.exists():
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) != key:
                    raise UserError(f"{path} is an unfinished AutoAttack run on other points or with other "
                                    "settings: use another output folder, or delete that file to start over")
                for name in ("robust", "y_pred", "linf", "broken_by", "pool"):
                    setattr(self, name, torch.from_numpy(z[name]))
                self.attack, self.next_batch = int(z["attack"]), int(z["next_batch"])

    def save(self) -> None:
        if self.path is None:
            return
        buf = io.BytesIO()
        np.savez(buf, key=np.array(self.key), attack=self.attack, next_batch=self.next_batch,
                 **{k: getattr(self, k).numpy() for k in ("robust", "y_pred", "linf", "broken_by", "pool")})
        atomic_write_bytes(self.path, buf.getvalue())


def predict_autoattack(model: nn.Module, batches: Iterator, *, eps: float, version: str, seed: int,
                       batch_size: int, device: torch.device, max_index: int | None = None,
                       pgd_steps: int | None = None, state_path: Path | None = None,
                       progress: bool = False) -> PartArrays:
    """Per-sample ``index``, ``y_true``, ``y_clean``, ``y_pred`` (prediction on the adversarial example; the
    clean one where nothing broke the point), ``linf`` and ``broken_by`` for this rank's examples (only those
    with index < ``max_index`` when given).

    pyautoattack runs one attack at a time on the points still robust, in its own batches (the same batches,
    seeds and results as one ``run_standard_evaluation`` call), so a tqdm bar per attack shows progress and the
    state is checkpointed atomically to ``state_path`` after every batch: a killed run resumes from the batch
    under way. With ``pgd_steps`` the sound EarlyStopPGD runs first and AutoAttack only attacks the points it
    did not break (the union of both attacks)."""
    got = _collect(model, batches, max_index)
    if got is None:
        return {k: np.zeros(0, dtype=np.int64) for k in ("index", "y_true", "y_clean", "y_pred", "broken_by")} | {
            "linf": np.zeros(0, dtype=np.float32)}
    x, y, index, y_clean = got
    adversary = pyautoattack.AutoAttack(model, norm=ThreatModel.LINF, eps=eps, version=version, device=device, seed=seed)
    attacks = list(adversary.attacks_to_run)
    key = hashlib.sha256(json.dumps([eps, version, seed, batch_size, pgd_steps, attacks, index.tolist()])
                         .encode()).hexdigest()
    state = _AttackState(state_path, key, len(y), y_clean == y, y_clean)
    if state.attack < 0:  # not started: PGD first (optional)
        if pgd_steps:
            broken, pred, linf = _pgd_first(model, x, y, index, eps=eps, steps=pgd_steps, seed=seed,
                                            batch_size=batch_size, device=device)
            state.robust &= ~broken
            state.y_pred = torch.where(broken, pred, state.y_pred)
            state.linf = torch.where(broken, linf, state.linf)
            state.broken_by[broken] = 0
        state.attack, state.pool, state.next_batch = 0, state.robust.nonzero().squeeze(1), 0
        state.save()
    logging.getLogger("auto-attack").setLevel(logging.WARNING)  # its per-batch log lines: the bar shows them
    while state.attack < len(attacks):
        name = attacks[state.attack]
        n_batches = math.ceil(len(state.pool) / batch_size)
        bar = tqdm(total=n_batches, initial=state.next_batch, desc=f"autoattack {name}", unit="batch",
                   leave=False, disable=not progress)
        adversary.attacks_to_run = [name]
        for b in range(state.next_batch, n_batches):
            rows = state.pool[b * batch_size:(b + 1) * batch_size]
            x_adv, y_adv = adversary.run_standard_evaluation(x[rows], y[rows], batch_size=len(rows))
            fooled = (y_adv.cpu() != y[rows]) & state.robust[rows]
            hit = rows[fooled]
            state.robust[hit] = False
            state.y_pred[hit] = y_adv.cpu()[fooled]
            state.linf[hit] = (x_adv.cpu()[fooled] - x[hit]).flatten(1).abs().amax(1)
            state.broken_by[hit] = state.attack + 1
            state.next_batch = b + 1
            state.save()
            bar.update(1)
            bar.set_postfix(robust=f"{100.0 * float(state.robust.float().mean()):.1f}%")
        bar.close()
        state.attack, state.pool, state.next_batch = state.attack + 1, state.robust.nonzero().squeeze(1), 0
        state.save()
    index, y_true, y_clean, y_pred, linf, broken_by = to_numpy(index, y, y_clean, state.y_pred, state.linf,
                                                               state.broken_by)
    if state_path is not None:
        state_path.unlink(missing_ok=True)  # the caller caches the finished part
    return {"index": index, "y_true": y_true, "y_clean": y_clean, "y_pred": y_pred, "linf": linf,
            "broken_by": broken_by}


@dataclass
class AutoAttackEvaluator(Evaluator):
    """AutoAttack (pyautoattack, L-inf) robust error (%) with its class-wise breakdown (key ``autoattack``).

    Settings: ``eps`` (pixel units, default 0.03); ``version`` (``standard``, RobustBench's, or ``plus`` /
    ``rand``); ``n_examples`` (None: all); ``selection`` (``robustbench``, the default: the first n examples, as
    RobustBench, whose numbers this one is compared with; ``class_balanced``: round-robin over the classes);
    ``seed`` (AutoAttack's and the PGD starts', None: the run's seed), so that a run is deterministic;
    ``pgd_first`` (default False): run the sound PGD-40 first and AutoAttack only on the points it does not break,
    reported as "PGD-40 + AutoAttack": the union of both attacks, at least as strong as either and cheaper, but
    not RobustBench's protocol (keep it off where a number is compared with RobustBench's)."""

    name = "autoattack"
    long_running = True  # fixed FAB-T / Square cost
    stochastic_settings = {"version": "rand"}  # a declared stochastic model: AutoAttack's randomised version (EOT)

    eps: float = DEFAULT_EPS
    version: str = "standard"
    seed: int | None = None
    selection: str = "robustbench"
    pgd_first: bool = False

    def validate(self) -> None:
        if self.version not in VERSIONS:
            raise UserError(f"autoattack: version '{self.version}' is not known: use one of {', '.join(VERSIONS)} "
                            "('standard' is RobustBench's)")
        if self.selection not in SELECTIONS:
            raise UserError(f"autoattack: selection '{self.selection}' is not known: use one of "
                            f"{', '.join(SELECTIONS)}")
        self.eps, self.seed = check_eps(self.name, self.eps), check_seed(self.name, self.seed)

    @classmethod
    def headline(cls, result: Mapping[str, Any]) -> list[Measured]:
        version = result.get("settings", {}).get("version") or "standard"
        attack = result.get("settings", {}).get("attack") or f"AutoAttack ({version})"
        union = attack.split(" + ")[0] + " + " if " + " in attack else ""  # "PGD-40 + " for pgd_first
        n = result.get("num_examples")
        first_n = (result.get("settings") or {}).get("selection", cls.selection) == FIRST_N
        return [Measured(keys.AUTOATTACK_ERROR, f"{union}AA err (n={n})", result["metrics"].get(keys.ROBUST_ERROR),
                         protocol=attack if union else autoattack_protocol(version, first_n)),
                Measured(keys.AUTOATTACK_ATTACK, "AA attack", attack, unit="", show=False),
                Measured(keys.AUTOATTACK_N, "AA n", n, unit="", show=False),
                Measured(keys.AUTOATTACK_VERSION, "AA version", version, unit="", show=False),
                Measured(keys.CLEAN_ERROR, "clean err", result["metrics"].get(keys.CLEAN_ERROR), fallback=True),
                Measured(keys.CLEAN_N, "clean n", n, unit="", show=False, fallback=True)]

    @classmethod
    def threat_eps(cls, result: Mapping[str, Any]) -> tuple[float | None, int]:
        eps = (result.get("settings") or {}).get("eps")
        return (None, 99) if eps is None else (float(eps), 0)  # AutoAttack's eps defines the threat model

    @classmethod
    def classwise_refs(cls, result: Mapping[str, Any]) -> dict[str, str]:
        return {"autoattack": attack_classwise_key(result, "autoattack")}

    def check_model(self, model: nn.Module, dataset: Dataset, ctx: EvalContext) -> None:
        super().check_model(model, dataset, ctx)
        require_input_gradient(model, dataset[0][0].unsqueeze(0).to(ctx.device), self.name)

    def shared_keys(self, part: str) -> list[tuple]:
        """Its per-point results, offered to (and, where they cover its points, taken from) the other evaluators
        of the model that run the same AutoAttack: the masking checks (:mod:`.masking`)."""
        return [autoattack_key(self.eps, self.version, int(self.settings["seed"]),
                               UNION_PGD_STEPS if self.pgd_first else 0)]

    @property
    def attack_label(self) -> str:
        return (f"PGD-{UNION_PGD_STEPS} + " if self.pgd_first else "") + f"AutoAttack ({self.version})"

    def predict(self, model: nn.Module, batches: Iterator, part: str, ctx: EvalContext) -> PartArrays:
        info = dist_utils.current()
        state = None if ctx.out_dir is None else part_path(ctx.out_dir, self.name, part,
                                                              f".rank{info.rank}.unfinished.npz")
        return predict_autoattack(model, batches, eps=self.eps, version=self.version,
                                  seed=int(self.settings["seed"]), batch_size=ctx.batch_size, device=ctx.device,
                                  pgd_steps=UNION_PGD_STEPS if self.pgd_first else None, state_path=state,
                                  progress=ctx.progress and info.is_main)

    def score(self, arrays: dict[str, PartArrays], dataset: Dataset, ctx: EvalContext) -> EvalResult:
        a = arrays["all"]
        y_true, y_pred = a["y_true"], a["y_pred"]
        n = int(len(a["index"]))
        settings: dict[str, Any] = {"attack": self.attack_label, "norm": ThreatModel.LINF,
                                    "eps_pixel": self.eps,
                                    "library": f"pyautoattack {package_version('pyautoattack') or 'unknown'}",
                                    "labels": "true labels", "classifier": "K-way (first K logits)",
                                    "input_space": "[0,1] pixels (normalisation inside the model)"}
        if self.pgd_first:
            settings["pgd_first"] = (f"sound EarlyStopPGD-{UNION_PGD_STEPS} at the same eps and seed first; "
                                     "AutoAttack only on the points it does not break (union of both attacks; "
                                     "not RobustBench's standalone AutoAttack)")
        names = (["pgd"] if self.pgd_first else []) + list(ATTACKS[self.version])
        by = a["broken_by"] if "broken_by" in a else np.full(n, -1)
        broken = {name: int(np.sum(by == (i if self.pgd_first else i + 1))) for i, name in enumerate(names)}
        return EvalResult(
            evaluator=self.name,
            metrics={keys.ROBUST_ERROR: top1_error(y_true, y_pred), keys.CLEAN_ERROR: top1_error(y_true, a["y_clean"])},
            settings=settings,
            classwise={"autoattack": classwise_block(y_true, y_pred, ctx.num_classes, ctx.seed)},
            protocol=Protocol.SOUND,
            details={"max_linf_pixel": float(a["linf"].max()) if n else None, "broken_by_attack": broken},
            num_examples=n,
        )

