"""``rbla timm-train``: an unmodified train.py runs with the hook installed.

Offline, the launcher runs ``tests/timm_train_shaped.py`` (this project's script with train.py's import and hook
structure) for one epoch on a generated ImageNet-layout folder, with and without the prefetcher. When
``RBLA_TIMM_TRAIN_PY`` names a real timm ``train.py`` (e.g. v1.0.9's, ``git show v1.0.9:train.py``), the same
checks run on it too."""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import timm.data
import timm.models
import timm.utils
import torch

from robustbench_labelaug import AdvLabelAug
from robustbench_labelaug.cli import main as cli_main
from robustbench_labelaug.timm_train import check_script_structure

from .fixtures_imagenet import make_parity_layout, make_timm_layout

SHAPED = Path(__file__).with_name("timm_train_shaped.py")
REAL = os.environ.get("RBLA_TIMM_TRAIN_PY")
K, M, EPS = 5, 1, 0.05
MEAN = STD = 0.5  # resnet8_tiny's data config
SCRIPTS = [pytest.param(SHAPED, ["-j", "0"], id="shaped"),
           pytest.param(REAL, ["-j", "1"], id="real", marks=pytest.mark.skipif(
               not REAL, reason="set RBLA_TIMM_TRAIN_PY to a timm train.py to run it"))]


