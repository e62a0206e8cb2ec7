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
    """robustbench.load_model on a zoo entry without its file: one UserError naming the file under the model_dir
    given, before RobustBench's loader runs (no download, no folder created), whichever way load_model is reached."""
    from robustbench_labelaug.compat import import_robustbench

    import_robustbench()
    import gdown
    import robustbench
    import robustbench.eval
    import robustbench.utils

    monkeypatch.setattr(gdown, "download", lambda *a, **k: pytest.fail("RobustBench tried to download"))
    model_dir = tmp_path / "my models"
    target = model_dir / "imagenet" / "Linf" / "resnet50_adv.pt"
    for load_model in (robustbench.load_model, robustbench.utils.load_model, robustbench.eval.load_model):
        for args, kwargs in ((("resnet50_adv",), {"model_dir": str(model_dir), "dataset": "imagenet",
                                                   "threat_model": "Linf"}),
                             (("resnet50_adv", model_dir, "imagenet", "Linf"), {})):
            with pytest.raises(UserError) as err:
                load_model(*args, **kwargs)
            message = str(err.value)
            assert f"no checkpoint at {target}:" in message
            assert f"--model-dir {model_dir}`" in message and "<model_dir>" not in message
    assert not model_dir.exists()  # refused before RobustBench made its folders
    # RobustBench's own models are not touched: an unknown name is still RobustBench's KeyError
    with pytest.raises(KeyError):
        robustbench.load_model("no_such_model", model_dir=str(model_dir), dataset="imagenet", threat_model="Linf")


def test_robustbench_load_model_still_has_the_shape_the_check_needs(tmp_path, monkeypatch):
    """Guard: the missing-checkpoint check wraps robustbench.utils.load_model by its public parameters. When
    RobustBench changes them this test fails and names what changed (the check would otherwise be skipped with
    a warning and a missing zoo checkpoint would reach RobustBench's Google-Drive downloader)."""
    from robustbench_labelaug.compat import import_robustbench
    from robustbench_labelaug.zoo import robustbench_registry as registry

    import_robustbench()
    import gdown
    import robustbench
    import robustbench.eval
    import robustbench.utils

    real = robustbench.utils.load_model.__wrapped__
    problem = registry.load_model_shape_problem(real)
    assert problem is None, problem
    for home in (robustbench, robustbench.utils, robustbench.eval):
        assert getattr(home.load_model, "__rbla_checked__", False), (
            f"{home.__name__}.load_model is not the checked wrapper: RobustBench binds load_model differently now; "
            "update RB_LOAD_MODEL_HOMES in robustbench_labelaug/zoo/robustbench_registry.py")
    # the folder layout the check assumes is RobustBench's: <model_dir>/<dataset>/<threat>/<name>.pt
    assert registry.zoo_checkpoint_path("m", "imagenet", "corruptions_3d", None, "x") == \
        Path("m") / "imagenet" / "corruptions" / "x.pt"
    # ... and RobustBench's own loader, unwrapped, looks for the file exactly there (it would download it there)
    asked = []
    monkeypatch.setattr(gdown, "download", lambda *a, **k: asked.append(Path(k.get("output"))))
    with pytest.raises(Exception):  # noqa: B017 - nothing was downloaded: its torch.load fails
        real("resnet50_adv", model_dir=str(tmp_path), dataset="imagenet", threat_model="Linf")
    assert asked == [registry.zoo_checkpoint_path(tmp_path, "imagenet", "Linf", None, "resnet50_adv")], (
        "robustbench.utils.load_model looks for zoo checkpoints elsewhere now: update zoo_checkpoint_path in "
        "robustbench_labelaug/zoo/robustbench_registry.py")
    # a changed signature is named
    assert "no parameter model_dir" in registry.load_model_shape_problem(lambda model_name, dataset, threat_model,
                                                                          norm=None: None)


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
