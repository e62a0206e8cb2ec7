"""``AdvLabelAug``: adversarial training as a timm ``mixup_fn`` — ``hook(input, target) -> (input, soft_target)``.

Drop-in for timm's ``train.py`` (the line ``input, target = mixup_fn(input, target)``, which runs with
``--no-prefetcher``) together with ``timm.loss.SoftTargetCrossEntropy``. The adversarial batch comes from
torchattacks PGD (``attacks.PGD``: torchattacks' PGD with a fused projection) against the K-way view of the model
(its first K logits); epsilon is always in [0,1] pixel units,
also when the batch arrives normalised (pass ``mean``/``std``: the attack then runs in pixel space through
torchattacks' ``set_normalization_used`` and returns a normalised batch).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import torch
from torch import nn

from ..attacks.frozen_model import batchnorm_as_affine
from ..attacks.pgd import PGD
from ..errors import UserError
from ..models.classifier import KWayClassifier, unwrap_model
from ..results.rules import DEFAULT_DELTA, DEFAULT_EPS, check_training
from ..results.vocab import (  # noqa: F401  (re-exported)
    ADV_PLUS,
    ATTACK_MODES,
    DEFAULT_LA_P,
    LA_AUTHORS,
    LA_PROTOCOLS,
    MODES,
    STD,
    AttackMode,
)
from .attack_model import device_of, preserved_state, scaled_attack_model
from .class_params import check_step_scale, class_tensor
from .inputs import check_hook_batch
from .labels import label_aug_targets

RANGE_TOLERANCE = 1e-3


def pixels_out_of_range(x: torch.Tensor) -> tuple[float, float] | None:
    """(min, max) of ``x`` (pixel space) if it leaves [0,1] by more than rounding, else None."""
    lo, hi = torch.aminmax(x.detach())
    lo, hi = float(lo), float(hi)
    return (lo, hi) if lo < -RANGE_TOLERANCE or hi > 1.0 + RANGE_TOLERANCE else None


def check_pixel_range(x: torch.Tensor, what: str = "batch", normalised: bool = False) -> None:
    """Raise if ``x`` (pixel space) leaves [0,1] by more than rounding. ``normalised``: ``x`` was un-normalised
    with the mean/std given to the hook (then the likely cause is random erasing, whose noise patches are drawn
    in normalised space)."""
    lo, hi = torch.aminmax(x.detach())
    if not (math.isfinite(float(lo)) and math.isfinite(float(hi))):  # NaN compares false to any bound
        raise UserError(f"{what} holds NaN or infinite values: check the images and the loader's transforms "
                        "(every pixel must be a finite number in [0,1])")
    bad = pixels_out_of_range(x)
    if bad is None:
        return
    lo, hi = bad
    if normalised:
        raise UserError(f"{what} values un-normalised with the given mean/std lie in [{lo:.3f}, {hi:.3f}], outside "
                        "[0,1]: random erasing (timm --reprob) fills patches with noise outside the image range - "
                        "pass clip_input=True to attack the image and keep the erasing (rbla timm-train does), or "
                        "turn erasing off (--reprob 0); else mean/std are not the loader's")
    raise UserError(f"{what} values lie in [{lo:.3f}, {hi:.3f}], outside [0,1]: pass mean=/std= (the loader's "
                    "normalisation) if the batch is normalised, else scale images to [0,1] (random erasing: "
                    "clip_input=True)")


class AdvLabelAug:
    """PGD adversarial training (``adv``) and its label-augmented variant (``adv_plus``) as a batch hook.

    Args:
        model: the network being trained, with K+M outputs (K for ``std``/``adv``); may be DDP-wrapped.
        num_classes: K, the number of real classes.
        mode: ``std`` (clean, one-hot K), ``adv`` (PGD, one-hot K), ``adv_plus`` (PGD, targets
            ``Concat[(1-delta) onehot(y), delta onehot(z_j)]`` over K+M).
        protocol: which rows a batch trains (``results.vocab.LA_PROTOCOLS``; None: the mode's default,
            ``authors`` for adv_plus, ``adversarial`` for adv):

            - ``authors`` (the authors' label-augmentation code, f-amerehi/LA): per batch the clean images with
              target ``[y, 0]`` and the adversarial images with ``[(1-delta) y, delta z_j]``, each part drawn with
              probability ``la_p`` (two independent draws, clean first); the parts that fired are returned as one
              batch, clean rows first. A batch in which neither fired trains its clean images (the reference's
              fallback branch, which its flag limits to once per epoch; see docs/methods.md). With adv this is the
              control "Adv with the same clean/adversarial mix" (targets ``y`` throughout).
            - ``adversarial``: every row adversarial (``adv_prob`` and ``train_clean`` below apply); with adv_plus
              and M = 1 the extra label is then the same for every row: the control "dummy smoothing".
        la_p: the probability of each part under ``authors`` (the authors' ``distortion_p``, 0.7).
        eps, steps, alpha, random_start: torchattacks PGD, L-inf, pixel units; alpha defaults to
            ``results.rules.default_alpha`` (2.5*eps/steps).
        delta: label-augmentation weight of the transformation label.
        num_ops: M. Transformation j (0-based) is PGD at strength eps*(j+1)/M, so M=1 is the paper's single
            "adversarial" operation; with M>1 each sample draws its transformation uniformly.
        train_clean: (``adversarial`` protocol) also train the clean batch (target ``[y, 0]``); the returned batch
            is then twice as long.
        adv_prob: (``adversarial`` protocol) share of batches that are attacked; the others are trained clean
            (target ``[y, 0]``); default 1.0 (Madry-style: every batch adversarial).
        attack_mode: ``eval`` (default: BatchNorm running statistics and no dropout while attacking) or
            ``train`` (batch statistics and dropout while attacking; BN running stats then also move).
        mean, std: the normalisation the incoming batch already carries (timm's loaders); None means the batch
            is in [0,1] and the model normalises inside.
        autocast_dtype: run the attack's forward/backward passes under ``torch.autocast`` with this dtype. With
            ``torch.float16`` the attack loss is scaled (by a power of two per sample and step, chosen from that
            sample's logit gradient; per batch with ``attack_mode="train"``, where BatchNorm couples the samples)
            so that small gradients do not underflow to zero in the fp16 backward; the sign step is invariant to
            the scale, so every sample moves as in float32. bfloat16 has float32's range and needs no scaling.
        clip_input: accept batches whose pixels leave [0,1] (timm's random erasing, ``--reprob``, draws its noise
            patches in normalised space): the attack runs on the image clipped to [0,1] and its perturbation
            (within eps) is added to the batch as it came, so the erased patches keep timm's noise. Off: such a
            batch is refused with a message naming random erasing.

        class_eps: (K,) per-class radius, or None (every sample at ``eps``). Each sample is attacked at the radius
            of its true class (transformation j of Adv+ at ``class_eps[y]*(j+1)/M``); the step size stays ``alpha``
            (as in CFA's code). A class_eps whose entries all equal ``eps`` gives exactly the batches of
            ``class_eps=None``. Set between epochs with :meth:`set_class_params` (``robustbench_labelaug.fair``).
        class_weight: (K,) per-class loss weight, or None (all 1). A sample's soft target is multiplied by the
            weight of its true class: soft-target cross entropy ``-sum_k t_k log p_k`` is linear in ``t``, so
            the target ``w*t`` gives the loss ``w*CE(t)`` and timm's ``SoftTargetCrossEntropy`` (its batch mean)
            becomes ``mean_i w_{y_i} CE_i`` with no change to the training loop or timm's ``train.py``.
            (Targets then no longer sum to 1; anything reading them as probabilities must divide by the sum.)

    The model's train/eval mode and its parameters' ``requires_grad`` flags are the same after a call as
    before (parameters are frozen during the attack, which saves their gradient buffers).

    After each call ``adv_rows`` is the slice of the returned batch that holds adversarial examples (None when
    the batch went through clean), so a training loop can score them (per-class training robust accuracy)
    from the logits it computes anyway.
    """

    def __init__(self, model: nn.Module, num_classes: int, mode: str = ADV_PLUS, eps: float = DEFAULT_EPS,
                 steps: int = 10, alpha: float | None = None, delta: float = DEFAULT_DELTA, num_ops: int = 1,
                 train_clean: bool = False, adv_prob: float = 1.0, attack_mode: str = AttackMode.EVAL,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 random_start: bool = True, autocast_dtype: torch.dtype | None = None,
                 clip_input: bool = False, class_eps: torch.Tensor | Sequence[float] | None = None,
                 class_weight: torch.Tensor | Sequence[float] | None = None, protocol: str | None = None,
                 la_p: float = DEFAULT_LA_P) -> None:
        checked = check_training(mode=mode, eps=eps, steps=steps, alpha=alpha, delta=delta, num_ops=num_ops,
                                 adv_prob=adv_prob, attack_mode=attack_mode, protocol=protocol, la_p=la_p,
                                 train_clean=train_clean)
        if num_classes < 1:
            raise UserError(f"num_classes must be >= 1, got {num_classes}")
        if (mean is None) != (std is None):
            raise UserError("pass both mean and std (the batch's normalisation) or neither")
        self.model = unwrap_model(model)
        self.num_classes = num_classes
        self.mode = mode
        self.eps, self.steps, self.alpha = checked["eps"], checked["steps"], checked["alpha"]
        self.delta = checked["delta"]
        self.num_ops = checked["num_ops"] if mode == ADV_PLUS else 0
        self.train_clean = train_clean
        self.adv_prob = checked["adv_prob"]
        self.protocol = checked["protocol"]  # None in std mode
        self.la_p = checked["la_p"]
        self.attack_mode = attack_mode
        self.mean = tuple(mean) if mean is not None else None
        self.std = tuple(std) if std is not None else None
        self.random_start = random_start
        self.autocast_dtype = autocast_dtype
        self.clip_input = bool(clip_input)
        self.k_way = KWayClassifier(self.model, num_classes)
        self.attacks = [self._make_pgd(self.eps * (j + 1) / max(self.num_ops, 1)) for j in range(max(self.num_ops, 1))]
        self._alphas = [attack.alpha for attack in self.attacks]  # each operation's step as set
        self._width_checked = False
        self.class_eps: torch.Tensor | None = None
        self.class_weight: torch.Tensor | None = None
        self.adv_rows: slice | None = None
        self.step_scale: float | None = None
        self.set_class_params(class_eps=class_eps, class_weight=class_weight)

    # -- class-wise radius and loss weight (CFA, FRL: robustbench_labelaug.fair) ----------------------------------
    def set_class_params(self, class_eps: torch.Tensor | Sequence[float] | None = None,
                         class_weight: torch.Tensor | Sequence[float] | None = None,
                         step_scale: float | None = None) -> None:
        """Set the per-class radius and loss weight (each (K,) or None: uniform). Stored in float64 on the CPU, so
        a radius computed as ``factor * eps`` with factor 1 is exactly ``eps``. ``step_scale``: the attack's step
        is ``step_scale`` times the largest radius in the batch (FRL's remargin: 1/4, so the largest margin is
        reachable); None: ``alpha`` as set."""
        self.class_eps = class_tensor(class_eps, self.num_classes, "class_eps", positive=True)
        self.class_weight = class_tensor(class_weight, self.num_classes, "class_weight", positive=False)
        self.step_scale = check_step_scale(step_scale)

    def _sample_eps(self, y: torch.Tensor, op: int):
        """The radius of each sample of ``y`` for transformation ``op`` (None: the attack's own, uniform)."""
        if self.class_eps is None:
            return None
        eps = self.class_eps[y.cpu()] * ((op + 1) / max(self.num_ops, 1))
        return eps

    @property
    def num_outputs(self) -> int:
        """K+M: the width of the targets this hook returns and of the model's head."""
        return self.num_classes + self.num_ops

    def _make_pgd(self, eps: float) -> PGD:
        scale = eps / self.eps
        model = scaled_attack_model(self.k_way, self.autocast_dtype, per_sample=self.attack_mode == AttackMode.EVAL)
        attack = PGD(model, eps=eps, alpha=self.alpha * scale, steps=self.steps, random_start=self.random_start)
        if self.attack_mode == AttackMode.TRAIN:
            attack.set_model_training_mode(model_training=True, batchnorm_training=True, dropout_training=True)
        if self.mean is not None:
            attack.set_normalization_used(self.mean, self.std)
        return attack

    def targets(self, y: torch.Tensor, op: torch.Tensor | int | None) -> torch.Tensor:
        """Soft targets for class labels ``y`` and transformation ``op`` (None: clean), each row multiplied by
        its class's ``class_weight`` when one is set (see the class docstring: ``w*t`` gives ``w*CE``)."""
        if self.mode == ADV_PLUS:
            soft = label_aug_targets(y, self.num_classes, op, self.num_ops, self.delta)
        else:
            soft = label_aug_targets(y, self.num_classes, None, 0)
        if self.class_weight is not None:
            soft = soft * self.class_weight.to(device=soft.device, dtype=soft.dtype)[y][:, None]
        return soft

    def _pixels(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            return x
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        return x * std + mean

    def _normalised(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            return pixels
        mean = torch.tensor(self.mean, device=pixels.device, dtype=pixels.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=pixels.device, dtype=pixels.dtype).view(1, -1, 1, 1)
        return (pixels - mean) / std

    def _check_width(self, x: torch.Tensor) -> None:
        with torch.no_grad(), preserved_state(self.model, freeze=True):
            self.model.eval()
            width = self.model(x[:1]).shape[-1]
        if width != self.num_outputs:
            raise UserError(f"the model outputs {width} logits but mode '{self.mode}' with K={self.num_classes}, "
                            f"M={self.num_ops} needs K+M={self.num_outputs}: create the model with {self.num_outputs} "
                            f"outputs (timm train.py: --num-classes {self.num_outputs})")
        self._width_checked = True

    def attack(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Adversarial batch (same space as ``x``) and the transformation index of each sample."""
        if self.num_ops <= 1:
            ops = torch.zeros_like(y)
        else:
            ops = torch.randint(self.num_ops, y.shape, device=y.device)
        x_adv = torch.empty_like(x)
        autocast = (torch.autocast(x.device.type, dtype=self.autocast_dtype) if self.autocast_dtype is not None
                    else contextlib.nullcontext())
        frozen_bn = (batchnorm_as_affine(self.model, all_modules=True) if self.attack_mode == AttackMode.EVAL
                     else contextlib.nullcontext())
        with preserved_state(self.model, freeze=True), autocast, frozen_bn:
            for j, attack in enumerate(self.attacks):
                idx = None if len(self.attacks) == 1 else (ops == j).nonzero().flatten()
                if idx is not None and idx.numel() == 0:
                    continue
                attack.set_device(x.device)
                xs, ys = (x, y) if idx is None else (x[idx], y[idx])
                eps = self._sample_eps(ys, j)
                # FRL's remargin: a step that reaches the largest radius of the batch; else alpha as set
                attack.alpha = (self._alphas[j] if self.step_scale is None else
                                self.step_scale * (float(eps.max()) if eps is not None else attack.eps))
                adv = (attack(xs, ys) if eps is None else attack(xs, ys, eps=eps)).to(x.dtype)
                if idx is None:
                    x_adv = adv
                else:
                    x_adv[idx] = adv
        return x_adv.detach(), ops

    def __call__(self, input: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        input, target = check_hook_batch(input, target, self.num_classes, device_of(self.model))  # at the door
        pixels = self._pixels(input)
        clipped = None
        if self.clip_input:
            if pixels_out_of_range(pixels) is not None:
                clipped = self._normalised(pixels.clamp(0.0, 1.0))
        else:
            check_pixel_range(pixels, normalised=self.mean is not None)
        if not self._width_checked:  # every mode: a K+M head in std mode would not fit the K-wide targets
            self._check_width(input)
        self.adv_rows = None
        if self.mode == STD:
            return input, self.targets(target, None)
        if self.protocol == LA_AUTHORS:
            return self._authors_batch(input, target, clipped)
        if self.adv_prob < 1.0 and float(torch.rand(())) >= self.adv_prob:
            return input, self.targets(target, None)
        x_adv, soft = self._adversarial_part(input, target, clipped)
        n = input.shape[0]
        if self.train_clean:
            self.adv_rows = slice(n, 2 * n)
            return torch.cat([input, x_adv]), torch.cat([self.targets(target, None), soft])
        self.adv_rows = slice(0, n)
        return x_adv, soft

    def draw_parts(self) -> tuple[bool, bool]:
        """The ``authors`` protocol's two draws of one batch: (clean part, adversarial part), each with
        probability ``la_p``, clean first (the reference's order of operations); neither: the clean part alone."""
        clean = float(torch.rand(())) < self.la_p
        adversarial = float(torch.rand(())) < self.la_p
        return (clean or not adversarial), adversarial

    def _authors_batch(self, input: torch.Tensor, target: torch.Tensor, clipped: torch.Tensor | None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        clean, adversarial = self.draw_parts()
        if not adversarial:
            return input, self.targets(target, None)
        x_adv, soft = self._adversarial_part(input, target, clipped)
        n = input.shape[0]
        if not clean:
            self.adv_rows = slice(0, n)
            return x_adv, soft
        self.adv_rows = slice(n, 2 * n)
        return torch.cat([input, x_adv]), torch.cat([self.targets(target, None), soft])

    def _adversarial_part(self, input: torch.Tensor, target: torch.Tensor, clipped: torch.Tensor | None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """The adversarial batch (same space as ``input``) and its soft targets."""
        if clipped is None:
            x_adv, ops = self.attack(input, target)
        else:  # attack the clipped image, add its perturbation to the batch as it came (erased noise kept)
            x_adv, ops = self.attack(clipped, target)
            x_adv = input + (x_adv - clipped)
        return x_adv, self.targets(target, ops)

    def __repr__(self) -> str:
        batches = (f"protocol={self.protocol}, la_p={self.la_p}" if self.protocol == LA_AUTHORS else
                   f"protocol={self.protocol}, train_clean={self.train_clean}, adv_prob={self.adv_prob}")
        return (f"AdvLabelAug(mode={self.mode}, K={self.num_classes}, M={self.num_ops}, eps={self.eps}, "
                f"steps={self.steps}, alpha={self.alpha:.5f}, delta={self.delta}, {batches}, "
                f"attack_mode={self.attack_mode}, "
                f"normalised_input={self.mean is not None}, clip_input={self.clip_input}"
                + (", class_eps" if self.class_eps is not None else "")
                + (", class_weight" if self.class_weight is not None else "") + ")")
