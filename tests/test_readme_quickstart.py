"""The README's own-model quick start runs as written (load_clean_dataset -> a plain Adv+ loop -> benchmark ->
to_model_info), in a fresh interpreter, in an empty folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = re.compile(r"range\(3\)")


def readme_own_model_block() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("**Train and evaluate your own model**")
    m = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert m, "the README's own-model quick start has no python block"
    return m.group(1)


def test_the_quick_start_uses_robustbench_shaped_data_in_a_plain_loop():
    code = readme_own_model_block()
    assert "load_clean_dataset(" in code and "for i in torch.randperm(len(x))" in code
    assert "benchmark(" in code and "to_model_info(" in code
    assert len(EPOCHS.findall(code)) == 1


@pytest.mark.slow
def test_readme_own_model_quick_start_runs(tmp_path: Path):
    """The block as written, but one epoch instead of three (the only change: the test's time)."""
    code = EPOCHS.sub("range(1)", readme_own_model_block())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "'clean_error'" in proc.stdout and "'pgd_error'" in proc.stdout
    info = json.loads((tmp_path / "mine.json").read_text())
    measured = info["labelaug"]["measured"]
    assert measured["clean_n"] == 120 and 0.0 <= measured["pgd_error"] <= 100.0
    # nothing else written beside it but the evaluation folder rbla compare reads (store.evaluation_beside)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.evaluation", "mine.json"]
    assert list((tmp_path / "mine.evaluation").glob("*/model.json"))  # <stem>.evaluation/<key>/model.json
