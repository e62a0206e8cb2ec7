"""``EarlyStopPGD``: L-inf PGD for evaluation that attacks only what it can still break, and keeps what it broke.

Same iterates as ``torchattacks.PGD`` (random start in the eps-ball, sign steps on the cross entropy, projection
onto the eps-ball and [0,1]; given a generator the random start is drawn for the whole batch, so with the same RNG
state the iterates agree up to float rounding; given :func:`example_starts` every example's start comes from
(seed, example index), so the result does not depend on batches, pool size or ranks), evaluated differently:

- points the model already misclassifies are not attacked;
- a point counts as broken as soon as ANY iterate (the random start, every step, the last one) fools the
  classifier, and that fooling iterate is returned, where ``torchattacks.PGD`` returns the last iterate only;
- broken points leave the batch at once, so the work shrinks as the attack succeeds;
- :meth:`EarlyStopPGD.perturb_stream` refills the freed places from the next batches (each point keeps its own
  step count), so the attacked batch stays full and the cost follows the number of forward/backward passes the
  points need, not the slowest point of each batch.

Hence it is at least as strong as ``torchattacks.PGD`` with the same settings and seed, and much cheaper on models
that break easily. Each point costs at most ``steps`` forward/backward passes plus two forward passes (clean and
last iterate)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torchattacks.attack import Attack

from ..checks import check_eps, check_steps
from ..results.rules import DEFAULT_EPS, default_alpha
from .frozen_model import batchnorm_as_affine, cudnn_autotune

Start = torch.Generator | torch.Tensor | None  # random starts of a batch: drawn from a generator, or given


def example_seed(seed: int, index: int) -> int:
    """A 63-bit seed for the random start of example ``index``, from (seed, index) only."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(2, dtype=np.uint64)[0] >> 1)


def example_starts(like: torch.Tensor, eps: float, seed: int, index: torch.Tensor) -> torch.Tensor:
    """Random-start perturbations uniform in [-eps, eps], shaped like ``like``: row i is drawn on the CPU from
    a generator seeded with ``example_seed(seed, index[i])``, exactly as ``torch.manual_seed(that seed)`` then
    ``torch.empty_like(like[i:i+1]).uniform_(-eps, eps)`` would draw it. A point's start thus depends on its
    example index only: not on the batch, the pool, the number of ranks or the device."""
    out = torch.empty(like.shape, dtype=like.dtype)
    for row, i in zip(out, index.tolist()):
        row.uniform_(-eps, eps, generator=torch.Generator().manual_seed(example_seed(seed, i)))
    return out.to(like.device)


class PGDOutcome(NamedTuple):
    """Per-sample result of :meth:`EarlyStopPGD.perturb`.

    adv: the fooling iterate where ``broken``, the last iterate where the attack failed, the clean image where
    the point was misclassified to begin with. pred: the predicted label at ``adv``. broken: a correctly
    classified point was fooled. clean_pred: the prediction on the clean image. iterate: which iterate fooled it
    (0 = the random start, s = after s steps), -1 where not broken."""

    adv: torch.Tensor
    pred: torch.Tensor
    broken: torch.Tensor
    clean_pred: torch.Tensor
    iterate: torch.Tensor


class StreamOutcome(NamedTuple):
    """Points that finished in :meth:`EarlyStopPGD.perturb_stream`: the caller's ``key`` of each point, its
    clean ``images``, its ``labels`` and its :class:`PGDOutcome`."""

    key: torch.Tensor
    images: torch.Tensor
    labels: torch.Tensor
    outcome: PGDOutcome


