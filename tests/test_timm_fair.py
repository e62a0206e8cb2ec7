"""``rbla timm-train --fair {cfa,frl}``: the class-wise policies, the per-class training curves and the held-out
validation split inside timm's ``train.py`` (``tests/timm_train_shaped.py`` offline; timm's real script too when
``RBLA_TIMM_TRAIN_PY`` names one), with the numbers checked against the policies' formulas, a resume, the export
into the zoo, and the same validation split as ``rbla train``."""

from __future__ import annotations

import argparse
import csv

import pytest
import timm
import torch

from robustbench_labelaug import AdvLabelAug
from robustbench_labelaug.cli import main as cli_main
from robustbench_labelaug.fair.frl import frl_violations, project_multipliers, remargin_factor
from robustbench_labelaug.timm_fair import (
    STATE_KEY,
    CountingSoftTargetCrossEntropy,
    FairSettings,
    TimmClassWise,
)

from .fixtures_imagenet import make_parity_layout, make_timm_layout
from .test_timm_integration import SCRIPTS, K
from .test_timm_integration import root_log_handlers as _root_log_handlers  # noqa: F401  (its autouse fixture)

SPLIT = "0.25"  # 2 of each class's 8 training images held out


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_timm_layout(tmp_path_factory.mktemp("imagenet_layout"), K)


@pytest.fixture(scope="module")
def parity_data(tmp_path_factory):
    return make_parity_layout(tmp_path_factory.mktemp("parity"), K)


def _run(script, root, out, *extra, epochs=2, experiment="run"):
    return cli_main(["timm-train", str(script), "--data-dir", str(root), "--model", "resnet8_tiny",
                     "--num-classes", str(K), "--input-size", "3", "32", "32", "-b", "8", "--epochs", str(epochs),
                     "--warmup-epochs", "0", "--device", "cpu", "--output", str(out), "--experiment", experiment,
                     "--val-split", "validation", "--seed", "0", "--adv-mode", "adv_plus", "--adv-eps", "0.05",
                     "--adv-steps", "2", *extra])


def _summary(folder):
    return list(csv.DictReader((folder / "summary.csv").open()))


def _checkpoint(path):
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(path, map_location="cpu", weights_only=True)


def _column(row, prefix):
    return [float(row[f"{prefix}_c{k}"]) for k in range(K)]


