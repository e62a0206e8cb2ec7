"""``EarlyStopPGD``: L-inf PGD for evaluation that attacks only what it can still break, and keeps what it broke.

Same iterates as ``torchattacks.PGD`` (random start in the eps-ball, sign steps on the cross entropy, projection
onto the eps-ball and [0,1]; the random start is drawn for the whole batch, so with the same RNG state the
iterates agree up to float rounding), evaluated differently:

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

import torch
import torch.nn.functional as F
from torchattacks.attack import Attack

from ..checks import check_eps, check_steps
from .pgd import linf_bounds


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
        pred_classes (int): judge success on the first ``pred_classes`` logits only while the loss uses all of
            them (a K+M head attacked through its full loss); None: all logits. (Default: None)

    Examples::
        >>> attack = EarlyStopPGD(model, eps=0.03, steps=40)
        >>> adv_images = attack(images, labels)
        >>> outcome = attack.perturb(images, labels)  # adv, pred, broken, clean_pred, iterate
    """

    def __init__(self, model, eps: float = 0.03, alpha: float | None = None, steps: int = 40,
                 random_start: bool = True, pred_classes: int | None = None) -> None:
        super().__init__("EarlyStopPGD", model)
        eps, steps = check_eps("EarlyStopPGD", eps), check_steps("EarlyStopPGD", steps)
        alpha = None if alpha is None else check_eps("EarlyStopPGD", alpha, "alpha")
        self.eps = eps
        self.steps = steps
        self.alpha = 2.5 * eps / steps if alpha is None else alpha
        self.random_start = random_start
        self.pred_classes = pred_classes
        self.supported_mode = ["default"]

    def forward(self, images: torch.Tensor, labels: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        return self._perturb(images, labels, generator).adv

    def perturb(self, images: torch.Tensor, labels: torch.Tensor,
                generator: torch.Generator | None = None) -> PGDOutcome:
        """Attack and return the per-sample :class:`PGDOutcome` (model mode and torchattacks normalisation are
        handled as in ``__call__``). ``generator`` draws the random start (default: torch's global RNG)."""
        given_training = self.model.training
        self._change_model_mode(given_training)
        try:
            if self._normalization_applied is True:
                self._set_normalization_applied(False)
                try:
                    out = self._perturb(self.inverse_normalize(images), labels, generator)
                finally:
                    self._set_normalization_applied(True)
                return out._replace(adv=self.normalize(out.adv))
            return self._perturb(images, labels, generator)
        finally:
            self._recover_model_mode(given_training)

    def _predict(self, logits: torch.Tensor) -> torch.Tensor:
        return (logits if self.pred_classes is None else logits[:, : self.pred_classes]).argmax(1)

    def _perturb(self, images: torch.Tensor, labels: torch.Tensor,
                 generator: torch.Generator | None) -> PGDOutcome:
        n = len(labels)
        adv = images.detach().to(self.device).clone()
        pred, clean_pred, iterate = (torch.full((n,), -1, dtype=torch.long, device=self.device) for _ in range(3))
        broken = torch.zeros(n, dtype=torch.bool, device=self.device)
        for done in self._stream([(images, labels, torch.arange(n, device=self.device), generator)], max(n, 1)):
            k, out = done.key, done.outcome
            adv[k], pred[k], broken[k], clean_pred[k], iterate[k] = out
        return PGDOutcome(adv, pred, broken, clean_pred, iterate)

    def perturb_stream(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                     torch.Generator | None]],
                       pool_size: int | None = None) -> Iterator[StreamOutcome]:
        """Attack a stream of ``(images, labels, key, generator)`` batches (inputs in [0,1]) through one pool
        of at most ``pool_size`` points (default: the first batch's size): finished points leave at once and
        the pool is refilled from the next batches. Yields the points as they finish, in no fixed order, with
        the caller's ``key`` per point. Each batch's random start is drawn from its ``generator`` for the whole
        batch, so every point gets the start :meth:`perturb` would give it."""
        if self._normalization_applied is True:
            raise ValueError("perturb_stream takes [0,1] images: attack a model with its normalisation inside")
        given_training = self.model.training
        self._change_model_mode(given_training)
        try:
            yield from self._stream(batches, pool_size)
        finally:
            self._recover_model_mode(given_training)

    def _start(self, images: torch.Tensor, labels: torch.Tensor, key: torch.Tensor,
               generator: torch.Generator | None) -> tuple[StreamOutcome | None, dict[str, torch.Tensor]]:
        """Clean predictions and random starts of one batch: the misclassified points (finished unattacked)
        and the pool entries of the others."""
        images, labels = images.detach().to(self.device), labels.detach().to(self.device)
        with torch.no_grad():
            clean_pred = self._predict(self.get_logits(images))
        noise = (torch.empty_like(images).uniform_(-self.eps, self.eps, generator=generator)
                 if self.random_start else None)
        wrong = clean_pred != labels
        finished = None
        if bool(wrong.any()):
            finished = StreamOutcome(key[wrong], images[wrong], labels[wrong], PGDOutcome(
                images[wrong], clean_pred[wrong], torch.zeros_like(labels[wrong], dtype=torch.bool),
                clean_pred[wrong], torch.full_like(labels[wrong], -1)))
        right = ~wrong
        x0 = images[right]
        lower, upper = linf_bounds(x0, self.eps)
        x = x0.clone() if noise is None else (x0 + noise[right]).clamp_(0.0, 1.0)
        entries = {"x": x, "x0": x0, "y": labels[right], "clean": clean_pred[right], "key": key[right],
                   "lower": lower, "upper": upper, "step": torch.zeros_like(labels[right])}
        return finished, entries

    def _stream(self, batches: Iterable, pool_size: int | None) -> Iterator[StreamOutcome]:
        source = iter(batches)
        pool: dict[str, torch.Tensor] | None = None
        waiting: dict[str, torch.Tensor] | None = None  # started points that do not fit into the pool yet
        exhausted = False
        while True:
            while not exhausted and (pool_size is None or _size(pool) + _size(waiting) < pool_size):
                try:
                    images, labels, key, generator = next(source)
                except StopIteration:
                    exhausted = True
                    break
                pool_size = pool_size or len(labels)
                finished, started = self._start(images, labels, key, generator)
                if finished is not None:
                    yield finished
                waiting = _cat(waiting, started)
            take = min(pool_size - _size(pool), _size(waiting)) if pool_size else 0
            if take > 0:
                pool = _cat(pool, {k: v[:take].clone() for k, v in waiting.items()})
                waiting = {k: v[take:] for k, v in waiting.items()}
            if not _size(pool):
                return
            pool = yield from self._step(pool)

    def _step(self, pool: dict[str, torch.Tensor]) -> Iterator[StreamOutcome]:
        """One forward (and, for points with steps left, backward) pass over the pool: yields the points that
        are fooled or at their last iterate and returns the pool of the others, one step further."""
        x, y, step = pool["x"], pool["y"], pool["step"]
        last = step == self.steps
        need_grad = not bool(last.all())
        with torch.set_grad_enabled(need_grad):
            logits = self.get_logits(x.requires_grad_(need_grad))
        pred = self._predict(logits.detach())
        fooled = pred != y
        done = fooled | last
        if bool(done.any()):
            xd = x.detach()[done]
            yield StreamOutcome(pool["key"][done], pool["x0"][done], y[done], PGDOutcome(
                xd, pred[done], fooled[done], pool["clean"][done], torch.where(fooled[done], step[done], -1)))
        if not need_grad:
            return {k: v[:0] for k, v in pool.items()}
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x)
        x = x.detach().add_(grad.sign_(), alpha=self.alpha)
        x = torch.minimum(x, pool["upper"], out=x)
        x = torch.maximum(x, pool["lower"], out=x)
        pool = {**pool, "x": x, "step": step + 1}
        return {k: v[~done] for k, v in pool.items()} if bool(done.any()) else pool


def _size(part: dict[str, torch.Tensor] | None) -> int:
    return 0 if part is None else len(part["y"])


def _cat(a: dict[str, torch.Tensor] | None, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return b if not _size(a) else {k: torch.cat([a[k], b[k]]) for k in a}
