"""Model zoo: entry validation, installed zoo, export -> load_model round trip, RobustBench registration, and the
clear errors for every way a checkpoint can be wrong."""

from __future__ import annotations

import argparse
import copy
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from robustbench_labelaug import KWayClassifier, UserError, create_classifier, load_model
from robustbench_labelaug.cli import main as cli_main
from robustbench_labelaug.models import pretrained as pretrained_probe
from robustbench_labelaug.results.vocab import default_protocol, parse_training_label
from robustbench_labelaug.train.checkpoint import RunCheckpointSaver
from robustbench_labelaug.zoo import (
    export_checkpoint,
    file_sha256,
    get_entry,
    load_entries,
    load_entry_file,
    sidecar_path,
    validate_entry,
)

from .conftest import REPO

DIGITS_EPS = get_entry("digits_adv_plus").eps  # the digits threat model, as the zoo entries set it

NAMES = {"resnet50_std", "resnet50_adv", "resnet50_adv_plus", "digits_std", "digits_adv", "digits_adv_plus",
         "cifar10_preactresnet18_std", "cifar10_preactresnet18_adv", "cifar10_preactresnet18_adv_plus",
         # the methods Adv+ is compared with (issue 20; docs/methods.md)
         "digits_trades", "digits_adv_cfa", "digits_adv_plus_cfa", "digits_frl", "cifar10_preactresnet18_trades",
         "cifar10_preactresnet18_trades_cfa", "cifar10_preactresnet18_trades_frl", "digits_trades_cfa",
         # the two controls of Adv+ (issue 28)
         "digits_adv_mix", "digits_adv_plus_dummy"}
# /work/shared/paper.md, Tables 1-2 (errors %): clean, mCE, PGD-40, class-wise (mean, sd) clean / ReaL / PGD-40
PAPER = {"std": (20.87, 58.06, 94.06, (20.87, 15.65), (19.43, 12.78), (94.06, 4.71)),
         "adv": (32.18, 71.41, 70.32, (32.17, 17.78), (29.00, 15.24), (70.32, 15.77)),
         "adv_plus": (26.70, 66.43, 32.70, (26.69, 16.76), (24.27, 14.04), (32.70, 15.33))}


def write_training_checkpoint(run_dir: Path, arch: str, num_classes: int, num_ops: int, mode: str,
                              eps: float = DIGITS_EPS, delta: float = 0.03, dataset: str = "digits", seed: int = 0) -> Path:
    """A real ``rbla train`` checkpoint (``RunCheckpointSaver``), random weights."""
    torch.manual_seed(seed)
    model = create_classifier(arch, num_classes, num_ops)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    args = argparse.Namespace(model=arch, dataset=dataset, adv_mode=mode, adv_eps=eps, la_delta=delta, la_ops=num_ops,
                              la_protocol=default_protocol(mode))  # a fresh run records its protocol
    run_dir.mkdir(parents=True, exist_ok=True)
    saver = RunCheckpointSaver(model, opt, sched, args, checkpoint_dir=str(run_dir), max_history=1)
    saver.save_checkpoint(epoch=0)
    return run_dir / "last.pth.tar"


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    return write_training_checkpoint(tmp_path_factory.mktemp("run"), "resnet8_tiny", 10, 1, "adv_plus")


# ------------------------------------------------------------------------------------------------------------
# Entries
# ------------------------------------------------------------------------------------------------------------


