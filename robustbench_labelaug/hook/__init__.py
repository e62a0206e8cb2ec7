"""The training hook: :class:`AdvLabelAug` (:mod:`.adv_label_aug`), adversarial training as a timm ``mixup_fn``
(PGD against the first K logits; label augmentation's K+M targets, :mod:`.labels`), its inputs checked once at the
door (:mod:`.inputs`), the class-wise parameters it and TRADES take (:mod:`.class_params`) and the model as the
attack sees it (:mod:`.attack_model`). Both training doors (``rbla train``, ``rbla timm-train``) install it; the
names below load their module (and torch) on first use."""

from __future__ import annotations

from .._lazy import lazy_exports

__getattr__ = lazy_exports(__name__, {"AdvLabelAug": ".adv_label_aug", "label_aug_targets": ".labels",
                                      "check_hook_batch": ".inputs"})

__all__ = ["AdvLabelAug", "check_hook_batch", "label_aug_targets"]
