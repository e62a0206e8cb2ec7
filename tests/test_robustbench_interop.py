"""RobustBench interop: importing this package makes robustbench importable; errors of registered entries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from robustbench_labelaug.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def _fresh_python(script: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env,
                          cwd=ROOT)


@pytest.mark.slow
def test_users_two_lines_import_robustbench_in_a_fresh_interpreter():
    out = _fresh_python("import robustbench_labelaug\n"
                        "from robustbench.utils import load_model\n"
                        "import sys, autoattack, pyautoattack, robustbench.eval\n"
                        "print(load_model.__module__, autoattack is pyautoattack,\n"
                        "      sys.modules['autoattack.state'] is sys.modules['pyautoattack.state'],\n"
                        "      pyautoattack.__spec__.name, robustbench.eval.AutoAttack.__name__)\n")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["robustbench.utils", "True", "True", "pyautoattack", "LegacyAutoAttack"]


@pytest.mark.slow
def test_import_hooks_are_lazy_and_idempotent():
    out = _fresh_python("import sys\n"
                        "import robustbench_labelaug\n"
                        "from robustbench_labelaug.compat import install_import_hooks, _RobustbenchImportHooks\n"
                        "install_import_hooks(); install_import_hooks()\n"
                        "print('pyautoattack' in sys.modules, 'robustbench' in sys.modules,\n"
                        "      sum(isinstance(f, _RobustbenchImportHooks) for f in sys.meta_path))\n")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False", "1"]


@pytest.mark.slow
def test_without_the_hooks_robustbench_does_not_import():
    """The failure the hooks fix is real (else the tests above would prove nothing)."""
    out = _fresh_python("from robustbench.utils import load_model\n")
    assert out.returncode != 0 and "No module named 'autoattack'" in out.stderr


def test_missing_checkpoint_names_the_model_dir_given(tmp_path, monkeypatch):
    from robustbench_labelaug.compat import import_robustbench

    import_robustbench()
    import gdown
    from robustbench.utils import download_gdrive_new

    from robustbench_labelaug.zoo.entries import load_entries
    from robustbench_labelaug.zoo.robustbench_registry import MissingCheckpoint

    monkeypatch.setattr(gdown, "download", lambda *a, **k: pytest.fail("RobustBench tried to download"))
    entry = load_entries()["resnet50_adv"]
    target = tmp_path / "my models" / "imagenet" / "Linf" / "resnet50_adv.pt"
    with pytest.raises(UserError) as err:
        download_gdrive_new(MissingCheckpoint(entry), target)  # what robustbench.utils.load_model calls
    message = str(err.value)
    assert f"no checkpoint at {target}:" in message
    assert f"--model-dir {tmp_path / 'my models'}`" in message and "<model_dir>" not in message
    # formatted outside RobustBench's loader, the path is unknown and said so
    with pytest.raises(UserError, match="<model_dir>/imagenet/Linf/"):
        f"{MissingCheckpoint(entry)}"


def test_input_normalize_is_robustbench_image_normalizer_state_for_state():
    """InputNormalize keeps RobustBench's ImageNormalizer layout: checkpoints' normalize.* keys load both ways."""
    import torch

    from robustbench_labelaug.compat import import_robustbench
    from robustbench_labelaug.models.classifier import IMAGENET_MEAN, IMAGENET_STD, InputNormalize

    import_robustbench()
    from robustbench.model_zoo.architectures.utils_architectures import ImageNormalizer

    ours, theirs = InputNormalize(IMAGENET_MEAN, IMAGENET_STD), ImageNormalizer((0.0,) * 3, (1.0,) * 3)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(ours(x), theirs(x))
    back = InputNormalize((0.0,) * 3, (1.0,) * 3)
    back.load_state_dict(theirs.state_dict(), strict=True)
    assert torch.equal(back(x), ours(x))