def test_every_entry_validates_and_matches_the_paper():
    entries = load_entries()
    assert set(entries) == NAMES
    for name, entry in entries.items():
        assert entry.checkpoint == f"{name}.pt" and entry.threat_model == "Linf"
        plus = entry.training.startswith("adv_plus")
        assert (entry.num_ops, entry.delta) == ((1, 0.03) if plus else (0, None))
        mode, fair, protocol = parse_training_label(entry.training)  # the --fair policy is the suffix
        assert f"--experiment {name}" in entry.recipe and f"--adv-mode {mode} " in entry.recipe
        if fair != "none":
            assert f"--fair {fair} " in entry.recipe
        if protocol is not None:  # every Adv+ recipe (and every control) names its protocol
            assert f"--la-protocol {protocol} " in entry.recipe or (mode, protocol) == ("adv", "adversarial")
        if entry.starts_from is not None:  # a fine-tuned entry (FRL's hot start) starts from an adversarial one
            start = entries[entry.starts_from]
            assert start.dataset == entry.dataset and start.training in ("adv", "trades") and start.starts_from is None
            assert f"--initial-checkpoint ./output/train/{start.name}/last.pth.tar" in entry.recipe
        if entry.dataset == "imagenet":
            assert (entry.architecture, entry.num_classes, entry.eps) == ("resnet50.tv_in1k", 1000, 0.03)
            assert entry.preprocessing == "Res256Crop224" and "--pretrained" in entry.recipe
            assert "--amp --amp-dtype bfloat16 --channels-last" in entry.recipe  # the GPU flags
            clean, mce, pgd, cw_clean, cw_real, cw_pgd = PAPER[entry.training]
            rep = entry.reported
            assert (rep["clean_error"], rep["mce"], rep["pgd_error"]) == (clean, mce, pgd)
            assert [tuple(rep["classwise"][k].values()) for k in ("clean", "real", "pgd")] == [cw_clean, cw_real,
                                                                                               cw_pgd]
        elif entry.dataset == "cifar10":  # Madry's recipe: eps 8/255, PGD-10 with step 2/255
            assert (entry.architecture, entry.num_classes, entry.reported) == ("preactresnet18_cifar", 10, None)
            assert entry.eps == pytest.approx(8 / 255) and entry.sha256 is None
        else:
            assert (entry.architecture, entry.num_classes, entry.reported) == ("resnet8_tiny", 10, None)
    assert get_entry("resnet50_std").pretrained_fallback and not get_entry("resnet50_adv").pretrained_fallback


def _valid() -> dict:
    return yaml.safe_load((REPO / "model_zoo" / "digits_adv_plus.yaml").read_text())


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("recipe"), "missing fields ['recipe']"),
    (lambda d: d.update(bogus=1), "unknown fields ['bogus']"),
    (lambda d: d.update(num_classes="ten"), "field 'num_classes' must be an integer >= 2"),
    (lambda d: d.update(dataset="cifar"), "field 'dataset' must be one of digits, imagenet"),
    (lambda d: d.update(eps=3), "field 'eps' must be a number in (0, 1]"),
    (lambda d: d.update(std=[0.5, 0.5]), "field 'std' must be a list of 3 positive numbers"),
    (lambda d: d.update(sha256="abc"), "field 'sha256' must be 64 lowercase hex digits"),
    (lambda d: d.update(num_ops=0), "training adv_plus needs num_ops >= 1"),
    (lambda d: d.update(checkpoint="other.pt"), "checkpoint must be 'digits_adv_plus.pt'"),
    (lambda d: d.update(architecture="no_such_net"), "is not a timm model"),
    (lambda d: d.update(num_classes=12), "dataset 'digits' has 10 classes"),
    (lambda d: d.update(recipe=d["recipe"].replace(f"--adv-eps {DIGITS_EPS}", "--adv-eps 0.3")),
     f"recipe has --adv-eps 0.3 but the entry says {DIGITS_EPS}"),
    (lambda d: d.update(recipe=d["recipe"] + " --no-such-flag"), "recipe does not parse"),
    (lambda d: d.update(reported={"clean_error": 120}), "field 'reported.clean_error' must be an error in percent"),
    (lambda d: d.update(reported={"classwise": {"pgd": {"mean": 5}}}), "field 'reported.classwise.pgd' needs 'sd'"),
    (lambda d: d.update(reported={"classwise": {"pdg": {"mean": 5, "sd": 1}}}), "must be one of clean"),
    (lambda d: d["paper"].update(year=2024), "field 'paper' has an unknown key 'year'"),
    (lambda d: d.update(paper="Amerehi & Healy"), "field 'paper' "),
    (lambda d: d.update(mean=[0.5, 0.5, "x"]), "field 'mean' must be a list of 3 numbers"),
    (lambda d: d.update(pretrained_fallback="yes"), "field 'pretrained_fallback' must be true or false"),
    (lambda d: d["paper"].pop("title"), "field 'paper' needs 'title'"),
])
def test_broken_entry_fails_with_a_clear_message(change, message):
    data = copy.deepcopy(_valid())
    validate_entry(copy.deepcopy(data), "digits_adv_plus.yaml")  # the unbroken entry passes
    change(data)
    with pytest.raises(UserError) as err:
        validate_entry(data, "digits_adv_plus.yaml")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_entry_file_errors(tmp_path):
    renamed = tmp_path / "other_name.yaml"
    renamed.write_text(yaml.safe_dump(_valid()))
    with pytest.raises(UserError, match="differs from the file name 'other_name'"):
        load_entry_file(renamed)
    broken = tmp_path / "digits_adv_plus.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(UserError, match="is not valid YAML at line"):
        load_entry_file(broken)


