"""Model sources: RobustBench models from <model_dir>/<dataset>/<threat_model>/<name>.pt (random weights saved
there, loaded through robustbench.utils.load_model and evaluated), timm models with a local file, and bad input.
No network: every test that could reach RobustBench's downloader replaces it with a failure."""

from __future__ import annotations

import hashlib
import shlex

import numpy as np
import pytest
import torch

from robustbench_labelaug.errors import UserError
from robustbench_labelaug.zoo.sources import (
    load_source,
    resolve_source,
    robustbench_reported,
    robustbench_source,
    timm_source,
)

from .fixtures_cifar import write_cifar10

pytestmark = pytest.mark.filterwarnings("ignore:.*not the official:UserWarning")


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """RobustBench's Google-Drive downloader must never be reached."""
    from robustbench_labelaug.compat import import_robustbench

    import_robustbench()
    import robustbench.utils as rb_utils

    def refuse(*args, **kwargs):
        raise AssertionError("RobustBench tried to download")

    monkeypatch.setattr(rb_utils, "download_gdrive_new", refuse)
    monkeypatch.setattr(rb_utils, "download_gdrive", refuse)


def _rb_entry(name: str, dataset: str = "cifar10"):
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    return model_dicts[BenchmarkDataset(dataset)][ThreatModel.Linf][name]


@pytest.fixture(scope="module")
def wong_dir(tmp_path_factory):
    """RobustBench's Wong2020Fast architecture (PreAct ResNet-18 with mu/sigma), random weights, saved where
    RobustBench expects it."""
    from robustbench_labelaug.compat import import_robustbench

    import_robustbench()
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    net = _rb_entry("Wong2020Fast")["model"]().eval()
    path = root / "cifar10" / "Linf" / "Wong2020Fast.pt"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": net.state_dict()}, path)
    return root, net, path


@pytest.fixture(scope="module")
def cifar_test(tmp_path_factory):
    from robustbench_labelaug.data import create_dataset

    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, n_test=16)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_dataset("cifar10", root, "test")


@pytest.mark.slow
def test_robustbench_model_loads_through_robustbench(wong_dir):
    root, net, path = wong_dir
    src = robustbench_source("Wong2020Fast", "cifar10", "Linf", root,
                             reported={"clean_acc": "83.34", "autoattack_acc": 43.21, "source": "RobustBench"})
    assert src.weights == [path] and src.num_classes == 10 and src.preprocessing is None
    assert src.input["input_size"] == 32
    assert src.fingerprint()["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert src.reported == {"clean_error": pytest.approx(16.66), "autoattack_error": pytest.approx(56.79),
                            "source": "RobustBench"}
    model = load_source(src)
    assert type(model).__name__ == "Wong2020FastNet" and not model.training
    assert model.num_classes == 10 and model.num_ops == 0
    assert model.normalization["mean"] == pytest.approx([0.4914, 0.4822, 0.4465])
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), net(x))  # the saved weights, not a fresh init


@pytest.mark.slow
def test_robustbench_model_evaluated_by_the_evaluators(wong_dir, cifar_test, tmp_path, monkeypatch):
    from robustbench_labelaug.evaluation import EvalContext, create_evaluator

    root, _, _ = wong_dir
    model = load_source(robustbench_source("Wong2020Fast", "cifar10", "Linf", root))
    ctx = EvalContext(num_classes=10, out_dir=tmp_path, batch_size=8, progress=False)
    clean = create_evaluator("clean", n_examples=16).run(model, cifar_test, ctx)
    x = torch.stack([cifar_test[i][0] for i in range(16)])
    with torch.no_grad():
        wrong = (model(x).argmax(1) != torch.tensor(cifar_test.targets[:16])).float().mean().item()
    assert clean.num_examples == 16 and clean.metrics["error"] == pytest.approx(100 * wrong)
    assert len(clean.classwise["clean"]["error"]) == 10
    pgd = create_evaluator("pgd", eps=8 / 255, steps=3, n_examples=8).run(model, cifar_test, ctx)
    assert pgd.num_examples == 8 and pgd.metrics["robust_error"] >= pgd.metrics.get("clean_error", 0.0)

    # the class-wise plot names CIFAR-10's classes when the model_info records them
    from robustbench_labelaug.evaluation.declare import model_info_from_results
    from robustbench_labelaug.leaderboard import plots

    meta = {"key": "Wong2020Fast", "dataset": "cifar10", "architecture": "PreActResNet-18", "num_classes": 10,
            "num_ops": 0, "threat_model": "Linf"}
    info = model_info_from_results(meta, {"clean": clean.to_dict()}, extra={"class_names": cifar_test.classes})
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path, *formats: figures.append(fig) or path)
    plots.plot_classwise([("Wong2020Fast", info)], tmp_path / "classwise.png")
    labels = [t.get_text() for t in figures[0].axes[0].get_xticklabels()]  # "airplane\nn=2": name, then n
    assert [label.split("\n")[0] for label in labels] == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def test_missing_checkpoint_names_the_path_without_downloading(tmp_path):
    with pytest.raises(UserError) as err:
        robustbench_source("Rice2020Overfitting", "cifar10", "Linf", tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "cifar10" / "Linf" / "Rice2020Overfitting.pt") in msg and "\n" not in msg
    assert "robustbench.github.io" in msg and "drive.google.com" in msg