@pytest.mark.slow
@pytest.mark.parametrize("script, workers", SCRIPTS)
def test_cfa_in_timm_train_follows_the_formula_and_writes_fawa(script, workers, data_root, tmp_path):
    rc = _run(script, data_root, tmp_path, *workers, "--fair", "cfa", "--cfa-begin", "1", "--fawa-threshold", "0",
              "--fair-val-split", SPLIT)
    assert rc == 0
    run = tmp_path / "run"
    rows = _summary(run)
    assert len(rows) == 2
    # epoch 0 (before --cfa-begin 1) trains at eps; epoch 1 at (0.5 + A_c) eps, A_c = epoch 0's training robust
    # accuracy of class c, read back from the training curves timm's summary.csv now carries
    assert _column(rows[0], "train_eps_factor") == [1.0] * K
    expected = [0.5 + a / 100 for a in _column(rows[0], "train_robust_top1")]
    assert _column(rows[1], "train_eps_factor") == pytest.approx(expected, abs=1e-12)
    for row in rows:  # the validation split's class-wise columns, in the names rbla train writes
        assert all(0 <= v <= 100 for v in _column(row, "eval_holdout_top1") + _column(row, "eval_holdout_pgd_top1"))
        assert float(row["eval_holdout_pgd_top1_worst"]) == min(_column(row, "eval_holdout_pgd_top1"))
    assert [float(r["train_fawa_updates"]) for r in rows] == [0.0, 1.0]  # threshold 0: every epoch enters

    # the policy's state and the split's record travel in timm's checkpoints (its args)
    last = _checkpoint(run / "last.pth.tar")
    state = getattr(last["args"], STATE_KEY)
    assert state["policy"] == "cfa" and state["epoch"] == 1
    assert (100 * state["state"]["train_robust"]).tolist() == pytest.approx(_column(rows[1], "train_robust_top1"))
    from robustbench_labelaug.data import imagenet_wnids

    assert last["args"].rbla_class_folders == list(imagenet_wnids()[:K])  # the training folders, in index order
    record = last["args"].rbla_val_split_record
    assert record["per_class"] == {c: 2 for c in range(K)} and record["train_size"] == 6 * K

    # FAWA: two gated epochs -> avg = 0.88 * w0 + 0.12 * w1 (first epoch copies), exported and loaded as a zoo model
    fawa = _checkpoint(run / "fawa.pth.tar")
    assert fawa["rbla_averaged"] == "fawa" and fawa["epoch"] == 1
    assert set(fawa["state_dict"]) == set(last["state_dict"])
    assert not torch.equal(fawa["state_dict"]["fc.weight"], last["state_dict"]["fc.weight"])
    from robustbench_labelaug.train.checkpoint import read_checkpoint
    from robustbench_labelaug.zoo.loading import load_state_strict

    converted = read_checkpoint(run / "fawa.pth.tar")
    assert (converted["num_classes"], converted["num_ops"]) == (K, 1)
    assert converted["args"]["fair"] == "cfa" and converted["args"]["cfa_begin"] == 1
    assert converted["args"]["trainer"] == "rbla timm-train" and converted["args"]["adv_mode"] == "adv_plus"
    from robustbench_labelaug.models import create_classifier

    model = create_classifier(converted["arch"], K, 1, mean=converted["mean"], std=converted["std"]).eval()
    load_state_strict(model, converted["state_dict"], run / "fawa.pth.tar")
    net = timm.create_model("resnet8_tiny", num_classes=K + 1).eval()
    net.load_state_dict(fawa["state_dict"])
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():  # [0,1] images in, the loader's normalisation inside: the network timm trained
        assert torch.allclose(model(x), net((x - 0.5) / 0.5), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("script, workers", SCRIPTS)
def test_frl_in_timm_train_resumes_its_multipliers(script, workers, data_root, tmp_path, capsys):
    flags = [*workers, "--fair", "frl", "--fair-val-split", SPLIT, "--fair-val-steps", "2"]
    assert _run(script, data_root, tmp_path, *flags, experiment="full") == 0
    full = _summary(tmp_path / "full")
    first = _checkpoint(tmp_path / "full" / "checkpoint-0.pth.tar")
    lmb = getattr(first["args"], STATE_KEY)["state"]["lmb"]

    # FRL's two steps worked by hand: the first from the starting model (before epoch 0, as the reference's from
    # its hot start; its violations are in the policy's state), the second from epoch 0's validation columns: g from
    # the class errors, l0/l1 projected, l2 not; epoch 0 trains at the first radii, epoch 1 at eps*clip(exp(2 l2))
    s0, s1 = getattr(first["args"], STATE_KEY)["state"]["start_violations"]
    start = [project_multipliers(0.05 * s0, 0.5), project_multipliers(0.1 * s1, 0.5), 0.2 * s1]
    assert _column(full[0], "train_eps_factor") == pytest.approx(remargin_factor(start[2]).tolist())
    acc = torch.tensor(_column(full[0], "eval_holdout_top1"), dtype=torch.float64) / 100
    rob = torch.tensor(_column(full[0], "eval_holdout_pgd_top1"), dtype=torch.float64) / 100
    g0, g1 = frl_violations(acc, rob, torch.full((K,), 2.0), 0.07, 0.07)
    assert lmb[0].tolist() == pytest.approx(project_multipliers(start[0] + 0.05 * g0, 0.5).tolist())
    assert lmb[1].tolist() == pytest.approx(project_multipliers(start[1] + 0.1 * g1, 0.5).tolist())
    assert lmb[2].tolist() == pytest.approx((start[2] + 0.2 * g1).tolist())
    assert _column(full[1], "train_eps_factor") == pytest.approx(remargin_factor(start[2] + 0.2 * g1).tolist())

    # --resume from epoch 0's checkpoint: the multipliers come back, so epoch 1 trains at the same radii
    assert _run(script, data_root, tmp_path, *flags, "--resume", str(tmp_path / "full" / "checkpoint-0.pth.tar"),
                experiment="resumed") == 0
    assert "--fair frl: the policy's state after epoch 0 restored" in capsys.readouterr().err
    resumed = _summary(tmp_path / "resumed")
    assert [r["epoch"] for r in resumed] == ["1"]
    assert _column(resumed[0], "train_eps_factor") == _column(full[1], "train_eps_factor")

    # another policy cannot continue it: one line, before anything is written
    out = tmp_path / "other"
    assert _run(script, data_root, out, *workers, "--fair", "cfa", "--fair-val-split", SPLIT, "--resume",
                str(tmp_path / "full" / "checkpoint-0.pth.tar")) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and "trained with --fair frl, not --fair cfa" in err[0]
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("script, workers", SCRIPTS)
def test_timm_train_fair_cfa_speaks_each_epoch_and_says_why_no_fawa_model(script, workers, data_root, tmp_path,
                                                                          capsys):
    """One line per epoch with the policy's state (eps factors, weights, FAWA's gate value and whether it opened);
    at the end why no fawa.pth.tar was written; exporting it then says why, not only "does not exist"."""
    assert _run(script, data_root, tmp_path, *workers, "--fair", "cfa", "--cfa-begin", "1", "--fawa-threshold",
                "1.5", "--fair-val-split", SPLIT) == 0  # a worst-class accuracy never reaches 1.5: always closed
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "--fair cfa, epoch" in ln]
    assert len(lines) == 2, err[-2000:]
    assert "epoch 0: eps factors 1 (uniform); weights 1 (uniform)" in lines[0]
    assert "eps factors 1 (uniform)" not in lines[1]  # CCM from --cfa-begin 1: class-wise factors, min–max
    rows = _summary(tmp_path / "run")
    factors = _column(rows[1], "train_eps_factor")
    assert f"eps factors {min(factors):.3f}–{max(factors):.3f}" in lines[1]
    for line, row in zip(lines, rows):
        gate = float(row["eval_holdout_pgd_top1_worst"]) / 100
        assert f"FAWA gate {gate:.3f} < 1.5: closed (0 epoch(s) averaged)" in line
    best = max(float(r["eval_holdout_pgd_top1_worst"]) for r in rows) / 100
    assert (f"--fair cfa: no averaged model written: FAWA's gate never opened: the worst-class validation PGD "
            f"accuracy peaked at {best:.3f}, below --fawa-threshold 1.5") in err
    assert not (tmp_path / "run" / "fawa.pth.tar").exists()
    assert cli_main(["zoo", "export", "--checkpoint", str(tmp_path / "run" / "fawa.pth.tar"), "--name", "mine_cfa",
                     "--model-dir", str(tmp_path / "models"), "--zoo", str(tmp_path / "zoo")]) == 2
    message = [ln for ln in capsys.readouterr().err.splitlines() if "fawa.pth.tar" in ln]
    assert len(message) == 1 and "does not exist: that run wrote no fawa.pth.tar: FAWA's gate never opened" in \
        message[0] and f"export {tmp_path / 'run' / 'last.pth.tar'} instead" in message[0]