@pytest.mark.slow
def test_non_editable_install_ships_the_zoo(tmp_path):
    """Build a wheel from a copy of the sources, install it with pip --target and load the zoo from there."""
    src = tmp_path / "src"
    src.mkdir()
    for item in ("pyproject.toml", "robustbench_labelaug", "model_zoo", "eval_configs", "study_configs", "README.md",
                 "LICENSE"):
        if (REPO / item).is_dir():
            shutil.copytree(REPO / item, src / item, ignore=shutil.ignore_patterns("__pycache__"))
        elif (REPO / item).is_file():
            shutil.copy(REPO / item, src / item)
    if not (src / "README.md").exists():
        (src / "README.md").write_text("robustbench-labelaug\n")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    built = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w",
                            str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, (built.stdout + built.stderr)[-3000:]
    wheel = next((tmp_path / "dist").glob("robustbench_labelaug-*.whl"))
    names_in_wheel = set(zipfile.ZipFile(wheel).namelist())
    assert {f"robustbench_labelaug/model_zoo/{n}.yaml" for n in NAMES} <= names_in_wheel
    configs = {p.name for p in (REPO / "eval_configs").glob("*.yaml")}
    assert configs and {f"robustbench_labelaug/eval_configs/{n}" for n in configs} <= names_in_wheel
    studies = {p.name for p in (REPO / "study_configs").glob("*.yaml")}
    assert studies and {f"robustbench_labelaug/study_configs/{n}" for n in studies} <= names_in_wheel

    target = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)], check=True,
                   capture_output=True, timeout=300)
    script = ("import robustbench_labelaug.zoo as z; print(z.entries.zoo_dir()); print(' '.join(z.list_entries()))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(target), "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 0, out.stderr[-2000:]
    zoo_dir, names = out.stdout.strip().splitlines()[-2:]
    assert Path(zoo_dir).resolve() == (target / "robustbench_labelaug" / "model_zoo").resolve()
    assert set(names.split()) == NAMES


# ------------------------------------------------------------------------------------------------------------
# Export and load_model
# ------------------------------------------------------------------------------------------------------------


def test_export_then_load_model_round_trip(tmp_path, digits_run):
    models = tmp_path / "models"
    path, sha = export_checkpoint(digits_run, "digits_adv_plus", models)
    assert path == models / "digits" / "Linf" / "digits_adv_plus.pt"
    assert sha == file_sha256(path) and sidecar_path(path).read_text().split() == [sha, "digits_adv_plus.pt"]
    zoo_state = torch.load(path, map_location="cpu", weights_only=True)
    assert {"optimizer", "scheduler", "rng"}.isdisjoint(zoo_state)
    assert (zoo_state["arch"], zoo_state["num_classes"], zoo_state["num_ops"]) == ("resnet8_tiny", 10, 1)
    assert zoo_state["args"]["adv_mode"] == "adv_plus" and zoo_state["name"] == "digits_adv_plus"

    model = load_model("digits_adv_plus", model_dir=models)
    assert isinstance(model, KWayClassifier) and not model.training
    source = create_classifier("resnet8_tiny", 10, 1)
    source.load_state_dict(torch.load(digits_run, weights_only=True)["state_dict"])
    x = torch.rand(5, 3, 32, 32)
    with torch.no_grad():
        expected = source.eval()(x)
        assert expected.shape == (5, 11)
        assert torch.equal(model(x), expected[:, :10])

    # exporting the same run again is a no-op; different weights are refused unless overwrite
    assert export_checkpoint(digits_run, "digits_adv_plus", models) == (path, sha)
    other = write_training_checkpoint(tmp_path / "other", "resnet8_tiny", 10, 1, "adv_plus", seed=1)
    with pytest.raises(UserError, match="already exists with different weights: pass --overwrite"):
        export_checkpoint(other, "digits_adv_plus", models)
    assert file_sha256(path) == sha
    path2, sha2 = export_checkpoint(other, "digits_adv_plus", models, overwrite=True)
    assert path2 == path and sha2 != sha and read_sha(path) == sha2
    load_model("digits_adv_plus", model_dir=models)


def read_sha(path: Path) -> str:
    return sidecar_path(path).read_text().split()[0]


def test_export_refuses_a_run_that_is_not_the_entry(tmp_path):
    std_run = write_training_checkpoint(tmp_path / "std", "resnet8_tiny", 10, 0, "std")
    with pytest.raises(UserError, match="has num_ops 0 but zoo entry 'digits_adv_plus' has 1"):
        export_checkpoint(std_run, "digits_adv_plus", tmp_path / "models")
    eps_run = write_training_checkpoint(tmp_path / "eps", "resnet8_tiny", 10, 0, "adv", eps=0.3)
    with pytest.raises(UserError, match=f"has --adv-eps 0.3 but zoo entry 'digits_adv' has {DIGITS_EPS}"):
        export_checkpoint(eps_run, "digits_adv", tmp_path / "models")
    assert not (tmp_path / "models").exists()
    # a name outside the zoo is exported under the run's dataset
    path, _ = export_checkpoint(std_run, "my_digits_model", tmp_path / "models")
    assert path == tmp_path / "models" / "digits" / "Linf" / "my_digits_model.pt"


def test_unknown_name_lists_the_zoo():
    with pytest.raises(UserError, match="unknown zoo model 'nope': use one of .*digits_adv_plus.*resnet50_std"):
        load_model("nope")


def test_missing_checkpoint_names_path_recipe_and_export(tmp_path):
    with pytest.raises(UserError) as err:
        load_model("digits_adv", model_dir=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "digits" / "Linf" / "digits_adv.pt") in msg
    assert "`rbla train --dataset digits --model resnet8_tiny" in msg and "--adv-mode adv" in msg
    assert (f"`rbla zoo export --checkpoint ./output/train/digits_adv/last.pth.tar --name digits_adv "
            f"--model-dir {tmp_path}`") in msg
    with pytest.raises(UserError, match="is a digits model, not imagenet"):
        load_model("digits_adv", model_dir=tmp_path, dataset="imagenet")


def test_sha256_mismatch(tmp_path, digits_run):
    path, sha = export_checkpoint(digits_run, "digits_adv_plus", tmp_path)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"has sha256 .* but digits_adv_plus.pt.sha256 says .*: the file is damaged"):
        load_model("digits_adv_plus", model_dir=tmp_path)