def test_standard_r50_needs_torchvision_weights_in_the_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(UserError, match=r"checkpoints/resnet50-0676ba61.pth.*download.pytorch.org"):
        robustbench_source("Standard_R50", "imagenet", "Linf", tmp_path)


def test_unknown_names_list_the_closest(tmp_path):
    with pytest.raises(UserError, match=r"closest: Wong2020Fast.*does no such check"):
        robustbench_source("Wong2020Fas", "cifar10", "Linf", tmp_path)
    with pytest.raises(UserError, match="no dataset 'cifar11'"):
        robustbench_source("Standard", "cifar11", "Linf", tmp_path)
    with pytest.raises(UserError, match="no threat model 'Linfinity'"):
        robustbench_source("Standard", "cifar10", "Linfinity", tmp_path)
    with pytest.raises(UserError, match="exactly one of"):
        resolve_source({"robustbench": "Standard", "timm": "resnet18"})


def test_checkpoint_that_does_not_fit(tmp_path):
    from robustbench_labelaug.models import create_classifier

    path = tmp_path / "cifar10" / "Linf" / "Wong2020Fast.pt"
    path.parent.mkdir(parents=True)
    torch.save(create_classifier("resnet8_tiny", 10).net.state_dict(), path)  # another architecture
    with pytest.raises(UserError, match=r"does not fit RobustBench's architecture for 'Wong2020Fast'") as err:
        load_source(robustbench_source("Wong2020Fast", "cifar10", "Linf", tmp_path))
    assert "\n" not in str(err.value)
    path.write_bytes(b"truncated download")
    with pytest.raises(UserError, match="cannot be read"):
        load_source(robustbench_source("Wong2020Fast", "cifar10", "Linf", tmp_path))


