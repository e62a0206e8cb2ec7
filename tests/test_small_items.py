"""Issue 27's smaller items: PGD restarts, a zoo model's timm name, --fast task labels, a reader that closes the
pipe early."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from robustbench_labelaug import UserError
from robustbench_labelaug.evaluation import EvalContext, create_evaluator
from robustbench_labelaug.evaluation.pgd import predict_sound, restart_seed

CTX = dict(num_classes=10, progress=False, batch_size=64)


@pytest.fixture(scope="module")
def linear_digits(digits_train, digits_test):
    """A linear classifier trained 3 clean epochs on digits (fast): PGD-1 at eps 0.03 breaks part of it, and
    which part depends on the random start."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = digits_train.tensors
    for _ in range(3):
        for i in torch.randperm(len(y)).split(64):
            loss = F.cross_entropy(net(x[i]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval(), TensorDataset(*(t[:120] for t in digits_test.tensors))


def _batches(ds, size=50):
    x, y = ds.tensors
    for s in range(0, len(y), size):
        yield x[s:s + size], y[s:s + size], torch.arange(s, min(s + size, len(y)))


def test_pgd_restarts_break_the_union_of_their_starts(linear_digits):
    """restarts=3 breaks exactly the points one of three single-start runs (seeded as the restarts are) breaks,
    computed independently on the whole set; restarts=1 is the plain attack; more restarts never break fewer."""
    model, ds = linear_digits
    settings = dict(eps=0.03, steps=1, alpha=0.03, seed=0)
    one = create_evaluator("pgd", **settings).run(model, ds, EvalContext(**CTX))
    three = create_evaluator("pgd", restarts=3, **settings).run(model, ds, EvalContext(**CTX))
    runs = [predict_sound(model, _batches(ds), eps=0.03, alpha=0.03, steps=1, random_start=True,
                          seed=restart_seed(0, r)) for r in range(3)]
    wrong_clean = runs[0]["y_clean"] != runs[0]["y_true"]
    union = np.logical_or.reduce([r["broken"].astype(bool) for r in runs])
    assert union.sum() > runs[0]["broken"].sum()  # the restarts matter on this model (else the test says nothing)
    assert three.metrics["robust_error"] == pytest.approx(100.0 * np.mean(wrong_clean | union))
    assert one.metrics["robust_error"] == pytest.approx(100.0 * np.mean(wrong_clean | runs[0]["broken"]))
    assert three.details["broken"] == int(union.sum()) and three.settings["restarts"] == 3
    heads = {h.key: h for h in create_evaluator("pgd").headline(three.to_dict())}
    assert heads["pgd_error"].label == "PGD-1 err (sound, 3 restarts)"
    assert heads["pgd_error"].protocol == "PGD-1 (sound, 3 restarts)"
    # one start keeps the fingerprint of the attack before restarts existed (cached results stay valid)
    assert "restarts" not in create_evaluator("pgd", **settings).settings
    assert create_evaluator("pgd", restarts=2, **settings).settings["restarts"] == 2


@pytest.mark.parametrize("settings, match", [
    ({"restarts": 0}, "restarts must be an integer >= 1"),
    ({"restarts": 2, "protocol": "paper", "eps": 0.1}, "restarts apply to the sound protocol"),
    ({"restarts": 2, "random_start": False}, "without random_start repeat the same attack"),
])
def test_pgd_restarts_bad_settings(settings, match):
    with pytest.raises(UserError, match=match) as info:
        create_evaluator("pgd", **settings)
    assert len(str(info.value).splitlines()) == 1


def test_fast_task_labels_name_the_steps_that_run():
    """rbla demo --fast / rbla evaluate --fast: the works' names and the done-callback's label say pgd10_sound
    (what runs and is written), not the config's pgd40_sound."""
    from robustbench_labelaug.runner.config import load_config, packaged_configs
    from robustbench_labelaug.runner.tasks import evaluation_works

    cfg = load_config(packaged_configs()["digits"])
    seen: list[str] = []
    fast = evaluation_works(cfg, "out", ["digits_adv"], fast=True, device="cpu",
                            done=lambda key, label, s: seen.append(label))
    names = " ".join(w.name for w in fast)
    assert "pgd10_sound" in names and "pgd40_sound" not in names
    for work in fast:
        work.done({"seconds": 0.0})
    assert any("pgd10_sound" in label for label in seen) and not any("pgd40" in label for label in seen)
    full = " ".join(w.name for w in evaluation_works(cfg, "out", ["digits_adv"], fast=False, device="cpu"))
    assert "pgd40_sound" in full and "pgd10_sound" not in full


def test_a_closed_pipe_ends_any_command_quietly(tmp_path):
    """`rbla ... | head`: the reader closes the pipe before the command writes; the command ends with 141
    (128 + SIGPIPE) and no traceback, for any command (handled at the CLI's entry)."""
    for command in (["zoo", "list"], ["zoo", "show", "digits_adv_plus", "--json"]):
        proc = subprocess.Popen([sys.executable, "-m", "robustbench_labelaug", *command], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.close()  # the reader is gone before anything is written
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 141, err
        assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_broken_pipe_in_process_returns_141(monkeypatch, tmp_path):
    from robustbench_labelaug import cli

    monkeypatch.chdir(tmp_path)  # no ./model_zoo user zoo of a source checkout
    class Gone:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Gone())
    assert cli.main(["zoo", "list"]) == cli.SIGPIPE_EXIT == 141


def test_an_exported_zoo_model_has_a_timm_name(tmp_path, monkeypatch):
    """After `import robustbench_labelaug`, timm.create_model(<zoo name>) builds the entry's K-way classifier (its
    pretrained_cfg: [0,1] inputs, K classes, the dataset's class names) and pretrained=True loads the exported
    checkpoint, the same model load_model returns; a user entry exported in this process is found too."""
    import dataclasses

    import timm

    from robustbench_labelaug import load_model
    from robustbench_labelaug.models import KWayClassifier
    from robustbench_labelaug.zoo.entries import get_entry
    from robustbench_labelaug.zoo.export import export_checkpoint
    from robustbench_labelaug.zoo.timm_names import register_timm_names

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RBLA_ZOO", str(tmp_path / "zoo"))
    (tmp_path / "zoo").mkdir()
    register_timm_names()  # as `import timm` did, here with this test's (empty) user zoo
    packaged = timm.create_model("digits_adv_plus")
    assert isinstance(packaged, KWayClassifier) and packaged(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    cfg = timm.get_pretrained_cfg("digits_adv_plus")
    assert (cfg.mean, cfg.std, cfg.input_size, cfg.num_classes) == ((0.0,) * 3, (1.0,) * 3, (3, 32, 32), 10)
    assert cfg.label_names[:3] == ("0", "1", "2")

    import argparse

    from robustbench_labelaug.models import create_classifier
    from robustbench_labelaug.results.rules import default_protocol
    from robustbench_labelaug.train.checkpoint import RunCheckpointSaver

    torch.manual_seed(3)  # an rbla train checkpoint of random weights
    net = create_classifier("resnet8_tiny", 10, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    args = argparse.Namespace(model="resnet8_tiny", dataset="digits", adv_mode="adv_plus", adv_eps=0.2, la_delta=0.03,
                              la_ops=1, la_protocol=default_protocol("adv_plus"))  # a fresh run records its protocol
    RunCheckpointSaver(net, opt, torch.optim.lr_scheduler.StepLR(opt, 1), args, checkpoint_dir=str(tmp_path),
                       max_history=1).save_checkpoint(epoch=0)
    export_checkpoint(tmp_path / "last.pth.tar", "my_advplus", tmp_path / "models", zoo=tmp_path / "zoo")
    assert timm.is_model("my_advplus")
    mine = timm.create_model("my_advplus", pretrained=True, model_dir=tmp_path / "models")
    ours = load_model("my_advplus", model_dir=tmp_path / "models")
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(mine(x), ours(x))
    with pytest.raises(UserError, match="has K=10 classes, not num_classes=5"):
        timm.create_model("my_advplus", num_classes=5)
    # a zoo name that timm already has for its own model is not taken over
    clash = dataclasses.replace(get_entry("digits_adv_plus"), name="resnet18")
    with pytest.warns(UserWarning, match="share a name with timm's own models"):
        assert register_timm_names({"resnet18": clash}) == []
    assert not isinstance(timm.create_model("resnet18"), KWayClassifier)
