"""``python -m robustbench_labelaug.timm_train TRAIN_PY ...``: ``rbla timm-train TRAIN_PY ...``."""

import sys

from ..cli import main

sys.exit(main(["timm-train", *sys.argv[1:]]))
