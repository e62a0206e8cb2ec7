"""``rbla timm-train``: timm's own ``train.py``, unmodified, run with the training hook installed. One job per
module: :mod:`.cli` (the command line, no torch), :mod:`.launcher` (the run: timm's functions wrapped, the script
executed), :mod:`.script` (what is checked of the script and its flags before it runs), :mod:`.recipe` (where the
run departs from the paper's recipe), :mod:`.weights` (where the starting weights came from) and :mod:`.fair`
(the class-wise side inside timm's loop: training curves, the validation split, ``--fair`` policies, FAWA).
``python -m robustbench_labelaug.timm_train TRAIN_PY ...`` is ``rbla timm-train TRAIN_PY ...``."""

from __future__ import annotations

from .._lazy import lazy_exports

__getattr__ = lazy_exports(__name__, {
    **dict.fromkeys(("HELP", "add_arguments", "hook_settings", "main", "parse"), ".cli"),
    "run_timm_train": ".launcher",
    **dict.fromkeys(("TESTED_TIMM_VERSIONS", "check_script_structure"), ".script"),
})

__all__ = ["HELP", "TESTED_TIMM_VERSIONS", "add_arguments", "check_script_structure", "hook_settings", "main",
           "parse", "run_timm_train"]