@pytest.fixture(autouse=True)
def root_log_handlers():
    """timm's train.py adds a root log handler on the test's captured stderr each run: remove it afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """5 classes, 8 train and 4 validation images each (timm's default split names: train, validation)."""
    return make_timm_layout(tmp_path_factory.mktemp("imagenet_layout"), K)


@pytest.fixture()
def spies(monkeypatch):
    """Record every hook call (its input and output) and the width of every output timm's accuracy() scores."""
    seen = {"hook": [], "scored_width": []}
    real_call = AdvLabelAug.__call__

    def hook_call(self, input, target):
        out, soft = real_call(self, input, target)
        seen["hook"].append((input.detach().clone(), target.clone(), out.detach().clone(), soft.clone()))
        return out, soft

    real_accuracy = timm.utils.accuracy

    def accuracy(output, target, topk=(1,)):
        seen["scored_width"].append(output.shape[1])
        return real_accuracy(output, target, topk=topk)

    monkeypatch.setattr(AdvLabelAug, "__call__", hook_call)
    monkeypatch.setattr(timm.utils, "accuracy", accuracy)
    return seen


def _run(script, data_root, out, *extra):
    return cli_main(["timm-train", str(script), "--data-dir", str(data_root), "--model", "resnet8_tiny",
                     "--num-classes", str(K), "--input-size", "3", "32", "32", "-b", "16", "--epochs", "1",
                     "--warmup-epochs", "0", "--device", "cpu", "--output", str(out), "--experiment", "run",
                     "--adv-mode", "adv_plus", "--adv-eps", str(EPS), "--adv-steps", "2", *extra])


@pytest.mark.slow
@pytest.mark.parametrize("prefetch", [[], ["--no-prefetcher", "--reprob", "0.5"]],
                         ids=["prefetcher", "no-prefetcher+reprob"])
@pytest.mark.parametrize("script, workers", SCRIPTS)
def test_launcher_trains_one_epoch_with_the_hook(script, workers, prefetch, data_root, tmp_path, spies):
    create_model, argv = timm.models.create_model, list(sys.argv)
    # --la-p 1: the authors' protocol with both parts in every batch (clean rows, then adversarial rows)
    assert _run(script, data_root, tmp_path, *workers, *prefetch, "--val-split", "validation", "--la-p", "1") == 0

    # the hook saw every training batch (40 images, batch 16): normalised input, K+M soft targets, eps in pixels
    assert len(spies["hook"]) == 40 // 16  # timm drops the last partial training batch
    attacked = 0
    for input, target, out, soft in spies["hook"]:  # the authors' protocol (adv_plus's default): clean rows first
        n = input.shape[0]
        assert target.dim() == 1 and soft.shape == (out.shape[0], K + M) and out.shape[0] == 2 * n
        assert torch.allclose(soft.sum(1), torch.ones(len(soft)))
        adv = soft[:, K] > 0  # delta on the transformation label: the adversarial rows; clean rows carry 0
        assert torch.allclose(soft[adv, K], torch.full((int(adv.sum()),), 0.03))
        assert torch.equal(out[~adv], input[: int((~adv).sum())])  # clean rows are the batch as it came
        assert input.min() < 0  # the batch arrives normalised
        if adv.any():
            attacked += 1
            delta = (out[adv] - input) * STD
            assert 0 < delta.abs().max() <= EPS + 1e-5  # attacked, within eps in pixel units, erased pixels too
    assert attacked == len(spies["hook"])
    if "--reprob" in prefetch:  # random erasing left noise outside the image range, and the hook kept it
        assert any(((inp * STD + MEAN) < -0.01).any() for inp, *_ in spies["hook"])
        assert any(((out * STD + MEAN) < -0.01).any() for _, _, out, _ in spies["hook"])

    # validation scored the first K logits only
    assert spies["scored_width"] and set(spies["scored_width"]) == {K}

    # the trained model has a K+M head; timm wrote its summary with the validation metrics
    ckpt = torch.load(tmp_path / "run" / "last.pth.tar", map_location="cpu", weights_only=False)
    timm.create_model("resnet8_tiny", num_classes=K + M).load_state_dict(ckpt["state_dict"])
    assert (ckpt["args"].rbla_hook["protocol"], ckpt["args"].rbla_hook["la_p"]) == ("authors", 1.0)
    rows = list(csv.DictReader((tmp_path / "run" / "summary.csv").open()))
    assert len(rows) == 1 and {"eval_loss", "eval_top1", "eval_top5"} <= set(rows[0])

    # everything patched is restored
    assert timm.models.create_model is create_model and timm.create_model is create_model and sys.argv == argv


@pytest.mark.parametrize("flags, pattern", [
    (["--mixup", "0.2"], "mixup"),
    (["--cutmix", "1.0", "--no-prefetcher"], "mixup"),
    (["--aug-splits", "2", "--no-prefetcher"], "--aug-splits"),
])
@pytest.mark.parametrize("script, workers", SCRIPTS)
def test_launcher_refuses_what_the_hook_cannot_take(script, workers, flags, pattern, data_root, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(script, data_root, out, *workers, "--val-split", "validation", *flags) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]  # timm logs to stderr
    assert len(errors) == 1 and errors[0].startswith("rbla timm-train: error: ") and pattern in errors[0]
    assert not out.exists()  # refused before any output


def test_launcher_needs_num_classes(data_root, tmp_path, capsys):
    rc = cli_main(["timm-train", str(SHAPED), "--data-dir", str(data_root), "--output", str(tmp_path / "o")])
    assert rc == 2 and "--num-classes K" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("edit, pattern", [
    (lambda s: s.replace("def validate(", "def evaluate("), "no module-level function validate()"),
    (lambda s: s.replace("mixup_fn=None):", "mix=None):").replace("mixup_fn=mixup_fn", "mix=mixup_fn"),
     "no parameter mixup_fn"),
    (lambda s: s.replace('if __name__ == "__main__":\n    main()', 'if __name__ == "__main__":\n    main()\n'
                         '    print("more")'), "does more than call main()"),
    (lambda s: s.replace("from timm.models import create_model", "import timm.models")
     .replace("model = create_model(", "model = timm.models.create_model("), "does not import create_model"),
])
def test_launcher_refuses_other_script_structures(edit, pattern, tmp_path, capsys):
    script = tmp_path / "train.py"
    script.write_text(edit(SHAPED.read_text()))
    assert cli_main(["timm-train", str(script), "--data-dir", str(tmp_path), "--num-classes", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and pattern in err[0], err
    assert timm.models.create_model.__module__ == "timm.models._factory"


def test_missing_script_is_one_line(tmp_path, capsys):
    assert cli_main(["timm-train", str(tmp_path / "train.py"), "--num-classes", "5"]) == 2
    assert "is not a file" in capsys.readouterr().err
    # the module entry point is the same command
    result = subprocess.run([sys.executable, "-m", "robustbench_labelaug.timm_train", str(tmp_path / "train.py")],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith("rbla timm-train: error:")


@pytest.mark.skipif(not REAL, reason="set RBLA_TIMM_TRAIN_PY to a timm train.py to check its structure")
def test_real_train_py_has_the_structure_the_launcher_needs():
    check_script_structure(Path(REAL).read_text(), REAL)


def test_launcher_flags_are_split_from_timms(tmp_path):
    from robustbench_labelaug.cli import command_parser

    module, parser = command_parser("timm-train")
    args = module.parse(parser, ["train.py", "--model", "resnet50", "--adv-eps", "0.1", "--amp", "--la-ops", "2",
                                 "--input-size", "3", "224", "224", "--adv-mode", "adv"])
    assert args.script == "train.py" and args.adv_eps == 0.1 and args.la_ops == 2 and args.adv_mode == "adv"
    assert args.script_args == ["--model", "resnet50", "--amp", "--input-size", "3", "224", "224"]
    assert module.hook_settings(args)["num_ops"] == 2


# -- both doors start from the same weights (issue 17) ------------------------------------------------------------
TINY_PRETRAINED = "test_efficientnet"  # a timm architecture with a pretrained config (1000 classes), ~0.1M weights


class _Stop(Exception):
    """Raised by the spy once the hook is built: the run's initial weights are known, no step has been taken."""


@pytest.fixture(scope="module")
def parity_data(tmp_path_factory):
    """5 classes in the layout both doors read: train/, val/ and validation/ (timm's default split name)."""
    return make_parity_layout(tmp_path_factory.mktemp("parity"), K)


@pytest.fixture(scope="module")
def head_files(tmp_path_factory):
    """Local 'pretrained' files of TINY_PRETRAINED: one whose head has K rows, one with 1000 (non-zero biases)."""
    out = {}
    for width in (K, 1000):
        torch.manual_seed(width)
        net = timm.create_model(TINY_PRETRAINED, num_classes=width)
        with torch.no_grad():
            net.get_classifier().bias.normal_()
        out[width] = tmp_path_factory.mktemp("weights") / f"head{width}.pth"
        torch.save(net.state_dict(), out[width])
    return out


def _initial_weights(monkeypatch, run) -> dict[str, torch.Tensor]:
    """The weights of the model the hook is built on, before the first training step (the run is then stopped)."""
    seen = {}

    def init(self, model, *args, **kwargs):
        seen.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        raise _Stop

    with monkeypatch.context() as m:
        m.setattr(AdvLabelAug, "__init__", init)
        with pytest.raises(_Stop):
            run()
    return seen


@pytest.mark.parametrize("mode", ["std", "adv", "adv_plus"])
@pytest.mark.parametrize("width", [K, 1000], ids=["head-K", "head-1000"])
@pytest.mark.parametrize("script, workers", SCRIPTS)
def test_both_doors_start_from_the_same_weights(script, workers, mode, width, parity_data, head_files, tmp_path,
                                                monkeypatch, capsys):
    """rbla train --pretrained-file F and rbla timm-train --pretrained --pretrained-path F, same seed and flags:
    identical initial state dicts, head included. A K-row pretrained head is kept in every mode (Adv+: plus M
    zero rows); a 1000-row head gives every mode the same fresh head."""
    from robustbench_labelaug.cli import main as rbla

    file = head_files[width]
    common = ["--model", TINY_PRETRAINED, "--seed", "0", "--adv-mode", mode, "--epochs", "1"]
    ours = _initial_weights(monkeypatch, lambda: rbla([
        "train", "--dataset", "folder", "--data-dir", str(parity_data), "--pretrained-file", str(file),
        "--device", "cpu", "--output", str(tmp_path / "train"), "--no-progress", *common]))
    theirs = _initial_weights(monkeypatch, lambda: cli_main([
        "timm-train", str(script), "--data-dir", str(parity_data), "--pretrained", "--pretrained-path", str(file),
        "--num-classes", str(K), "--input-size", "3", "32", "32", "--device", "cpu", "--output",
        str(tmp_path / "timm"), *workers, *common]))
    net = {k[len("net."):]: v for k, v in ours.items() if k.startswith("net.")}
    assert net.keys() == theirs.keys()
    for key in net:
        assert torch.equal(net[key], theirs[key]), key

    m = M if mode == "adv_plus" else 0
    head, pretrained = theirs["classifier.weight"], torch.load(file, weights_only=True)["classifier.weight"]
    assert head.shape[0] == K + m
    if width == K:  # kept: the pretrained rows, then zeros
        assert torch.equal(head[:K], pretrained) and not head[K:].any()
    else:
        assert not torch.equal(head[:K], pretrained[:K])
    err = capsys.readouterr().err
    rule = [line for line in err.splitlines() if line.startswith("rbla timm-train: head: ")]
    assert len(rule) == 1 and ("every mode keeps it" if width == K else "fresh random") in rule[0]
    assert f"sha256 {hashlib.sha256(file.read_bytes()).hexdigest()}" in rule[0]


@pytest.mark.parametrize("script, workers", SCRIPTS)
def test_the_fresh_head_is_the_same_in_every_mode(script, workers, parity_data, head_files, tmp_path, monkeypatch):
    """Std and Adv+ under a 1000-row pretrained head: the same body, the same first K rows of a fresh head."""
    def run(mode):
        return _initial_weights(monkeypatch, lambda: cli_main([
            "timm-train", str(script), "--data-dir", str(parity_data), "--model", TINY_PRETRAINED, "--pretrained",
            "--pretrained-path", str(head_files[1000]), "--num-classes", str(K), "--input-size", "3", "32", "32",
            "--device", "cpu", "--output", str(tmp_path / mode), "--seed", "0", "--adv-mode", mode, *workers]))

    std, plus = run("std"), run("adv_plus")
    body = [k for k in std if not k.startswith("classifier.")]
    assert all(torch.equal(std[k], plus[k]) for k in body)
    reference = timm.create_model(TINY_PRETRAINED, num_classes=1000)
    reference.load_state_dict(torch.load(head_files[1000], weights_only=True))
    assert torch.equal(std["conv_stem.weight"], reference.state_dict()["conv_stem.weight"])  # the body is pretrained


@pytest.mark.parametrize("script, workers", SCRIPTS)
def test_launcher_prints_the_recipe_departures_once_and_refuses_pure_fp16(script, workers, data_root, tmp_path,
                                                                          monkeypatch, capsys):
    _initial_weights(monkeypatch, lambda: _run(script, data_root, tmp_path / "a", *workers, "--val-split",
                                               "validation", "--amp", "--amp-dtype", "float16"))
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("rbla timm-train: ")]
    assert sum("departs from the paper's recipe" in line for line in err) == 1
    points = "\n".join(err)
    for expected in ("ColorJitter: --color-jitter 0.4", "-> --color-jitter 0", "autocast dtype: float16",
                     "-> --amp-dtype bfloat16", "batch: -b 16 per process x 1 process(es) = 16 per step",
                     "-> -b 64", "weights: random initialisation"):
        assert expected in points, expected
    if script == REAL:  # train.py's own defaults
        for expected in ("-> --weight-decay 0.0001", "-> --min-lr 1e-06", "-> --train-interpolation bilinear"):
            assert expected in points, expected

    # what cannot work is refused with one line, before any output
    out = tmp_path / "fp16"
    if script == SHAPED:  # timm 1.0.9's train.py has no --model-dtype (timm >= 1.0.15 has)
        assert _run(script, data_root, out, *workers, "--val-split", "validation", "--model-dtype", "float16") == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
        assert len(errors) == 1 and "float16 model" in errors[0] and "--amp --amp-dtype bfloat16" in errors[0]
        assert not out.exists()


def test_recipe_command_in_the_docs_has_no_departures():
    """docs/timm-launcher-parity.md's command, parsed by a train.py-shaped parser, departs on no point."""
    import argparse
    import re
    import shlex

    from robustbench_labelaug.timm_train.recipe import timm_run_departures

    text = (Path(__file__).resolve().parents[1] / "docs" / "timm-launcher-parity.md").read_text()
    block = re.search(r"```bash\n(rbla timm-train train\.py.*?)```", text, re.S).group(1)
    argv = shlex.split(block.replace("\\\n", " "), comments=True)[3:]
    p = argparse.ArgumentParser()
    for flag in ("--data-dir", "--model", "--experiment", "--amp-dtype", "--train-interpolation", "--opt", "--sched",
                 "--adv-mode"):
        p.add_argument(flag)
    for flag in ("--num-classes", "--epochs", "-b", "--warmup-epochs", "--adv-steps", "--la-ops"):
        p.add_argument(flag, type=int)
    for flag in ("--lr", "--min-lr", "--weight-decay", "--momentum", "--color-jitter", "--adv-eps", "--la-delta"):
        p.add_argument(flag, type=float)
    for flag in ("--pretrained", "--amp", "--channels-last"):
        p.add_argument(flag, action="store_true")
    args = p.parse_args(argv)
    assert args.model == "resnet50.tv_in1k" and args.pretrained
    assert timm_run_departures(args, world_size=1) == []


@pytest.mark.parametrize("flags, pattern", [
    (["--pretrained-path", "{file}"], "is loaded only with --pretrained"),
    (["--pretrained", "--pretrained-path", "{missing}"], "does not exist"),
])
def test_launcher_refuses_a_weights_file_it_would_not_load(flags, pattern, parity_data, head_files, tmp_path, capsys):
    argv = [f.format(file=head_files[K], missing=tmp_path / "nope.pth") for f in flags]
    out = tmp_path / "out"
    assert cli_main(["timm-train", str(SHAPED), "--data-dir", str(parity_data), "--model", TINY_PRETRAINED,
                     "--num-classes", str(K), "--output", str(out), *argv]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and pattern in errors[0], errors
    assert not out.exists()