@pytest.mark.parametrize("flags, pattern", [
    (["--fair", "frl", "--fair-val-split", "0"], "--fair frl needs a validation split: pass --fair-val-split"),
    (["--fair", "cfa", "--adv-mode", "std"], "--fair cfa needs adversarial training"),
    (["--fair", "cfa", "--fair-val-split", "1.5"], "--fair-val-split must lie in [0, 1)"),
    (["--fair", "cfa", "--cfa-begin", "2"], "is not below the 2 training epochs"),  # timm's --epochs 2
    (["--la-protocol", "authors", "--adv-train-clean"], "--adv-train-clean belongs to the adversarial protocol"),
])
def test_timm_train_refuses_bad_class_wise_flags(flags, pattern, data_root, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(SCRIPTS[0].values[0], data_root, out, "-j", "0", *flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and pattern in err[0], err
    assert not out.exists()


@pytest.mark.parametrize("protocol, train_clean", [("adversarial", False), ("adversarial", True), ("authors", False)])
def test_the_counting_loss_scores_the_adversarial_rows_of_the_training_forward(protocol, train_clean):
    """What the timm door counts per class equals a recount from the logits the training step computed."""
    torch.manual_seed(0)
    model = timm.create_model("resnet8_tiny", num_classes=K + 1)
    hook = AdvLabelAug(model, K, mode="adv_plus", eps=0.1, steps=1, train_clean=train_clean, protocol=protocol)
    tracker = TimmClassWise(FairSettings())
    tracker.begin_epoch(0, hook, argparse.Namespace(), {})
    loss_fn = CountingSoftTargetCrossEntropy(tracker)
    expected = torch.zeros(2, K, dtype=torch.float64)
    for _ in range(3):
        x, y = torch.rand(6, 3, 32, 32), torch.randint(K, (6,))
        batch, soft = hook(x, y)
        tracker.after_hook(hook, y, batch)
        logits = model(batch)
        loss_fn(logits, soft).backward()
        if hook.adv_rows is None:  # the authors' protocol drew no adversarial part: nothing to score
            continue
        adv = logits[hook.adv_rows, :K].argmax(1)
        expected[0].index_add_(0, y, (adv == y).double())
        expected[1].index_add_(0, y, torch.ones(6, dtype=torch.float64))
    assert float(expected[1].sum()) > 0  # some batch had adversarial rows
    assert torch.equal(tracker.counts.correct, expected[0]) and torch.equal(tracker.counts.total, expected[1])
    # a forward pass of another batch (not the hooked one) is not counted
    tracker.after_hook(hook, y, batch)
    loss_fn(model(torch.rand(2, 3, 32, 32)), torch.full((2, K + 1), 1 / (K + 1)))
    assert torch.equal(tracker.counts.total, expected[1])


@pytest.mark.slow
def test_both_doors_hold_out_the_same_validation_split(parity_data, tmp_path, monkeypatch):
    """rbla train --val-split F and rbla timm-train --fair-val-split F, same --seed, same folder: the same labels
    in the same order and the same held-out indices."""
    from robustbench_labelaug.data import holdout

    seen = []
    real = holdout.holdout_indices

    def spy(labels, fraction, seed):
        out = real(labels, fraction, seed)
        seen.append((labels.tolist(), fraction, seed, out[1].tolist()))
        return out

    monkeypatch.setattr(holdout, "holdout_indices", spy)
    common = ["--model", "resnet8_tiny", "--seed", "3", "--adv-mode", "adv", "--epochs", "1", "--fair", "cfa",
              "--cfa-parts", "fawa", "--adv-steps", "1", "--fair-val-steps", "1"]
    assert cli_main(["train", "--dataset", "folder", "--data-dir", str(parity_data), "--val-split", "0.5",
                     "--input-size", "32", "--device", "cpu", "--output", str(tmp_path / "train"), "--no-progress",
                     "-b", "8", *common]) == 0
    assert cli_main(["timm-train", str(SCRIPTS[0].values[0]), "--data-dir", str(parity_data), "--fair-val-split",
                     "0.5", "--num-classes", str(K), "--input-size", "3", "32", "32", "-b", "8", "--device", "cpu",
                     "--output", str(tmp_path / "timm"), "-j", "0", *common]) == 0
    assert len(seen) == 2 and seen[0] == seen[1]


def test_class_folders_become_the_datasets_names_at_export():
    from robustbench_labelaug.data import imagenet_wnids
    from robustbench_labelaug.data.imagenet_labels import imagenet_class_names
    from robustbench_labelaug.data.registry import class_names, names_for_folders
    from robustbench_labelaug.errors import UserError

    wnids = list(imagenet_wnids())
    assert names_for_folders("imagenet", wnids) == imagenet_class_names()  # folder ids -> WordNet names
    cifar = class_names("cifar10")
    assert names_for_folders("cifar10", cifar) == cifar
    assert names_for_folders("folder", ["b", "a"]) == ["b", "a"]  # a folder dataset: the folders are the names
    with pytest.raises(UserError, match="not dataset 'cifar10''s classes in its order"):
        names_for_folders("cifar10", cifar[::-1])
    with pytest.raises(UserError, match="not dataset 'imagenet''s classes"):
        names_for_folders("imagenet", wnids[1:] + wnids[:1])


@pytest.mark.slow
def test_a_timm_train_model_exports_with_its_class_names_and_is_checked(tmp_path, capsys):
    """rbla timm-train records the training folders' classes; rbla zoo export turns them into the dataset's names
    (here CIFAR-10's, from folders named like them) and refuses a dataset whose classes they are not."""
    from PIL import Image

    from robustbench_labelaug.data.registry import class_names
    from robustbench_labelaug.zoo import load_model

    names = class_names("cifar10")
    rng = __import__("numpy").random.default_rng(0)
    for split, n in (("train", 2), ("validation", 1)):
        for c in names:
            (tmp_path / "data" / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype="uint8")).save(
                    tmp_path / "data" / split / c / f"{i}.png")
    assert cli_main(["timm-train", str(SCRIPTS[0].values[0]), "--data-dir", str(tmp_path / "data"), "--model",
                     "resnet8_tiny", "--num-classes", "10", "--input-size", "3", "32", "32", "-b", "8", "--epochs",
                     "1", "--device", "cpu", "--output", str(tmp_path / "out"), "--experiment", "run", "-j", "0",
                     "--adv-mode", "adv", "--adv-steps", "1"]) == 0
    last = tmp_path / "out" / "run" / "last.pth.tar"
    assert _checkpoint(last)["args"].rbla_class_folders == names
    models, zoo = tmp_path / "models", tmp_path / "zoo"
    assert cli_main(["zoo", "export", "--checkpoint", str(last), "--name", "tt_adv", "--dataset", "cifar10",
                     "--model-dir", str(models), "--zoo", str(zoo)]) == 0
    saved = torch.load(models / "cifar10" / "Linf" / "tt_adv.pt", map_location="cpu", weights_only=True)
    assert saved["class_names"] == names and saved["args"]["trainer"] == "rbla timm-train"
    import os

    os.environ["RBLA_ZOO"] = str(zoo)
    try:
        assert load_model("tt_adv", model_dir=models)(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    finally:
        del os.environ["RBLA_ZOO"]
    capsys.readouterr()
    assert cli_main(["zoo", "export", "--checkpoint", str(last), "--name", "tt_adv_digits", "--dataset", "digits",
                     "--model-dir", str(models), "--zoo", str(zoo)]) == 2
    assert "not dataset 'digits''s classes" in capsys.readouterr().err


def test_two_gloo_ranks_of_timm_train_set_the_same_policy(tmp_path):
    """Under DDP the timm door all-reduces the training counts and scores the validation split with rank 0's
    BatchNorm statistics on every rank (then gives each rank its own back): both ranks end the epoch with the same
    columns and the same FRL multipliers, and the clean scores are those of rank 0's model on the whole split."""
    from robustbench_labelaug.fair.epoch import Normalized, fair_epoch_stats

    from ._timm_fair_ddp_worker import DATA_CONFIG, Pixels, set_statistics, small_bn_net
    from .conftest import run_gloo_workers

    a, b = run_gloo_workers("_timm_fair_ddp_worker.py", tmp_path)
    assert a["own_kept"] and b["own_kept"]  # each rank's BatchNorm statistics are back

    def same(x, y):  # NaN (a class no rank saw) equals NaN here
        return x.keys() == y.keys() and all(x[k] == y[k] or (x[k] != x[k] and y[k] != y[k]) for k in x)

    assert same(a["metrics"], b["metrics"]) and same(a["eval"], b["eval"]) and torch.equal(a["lmb"], b["lmb"])
    assert [a["metrics"][f"robust_top1_c{c}"] for c in range(3)] == pytest.approx([100.0, 200 / 3, 50.0])
    model, other = small_bn_net(), small_bn_net()
    set_statistics(model, 0)
    set_statistics(other, 1)
    alone, mixed = (fair_epoch_stats(Normalized(m, DATA_CONFIG["mean"], DATA_CONFIG["std"]), None, Pixels(), K,
                                     0.1, 0, torch.device("cpu"), 128).val_clean for m in (model, other))
    assert not torch.equal(alone, mixed)  # the statistics matter on this data
    assert [a["eval"][f"holdout_top1_c{c}"] for c in range(K)] == pytest.approx((100 * alone).tolist())


@pytest.mark.slow
def test_a_timm_train_model_goes_through_export_into_rbla_evaluate(tmp_path):
    """The timm door end to end: rbla timm-train on a folder whose classes are digits' ('0'..'9'), rbla zoo export
    --dataset digits, and rbla evaluate with a config naming the entry: model_info is written with the run's
    training recorded, and the class names were checked against the data."""
    import json

    import yaml
    from PIL import Image

    rng = __import__("numpy").random.default_rng(1)
    for split, n in (("train", 2), ("validation", 1)):
        for c in range(10):
            (tmp_path / "data" / split / str(c)).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype="uint8")).save(
                    tmp_path / "data" / split / str(c) / f"{i}.png")
    assert cli_main(["timm-train", str(SCRIPTS[0].values[0]), "--data-dir", str(tmp_path / "data"), "--model",
                     "resnet8_tiny", "--num-classes", "10", "--input-size", "3", "32", "32", "-b", "8", "--epochs",
                     "1", "--device", "cpu", "--output", str(tmp_path / "out"), "--experiment", "run", "-j", "0",
                     "--adv-mode", "adv_plus", "--adv-steps", "1", "--adv-eps", "0.2"]) == 0
    models, zoo = tmp_path / "models", tmp_path / "zoo"
    assert cli_main(["zoo", "export", "--checkpoint", str(tmp_path / "out" / "run" / "last.pth.tar"), "--name",
                     "tt_digits", "--dataset", "digits", "--model-dir", str(models), "--zoo", str(zoo)]) == 0
    entry = yaml.safe_load((zoo / "tt_digits.yaml").read_text())
    assert (entry["training"], entry["num_ops"], entry["eps"]) == ("adv_plus", 1, 0.2)
    # the entry reproduces the run: timm's command as run (--experiment set to the name), the data folder, the
    # classes, and the dataset given at export (the run named a folder)
    data = str(tmp_path / "data")
    assert entry["recipe"].startswith(f"rbla timm-train {SCRIPTS[0].values[0]} --data-dir {data} --model "
                                      "resnet8_tiny") and "--experiment tt_digits -j 0" in entry["recipe"]
    assert "--adv-mode adv_plus" in entry["recipe"] and "--adv-eps 0.2" in entry["recipe"]
    trained = entry["trained_with"]
    assert trained["dataset"] == "digits" and trained["data_dir"] == data
    assert trained["class_names"] == [str(c) for c in range(10)] and trained["trainer"] == "rbla timm-train"
    assert trained["command"][:2] == ["rbla", "timm-train"] and "--experiment" in trained["command"]
    from .conftest import run_cli_inprocess

    shown = run_cli_inprocess("zoo", "show", "tt_digits", "--zoo", str(zoo), "--model-dir", str(models)).stdout
    train_lines = shown[shown.index("  train:  rbla timm-train"):shown.index("  export:")].splitlines()
    assert len(train_lines) >= 2 and all(ln.endswith(" \\") for ln in train_lines[:-1])
    assert all(len(ln) <= 112 for ln in train_lines) and "{" not in shown  # no JSON dump of ~130 timm args
    assert (f"trained with: dataset digits; data folder {data}; classes 0, 1, 2, 3, 4, ... (10 in all); "
            f"{len(trained)} recorded args (all: rbla zoo show tt_digits --json)") in shown
    dumped = json.loads(run_cli_inprocess("zoo", "show", "tt_digits", "--zoo", str(zoo), "--json").stdout)
    assert len(dumped["trained_with"]["timm_args"]) > 20 and dumped["recipe"] == entry["recipe"]  # timm's other flags
    config = tmp_path / "eval.yaml"
    config.write_text(yaml.safe_dump({
        "runtime": {"model_dir": str(models), "progress": False, "plots": False},
        "datasets": {"digits": {"name": "digits"}}, "models": [{"zoo": "tt_digits"}],
        "evaluators": [{"name": "clean", "settings": {"n_examples": 20}}]}))
    assert cli_main(["evaluate", "-c", str(config), "--output", str(tmp_path / "eval"), "--zoo", str(zoo)]) == 0
    info = json.loads((tmp_path / "eval" / "model_info" / "tt_digits.json").read_text())
    assert info["clean_acc"] is not None and info["labelaug"]["training"] == "adv_plus"