class _Payload:
    """Unpickling this would create ``marker`` (arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_pickle_payload_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "digits" / "Linf" / "digits_adv_plus.pt"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:
        torch.save({"state_dict": {}, "payload": _Payload(marker)}, f, pickle_module=pickle)
    with pytest.raises(UserError, match="holds objects that weights-only loading refuses"):
        load_model("digits_adv_plus", model_dir=tmp_path)
    assert not marker.exists()


def _write_zoo_file(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def test_wrong_head_architecture_and_partial_state_dict(tmp_path, digits_run):
    models = tmp_path / "models"
    good = torch.load(export_checkpoint(digits_run, "digits_adv_plus", models)[0], weights_only=True)
    path = models / "digits" / "Linf" / "digits_adv.pt"  # no sidecar: loaded unverified, then checked

    wrong_k = create_classifier("resnet8_tiny", 9, 0)
    _write_zoo_file(path, {**good, "num_classes": 9, "num_ops": 0, "state_dict": wrong_k.state_dict()})
    with pytest.raises(UserError, match="has num_classes=9 but zoo entry 'digits_adv' has 10"):
        load_model("digits_adv", model_dir=models)

    _write_zoo_file(path, {**good, "num_ops": 0, "arch": "resnet18"})
    with pytest.raises(UserError, match="has arch='resnet18' but zoo entry 'digits_adv' has 'resnet8_tiny'"):
        load_model("digits_adv", model_dir=models)

    # K+M = 11 weights labelled K=10, M=0: the strict load refuses the shapes
    _write_zoo_file(path, {**good, "num_ops": 0})
    with pytest.raises(UserError, match="does not fit the model .*size mismatch"):
        load_model("digits_adv", model_dir=models)

    partial = create_classifier("resnet8_tiny", 10, 0).state_dict()
    partial = {k: v for k, v in partial.items() if not k.startswith("net.stages.2")}
    _write_zoo_file(path, {**good, "num_ops": 0, "state_dict": partial})
    with pytest.raises(UserError, match=r"partial or foreign state dict \(\d+ missing \(net.stages.2"):
        load_model("digits_adv", model_dir=models)


def test_pretrained_fallback_fails_fast_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained_probe, "_pretrained_cached", lambda arch: False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError) as err:
        load_model("resnet50_std", model_dir=tmp_path)
    assert "HF_HUB_OFFLINE is set" in str(err.value) and str(tmp_path / "imagenet/Linf/resnet50_std.pt") in str(err.value)

    def unreachable(*args, **kwargs):
        raise OSError("no route")

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(pretrained_probe.socket, "create_connection", unreachable)
    with pytest.raises(UserError, match=r"weights cannot be fetched either \(huggingface.co:443 is unreachable"):
        load_model("resnet50_std", model_dir=tmp_path)
    with pytest.raises(UserError, match="no checkpoint for 'resnet50_adv'"):  # no fallback for trained models
        load_model("resnet50_adv", model_dir=tmp_path)


# ------------------------------------------------------------------------------------------------------------
# RobustBench
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_robustbench_load_model_returns_the_same_model(tmp_path, monkeypatch):
    from robustbench_labelaug.compat import import_robustbench

    import_robustbench()
    import gdown
    from robustbench.data import get_preprocessing
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel
    from robustbench.utils import load_model as rb_load_model

    registered = model_dicts[BenchmarkDataset.imagenet][ThreatModel.Linf]
    assert {"resnet50_std", "resnet50_adv", "resnet50_adv_plus"} <= set(registered)
    assert not any(n.startswith("digits_") for d in model_dicts.values() for m in d.values() for n in m)

    run = write_training_checkpoint(tmp_path / "run", "resnet50", 1000, 1, "adv_plus", eps=0.03, dataset="imagenet")
    models = tmp_path / "models"
    export_checkpoint(run, "resnet50_adv_plus", models)
    ours = load_model("resnet50_adv_plus", model_dir=models)
    theirs = rb_load_model("resnet50_adv_plus", model_dir=str(models), dataset="imagenet", threat_model="Linf")
    assert type(theirs) is KWayClassifier and not theirs.training
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        out = ours(x)
        assert out.shape == (1, 1000) and torch.equal(out, theirs(x))
    prep = get_preprocessing(BenchmarkDataset.imagenet, ThreatModel.Linf, "resnet50_adv_plus", None)
    assert "Resize(size=256" in repr(prep) and "CenterCrop(size=(224, 224))" in repr(prep)

    # a missing file stops with our message before any Google-Drive download
    monkeypatch.setattr(gdown, "download", lambda *a, **k: pytest.fail("RobustBench tried to download"))
    with pytest.raises(UserError) as err:
        rb_load_model("resnet50_adv", model_dir=str(tmp_path / "empty"), dataset="imagenet", threat_model="Linf")
    assert f"no checkpoint at {tmp_path / 'empty/imagenet/Linf/resnet50_adv.pt'}: train it" in str(err.value)
    assert f"--model-dir {tmp_path / 'empty'}`" in str(err.value) and "<model_dir>" not in str(err.value)
    # RobustBench's loader stays strict for our models (it relaxes some ImageNet loads to strict=False)
    state = torch.load(models / "imagenet" / "Linf" / "resnet50_adv_plus.pt", weights_only=True)
    state["state_dict"] = {k: v for k, v in state["state_dict"].items() if k.startswith("net.fc")}
    _write_zoo_file(tmp_path / "partial" / "imagenet" / "Linf" / "resnet50_adv_plus.pt", state)
    with pytest.raises(RuntimeError, match="Missing key"):
        rb_load_model("resnet50_adv_plus", model_dir=str(tmp_path / "partial"), dataset="imagenet")


@pytest.mark.slow
def test_registration_is_lazy_and_robustbench_is_optional():
    script = ("import sys, warnings\n"
              "sys.modules['robustbench'] = None  # as if robustbench were not installed\n"
              "with warnings.catch_warnings():\n"
              "    warnings.simplefilter('error', UserWarning)\n"
              "    import robustbench_labelaug\n"
              "print(len(robustbench_labelaug.zoo.list_entries()))\n"
              "del sys.modules['robustbench']  # now it appears: registration happens when its zoo is imported\n"
              "from robustbench_labelaug.compat import import_robustbench\n"
              "import_robustbench()\n"
              "from robustbench.model_zoo import model_dicts\n"
              "from robustbench.model_zoo.enums import BenchmarkDataset as D, ThreatModel as T\n"
              "print(sorted(n for n in model_dicts[D.imagenet][T.Linf] if n.startswith('resnet50_')))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-2:] == [str(len(NAMES)), "['resnet50_adv', 'resnet50_adv_plus', 'resnet50_std']"]


# ------------------------------------------------------------------------------------------------------------
# rbla zoo
# ------------------------------------------------------------------------------------------------------------


def test_cli_list_show_export(tmp_path, digits_run, capsys):
    models = tmp_path / "models"
    assert cli_main(["zoo", "list", "--model-dir", str(models)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()}
    assert NAMES <= set(rows) and f"{len(NAMES)} entries, all valid" in out
    assert rows["digits_adv_plus"] == ["digits_adv_plus", "digits", "adv_plus", "resnet8_tiny", "10+1", str(DIGITS_EPS), "0.03",
                                       "missing"]
    assert rows["resnet50_std"] == ["resnet50_std", "imagenet", "std", "resnet50.tv_in1k", "1000+0", "0.03", "-", "missing"]
    assert cli_main(["zoo", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert set(listed) == NAMES and listed["resnet50_adv_plus"]["reported"]["pgd_error"] == 32.70

    assert cli_main(["zoo", "export", "--checkpoint", str(digits_run), "--name", "digits_adv_plus",
                     "--model-dir", str(models)]) == 0
    assert "digits/Linf/digits_adv_plus.pt (sha256 " in capsys.readouterr().out
    cli_main(["zoo", "list", "--model-dir", str(models)])
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["digits_adv_plus"].endswith("sha256 ok") and lines["digits_adv"].endswith("missing")

    assert cli_main(["zoo", "show", "resnet50_adv_plus", "--model-dir", str(models)]) == 0
    out = capsys.readouterr().out
    assert "rbla train --dataset imagenet" in out and "imagenet/Linf/resnet50_adv_plus.pt (missing)" in out

    other = write_training_checkpoint(tmp_path / "other", "resnet8_tiny", 10, 1, "adv_plus", seed=1)
    assert cli_main(["zoo", "export", "--checkpoint", str(other), "--name", "digits_adv_plus",
                     "--model-dir", str(models)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rbla zoo: error: ") and "pass --overwrite" in err and "\n" not in err


def test_digits_entries_use_the_registrys_threat_model_eps():
    """The digits threat model's eps is one fact (the dataset registry's), which every digits entry states."""
    from robustbench_labelaug.data import get_dataset_spec
    from robustbench_labelaug.zoo.entries import list_entries

    eps = get_dataset_spec("digits").eps_of("Linf")
    assert eps == DIGITS_EPS
    assert all(get_entry(n).eps == eps for n in list_entries() if get_entry(n).dataset == "digits")