def test_timm_source_with_a_local_file(tmp_path):
    import timm

    torch.manual_seed(0)
    net = timm.create_model("resnet18_cifar", num_classes=10).eval()
    path = tmp_path / "r18.pth"
    torch.save(net.state_dict(), path)
    src = resolve_source({"timm": "resnet18_cifar", "num_classes": 10, "dataset": "cifar10", "pretrained_file": str(path)})
    assert src.fingerprint()["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    model = load_source(src)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), net((x - model.normalize.mean) / model.normalize.std), atol=1e-5)
    with pytest.raises(UserError, match="does not fit timm's 'resnet18_cifar' with num_classes=100"):
        load_source(timm_source("resnet18_cifar", 100, "cifar100", path))
    with pytest.raises(UserError, match="does not exist"):
        timm_source("resnet18_cifar", 10, "cifar10", tmp_path / "missing.pth")
    with pytest.raises(UserError, match="closest: resnet18"):
        timm_source("resnet18x", 10, "cifar10")
    with pytest.raises(UserError, match="needs num_classes"):
        timm_source("resnet18", None, "cifar10")


def test_reported_conversion():
    assert robustbench_reported({"clean_acc": "94.78", "autoattack_acc": "0.0"}) == {"clean_error": pytest.approx(5.22),
                                                                                     "autoattack_error": 100.0}
    assert robustbench_reported({"autoattack_acc": ""}) == {}
    with pytest.raises(UserError, match="percentage"):
        robustbench_reported({"clean_acc": 140})


def test_eval_configs_name_known_robustbench_models():
    """Every `robustbench:` model of the packaged configs is in RobustBench's zoo, with reported numbers."""
    from pathlib import Path

    import yaml

    from robustbench_labelaug.zoo.sources import robustbench_models

    folder = Path(__file__).resolve().parents[1] / "eval_configs"
    for name in ("robustbench_cifar10", "robustbench_imagenet"):
        cfg = yaml.safe_load((folder / f"{name}.yaml").read_text())
        for m in cfg["models"]:
            assert m["robustbench"] in robustbench_models(m["dataset"], m["threat_model"])
            rep = robustbench_reported(m["reported"])
            assert 0 <= rep["clean_error"] <= 100 and 0 <= rep["autoattack_error"] <= 100
        from robustbench_labelaug.evaluation import create_evaluator

        names = {e["name"] for e in cfg["evaluators"]}
        assert {"clean", "pgd", "autoattack", "corruptions", "masking"} <= names
        for e in cfg["evaluators"]:  # every evaluator accepts its settings, full and --fast
            create_evaluator(e["name"], **e.get("settings", {}))
            create_evaluator(e["name"], **{**e.get("settings", {}), **e.get("fast", {})})


@pytest.mark.slow
@pytest.mark.parametrize("entry", ["cifar10_preactresnet18_std", "cifar10_preactresnet18_adv",
                                   "cifar10_preactresnet18_adv_plus"])
def test_cifar_zoo_recipes_run_one_step(entry, tmp_path):
    """The zoo entry's own recipe, on 2 generated training images (one batch, one epoch), PGD-10 included."""
    from robustbench_labelaug.train.args import parse_args
    from robustbench_labelaug.train.run import train
    from robustbench_labelaug.zoo import get_entry

    write_cifar10(tmp_path / "data", n_train_per_batch=[2, 0, 0, 0, 0], n_test=2)
    e = get_entry(entry)
    words = shlex.split(e.recipe.replace("$CIFAR_DIR", str(tmp_path / "data")))[2:]
    args = parse_args(words + ["--epochs", "1", "-b", "2", "--output", str(tmp_path / "out"), "--no-progress",
                               "--device", "cpu", "--log-interval", "0"])
    assert args.model == "preactresnet18_cifar" and args.dataset == "cifar10" and args.lr == 0.1
    if e.training != "std":
        assert args.adv_eps == pytest.approx(8 / 255) and args.adv_alpha == pytest.approx(2 / 255)
        assert args.adv_steps == 10
    result = train(args)
    assert result.epochs_run == 1 and result.checkpoint.is_file()
    state = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    assert state["num_classes"] == 10 and state["num_ops"] == e.num_ops


def test_cifar_zoo_entry_loads_through_robustbench(tmp_path):
    """The CIFAR-10 zoo entries are registered in RobustBench's zoo: an exported checkpoint (normalize.*/net.* keys)
    loads through robustbench.utils.load_model and through the `robustbench:` source."""
    from robustbench.utils import load_model as rb_load_model

    from robustbench_labelaug.zoo import build_model, get_entry, register_robustbench

    register_robustbench()
    entry = get_entry("cifar10_preactresnet18_adv_plus")
    torch.manual_seed(0)
    reference = build_model(entry).eval()
    path = tmp_path / "cifar10" / "Linf" / entry.checkpoint
    path.parent.mkdir(parents=True)
    torch.save({"arch": entry.architecture, "num_classes": 10, "num_ops": 1, "mean": list(entry.mean),
                "std": list(entry.std), "state_dict": reference.model.state_dict()}, path)
    x = torch.rand(2, 3, 32, 32)
    model = rb_load_model(entry.name, model_dir=str(tmp_path), dataset="cifar10", threat_model="Linf")
    with torch.no_grad():
        assert model(x).shape == (2, 10) and torch.equal(model(x), reference(x))
        assert torch.equal(load_source(robustbench_source(entry.name, "cifar10", "Linf", tmp_path))(x), reference(x))


def test_partial_imagenet_checkpoint_is_refused(tmp_path):
    """RobustBench loads ImageNet checkpoints non-strictly when normalisation keys are missing: one holding only the
    fc layer would load silently. The source refuses it."""
    net = _rb_entry("Salman2020Do_R50", "imagenet")["model"]()
    path = tmp_path / "imagenet" / "Linf" / "Salman2020Do_R50.pt"
    path.parent.mkdir(parents=True)
    torch.save({k[len("model."):]: v for k, v in net.state_dict().items() if k.startswith("model.fc.")}, path)
    src = robustbench_source("Salman2020Do_R50", "imagenet", "Linf", tmp_path)
    assert src.preprocessing == "Res256Crop224" and src.input["input_size"] == 224 and src.num_classes == 1000
    with pytest.raises(UserError, match=r"lacks \d+ of the \d+ weights.*non-strictly"):
        load_source(src)
    # the complete checkpoint (inner network's keys, as RobustBench ships them) loads
    torch.save({k[len("model."):]: v for k, v in net.state_dict().items() if k.startswith("model.")}, path)
    model = load_source(robustbench_source("Salman2020Do_R50", "imagenet", "Linf", tmp_path))
    assert model.normalization["mean"] == pytest.approx([0.485, 0.456, 0.406])


@pytest.mark.slow
def test_rbla_evaluate_config_with_a_robustbench_model_on_cifar10(wong_dir, tmp_path):
    """The issue's user path: `robustbench: <name>` + a CIFAR-10 folder (+ CIFAR-10-C) in an eval config ->
    model_info with per-class numbers, CIFAR-10's class names and RobustBench's reported numbers kept apart."""
    import json

    import yaml

    from robustbench_labelaug.runner import evaluate_config, load_config

    from .fixtures_cifar import write_cifar_c

    root, net, _ = wong_dir
    data = tmp_path / "cifar"
    write_cifar10(data, n_test=20)
    from robustbench_labelaug.data import create_dataset

    labels = np.asarray(create_dataset("cifar10", data, "test").targets)
    corrupted = write_cifar_c(data, labels, corruptions=("gaussian_noise", "fog"))
    cfg_path = tmp_path / "rb.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "runtime": {"batch_size": 8, "device": "cpu", "model_dir": str(root), "output": str(tmp_path / "out"),
                    "progress": False, "plots": False},
        "datasets": {"cifar10": {"name": "cifar10", "data_dir": str(data), "split": "test"}},
        "models": [{"robustbench": "Wong2020Fast", "threat_model": "Linf",
                    "reported": {"clean_acc": 83.34, "autoattack_acc": 43.21}}],
        "evaluators": [{"name": "clean"}, {"name": "pgd", "settings": {"eps": 8 / 255, "steps": 2,
                                                                       "n_examples": 10}},
                       {"name": "corruptions", "settings": {"data_dir": str(data), "severities": [1],
                                                            "corruptions": ["gaussian_noise", "fog"]}}],
    }))
    written = evaluate_config(load_config(cfg_path))
    info = json.loads(written[0].read_text())
    block = info["labelaug"]
    assert info["name"] == "Wong2020Fast" and block["class_names"][0] == "airplane"
    assert block["reported"]["clean_error"] == pytest.approx(16.66)          # RobustBench's, kept apart
    x = torch.stack([create_dataset("cifar10", data, "test")[i][0] for i in range(20)])
    with torch.no_grad():
        wrong = (net(x).argmax(1).numpy() != labels).mean() * 100
    assert block["measured"]["clean_error"] == pytest.approx(wrong)          # the saved weights, measured
    assert len(block["results"]["clean"]["classwise"]["clean"]["error"]) == 10
    corr = block["results"]["corruptions"]["details"]
    assert corr["source"] == "cifar_c"                                          # RobustBench's npy files, not generated
    noisy = torch.from_numpy(corrupted["gaussian_noise"][0]).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        noisy_wrong = (net(noisy).argmax(1).numpy() != labels).mean() * 100
    assert corr["E"]["gaussian_noise"][0] == pytest.approx(noisy_wrong)       # severity 1, image for image

    # the same config under torchrun (2 ranks, gloo): identical results, one writer
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
                           "-m", "robustbench_labelaug", "evaluate", "-c", str(cfg_path), "--output",
                           str(tmp_path / "ddp"), "--no-progress"], capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ddp = json.loads((tmp_path / "ddp" / "model_info" / "Wong2020Fast.json").read_text())["labelaug"]["results"]

    def timeless(r: dict) -> dict:
        return {**r, "details": {k: v for k, v in r["details"].items() if k != "wall_seconds"}}

    for name in ("clean", "pgd", "corruptions"):
        assert timeless(ddp[name]) == timeless(block["results"][name]), name