class EarlyStopPGD(Attack):
    r"""PGD (L-inf, untargeted) with early stopping and any-iterate success; see the module docstring.

    Arguments:
        model (nn.Module): model to attack (inputs in [0,1]).
        eps (float): maximum perturbation, in pixel units. (Default: 0.03)
        alpha (float): step size; None gives 2.5 * eps / steps. (Default: None)
        steps (int): number of steps. (Default: 40)
        random_start (bool): start from a uniformly random point of the eps-ball. (Default: True)
        num_classes (int): K: judge success on the first ``num_classes`` logits only while the loss uses all of
            them (a K+M head attacked through its full loss); None: all logits. (Default: None)

    Examples::
        >>> attack = EarlyStopPGD(model, eps=0.03, steps=40)
        >>> adv_images = attack(images, labels)
        >>> outcome = attack.perturb(images, labels)  # adv, pred, broken, clean_pred, iterate
    """

    def __init__(self, model, eps: float = DEFAULT_EPS, alpha: float | None = None, steps: int = 40,
                 random_start: bool = True, num_classes: int | None = None) -> None:
        super().__init__("EarlyStopPGD", model)
        eps, steps = check_eps("EarlyStopPGD", eps), check_steps("EarlyStopPGD", steps)
        alpha = None if alpha is None else check_eps("EarlyStopPGD", alpha, "alpha")
        self.eps = eps
        self.steps = steps
        self.alpha = default_alpha(eps, steps) if alpha is None else alpha
        self.random_start = random_start
        self.num_classes = num_classes
        self.supported_mode = ["default"]

    def forward(self, images: torch.Tensor, labels: torch.Tensor,
                start: Start = None) -> torch.Tensor:
        return self._perturb(images, labels, start).adv

    def perturb(self, images: torch.Tensor, labels: torch.Tensor,
                start: Start = None) -> PGDOutcome:
        """Attack and return the per-sample :class:`PGDOutcome` (model mode and torchattacks normalisation are
        handled as in ``__call__``). ``start``: a ``torch.Generator`` drawing the random start for the batch
        (None: torch's global RNG), or the start perturbation itself (e.g. :func:`example_starts`)."""
        given_training = self.model.training
        self._change_model_mode(given_training)
        try:
            if self._normalization_applied is True:
                self._set_normalization_applied(False)
                try:
                    out = self._perturb(self.inverse_normalize(images), labels, start)
                finally:
                    self._set_normalization_applied(True)
                return out._replace(adv=self.normalize(out.adv))
            return self._perturb(images, labels, start)
        finally:
            self._recover_model_mode(given_training)

    def _predict(self, logits: torch.Tensor) -> torch.Tensor:
        return (logits if self.num_classes is None else logits[:, : self.num_classes]).argmax(1)

    def _perturb(self, images: torch.Tensor, labels: torch.Tensor,
                 start: Start) -> PGDOutcome:
        n = len(labels)
        adv = images.detach().to(self.device).clone()
        pred, clean_pred, iterate = (torch.full((n,), -1, dtype=torch.long, device=self.device) for _ in range(3))
        broken = torch.zeros(n, dtype=torch.bool, device=self.device)
        with cudnn_autotune(False), batchnorm_as_affine(self.model):
            for done in self._stream([(images, labels, torch.arange(n, device=self.device), start)],
                                     max(n, 1)):
                k, out = done.key, done.outcome
                adv[k], pred[k], broken[k], clean_pred[k], iterate[k] = out
        return PGDOutcome(adv, pred, broken, clean_pred, iterate)

    def perturb_stream(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor, Start]],
                       pool_size: int | None = None) -> Iterator[StreamOutcome]:
        """Attack a stream of ``(images, labels, key, start)`` batches (inputs in [0,1]) through one pool of at
        most ``pool_size`` points (default: the first batch's size): finished points leave at once and the pool
        is refilled from the next batches. Yields the points as they finish, in no fixed order, with the caller's
        ``key`` per point.

        ``start`` gives the random starts: a tensor shaped like ``images`` is the start perturbation itself (e.g.
        :func:`example_starts`, drawn per example, so the result depends neither on the batches nor on the pool
        size); a ``torch.Generator`` (or None: torch's global RNG) draws it for the whole batch, as
        :meth:`perturb` does."""
        if self._normalization_applied is True:
            raise ValueError("perturb_stream takes [0,1] images: attack a model with its normalisation inside")
        given_training = self.model.training
        self._change_model_mode(given_training)
        try:
            # the pool's size changes as points break: no cuDNN re-autotuning per size; BatchNorm frozen
            with cudnn_autotune(False), batchnorm_as_affine(self.model):
                yield from self._stream(batches, pool_size)
        finally:
            self._recover_model_mode(given_training)

    def _start(self, images: torch.Tensor, labels: torch.Tensor, key: torch.Tensor,
               start: Start) -> tuple[StreamOutcome | None, dict[str, torch.Tensor]]:
        """Clean predictions and random starts of one batch: the misclassified points (finished unattacked)
        and the pool entries of the others."""
        images, labels = images.detach().to(self.device), labels.detach().to(self.device)
        with torch.no_grad():
            clean_pred = self._predict(self.get_logits(images))
        wrong = clean_pred != labels
        finished = None
        if bool(wrong.any()):
            finished = StreamOutcome(key[wrong], images[wrong], labels[wrong], PGDOutcome(
                images[wrong], clean_pred[wrong], torch.zeros_like(labels[wrong], dtype=torch.bool),
                clean_pred[wrong], torch.full_like(labels[wrong], -1)))
        right = (~wrong).nonzero().squeeze(1)
        x0 = images.index_select(0, right)
        if not self.random_start:
            x = x0.clone()
        elif isinstance(start, torch.Tensor):
            x = (x0 + start.to(x0).index_select(0, right)).clamp_(0.0, 1.0)
        else:  # one draw for the whole batch (torchattacks.PGD's start under the same RNG state)
            noise = torch.empty_like(images).uniform_(-self.eps, self.eps, generator=start)
            x = (x0 + noise.index_select(0, right)).clamp_(0.0, 1.0)
        y = labels.index_select(0, right)
        entries = {"x": x, "x0": x0, "y": y, "clean": clean_pred.index_select(0, right),
                   "key": key.index_select(0, right.to(key.device)), "step": torch.zeros_like(y)}
        return finished, entries

    def _stream(self, batches: Iterable, pool_size: int | None) -> Iterator[StreamOutcome]:
        source = iter(batches)
        pool: dict[str, torch.Tensor] | None = None
        waiting: list[dict[str, torch.Tensor]] = []  # started points that do not fit into the pool yet
        n_waiting = 0
        exhausted = False
        while True:
            while not exhausted and (pool_size is None or _size(pool) + n_waiting < pool_size):
                try:
                    images, labels, key, start = next(source)
                except StopIteration:
                    exhausted = True
                    break
                pool_size = pool_size or len(labels)
                finished, started = self._start(images, labels, key, start)
                if finished is not None:
                    yield finished
                if _size(started):
                    waiting.append(started)
                    n_waiting += _size(started)
            take = min(pool_size - _size(pool), n_waiting) if pool_size else 0
            if take > 0:  # refill: one concatenation per tensor, the rest stays waiting
                parts = [] if pool is None else [pool]
                got = 0
                while got < take:
                    head = waiting[0]
                    need = take - got
                    if _size(head) <= need:
                        parts.append(waiting.pop(0))
                        got += _size(head)
                    else:
                        parts.append({k: v[:need] for k, v in head.items()})
                        waiting[0] = {k: v[need:] for k, v in head.items()}
                        got = take
                n_waiting -= take
                pool = parts[0] if len(parts) == 1 else {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
            if not _size(pool):
                return
            pool = yield from self._step(pool)

    def _step(self, pool: dict[str, torch.Tensor]) -> Iterator[StreamOutcome]:
        """One forward (and, for points with steps left, backward) pass over the pool: yields the points that
        are fooled or at their last iterate and returns the pool of the others, one step further."""
        x, y, step = pool["x"], pool["y"], pool["step"]
        last = step == self.steps
        need_grad = not bool(last.all())
        if need_grad:
            x.requires_grad_(True)
        with torch.set_grad_enabled(need_grad):
            logits = self.get_logits(x)
        pred = self._predict(logits.detach())
        fooled = pred != y
        done = fooled | last
        n_done = int(done.sum())
        if n_done:
            idx = done.nonzero().squeeze(1)
            yield StreamOutcome(pool["key"].index_select(0, idx.to(pool["key"].device)),
                                pool["x0"].index_select(0, idx), y.index_select(0, idx), PGDOutcome(
                                    x.detach().index_select(0, idx), pred.index_select(0, idx),
                                    fooled.index_select(0, idx), pool["clean"].index_select(0, idx),
                                    torch.where(fooled, step, -1).index_select(0, idx)))
        if n_done == len(y):
            return {k: v[:0] for k, v in pool.items()}
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x)
        x0 = pool["x0"]
        x = x.detach().add_(grad.sign_(), alpha=self.alpha)
        # projection onto the eps-ball and [0,1], fused: min(max(x, x0 - eps, 0), x0 + eps, 1)
        x = torch.maximum(x, x0 - self.eps, out=x).clamp_(0.0, 1.0)
        x = torch.minimum(x, x0 + self.eps, out=x)
        step += 1
        if not n_done:
            return {**pool, "x": x}
        keep = (~done).nonzero().squeeze(1)
        pool = {**pool, "x": x}
        return {k: v.index_select(0, keep.to(v.device)) for k, v in pool.items()}


def _size(part: dict[str, torch.Tensor] | None) -> int:
    return 0 if part is None else len(part["y"])
