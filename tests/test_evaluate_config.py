"""rbla evaluate: configs -> schema-valid model_info JSONs, resuming without recomputation, clear config errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from robustbench_labelaug.cli import main as cli_main
from robustbench_labelaug.errors import UserError
from robustbench_labelaug.evaluation.base import Evaluator, class_interleaved
from robustbench_labelaug.results.model_info import MODEL_INFO_FIELDS, format_eps, validate_model_info
from robustbench_labelaug.runner import evaluate_config, load_config
from robustbench_labelaug.zoo import get_entry

REPO = Path(__file__).resolve().parents[1]
N_EXAMPLES = 32
DIGITS_EPS = get_entry("digits_adv_plus").eps  # the digits threat model, as the zoo entries set it


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, trained_digits_model) -> Path:
    """The trained tiny digits model saved the way rbla train saves it (K=10, M=1, the digits_adv_plus recipe)."""
    model = trained_digits_model
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth.tar"
    torch.save({"version": 1, "epoch": 1, "arch": "resnet8_tiny", "num_classes": 10, "num_ops": 1,
                "mean": model.normalize.mean.flatten().tolist(), "std": model.normalize.std.flatten().tolist(),
                "state_dict": model.state_dict(),
                "args": {"adv_mode": "adv_plus", "la_protocol": "authors", "la_delta": 0.03, "adv_eps": DIGITS_EPS,
                         "dataset": "digits",
                         "model": "resnet8_tiny"}}, path)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, checkpoint) -> Path:
    """A model dir holding that checkpoint as the zoo's digits_adv_plus (rbla zoo export)."""
    from robustbench_labelaug.zoo import export_checkpoint

    models = tmp_path_factory.mktemp("models")
    export_checkpoint(checkpoint, "digits_adv_plus", models)
    return models


def _config(tmp_path: Path, model_dir: Path, **overrides) -> Path:
    cfg = {
        "title": "tiny",
        "runtime": {"batch_size": 16, "device": "cpu", "output": str(tmp_path / "out"), "progress": False,
                    "plots": False, "model_dir": str(model_dir)},
        "datasets": {"digits": {"name": "digits", "split": "test"}},
        "models": [{"zoo": "digits_adv_plus", "name": "tiny"}],
        "evaluators": [{"name": "clean"},
                       {"id": "pgd5", "name": "pgd",
                        "settings": {"protocol": "sound", "eps": DIGITS_EPS, "steps": 5, "n_examples": N_EXAMPLES},
                        "fast": {"steps": 2}}],
        "fast": {"n_examples": 16},
    }
    cfg.update(overrides)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _digits_predictions(model) -> tuple[np.ndarray, np.ndarray]:
    from robustbench_labelaug.data import create_dataset

    x, y = create_dataset("digits", split="test").tensors
    with torch.no_grad():
        pred = model(x)[:, :10].argmax(1)
    return y.numpy(), pred.numpy()


def test_evaluate_writes_schema_valid_model_info(tmp_path, model_dir, trained_digits_model, capsys):
    assert cli_main(["evaluate", "-c", str(_config(tmp_path, model_dir)), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("tiny: clean err ") and "PGD-5 err" in out.splitlines()[0]
    path = tmp_path / "out" / "model_info" / "tiny.json"
    info = json.loads(path.read_text())
    validate_model_info(info, str(path))
    assert set(info) == set(MODEL_INFO_FIELDS) | {"labelaug"}
    for field in ("name", "dataset", "architecture", "eps", "clean_acc", "footnote"):
        assert isinstance(info[field], str), field
    assert info["dataset"] == "digits" and info["architecture"] == "resnet8_tiny" and info["eps"] == format_eps(DIGITS_EPS)
    assert info["name"] == "Narrowing Class-Wise Robustness Gaps in Adversarial Training"  # the zoo's paper
    assert info["autoattack_acc"] is None and info["reported"] == "" and info["number_forward_passes"] == 1
    # measured numbers agree with predictions made here, independently of the evaluators
    y, pred = _digits_predictions(trained_digits_model)
    assert info["clean_acc"] == f"{100 * np.mean(pred == y):.2f}"
    block = info["labelaug"]
    assert (block["training"], block["num_classes"], block["num_ops"], block["delta"]) == ("adv_plus", 10, 1, 0.03)
    assert block["zoo"] == "digits_adv_plus" and len(block["fingerprint"]["sha256"]) == 64
    assert set(block["results"]) == {"clean", "pgd5"}
    per_class = block["results"]["clean"]["classwise"]["clean"]["error"]
    assert len(per_class) == 10 and per_class[3] == pytest.approx(100 * np.mean(pred[y == 3] != 3))
    pgd = block["results"]["pgd5"]
    assert pgd["num_examples"] == N_EXAMPLES and pgd["protocol"] == "sound"
    chosen = class_interleaved(y, N_EXAMPLES)  # the evaluators' n_examples are spread over the classes
    subset_clean = 100 * np.mean(pred[chosen] != y[chosen])
    assert pgd["metrics"]["clean_error"] == pytest.approx(subset_clean)
    assert subset_clean <= block["measured"]["pgd_error"] == pgd["metrics"]["robust_error"] <= 100
    assert block["measured"]["protocols"] == {"pgd5": "PGD-5 (sound)"}
    assert block["measured"]["classwise"]["pgd"] == {"source": "pgd5", "key": "pgd",
                                                     "summary": pgd["classwise"]["pgd"]["summary"]}
    assert (tmp_path / "out" / "leaderboard.md").read_text().count("| tiny |") == 1


def test_checkpoint_models_take_their_metadata_from_the_checkpoint(tmp_path, checkpoint):
    config = _config(tmp_path, tmp_path, models=[{"name": "mine", "checkpoint": str(checkpoint)}],
                     evaluators=[{"name": "clean", "settings": {"n_examples": 8}}])
    info = json.loads(evaluate_config(load_config(config))[0].read_text())
    block = info["labelaug"]
    assert (block["training"], block["num_classes"], block["num_ops"], block["eps"]) == ("adv_plus", 10, 1, DIGITS_EPS)
    assert block["checkpoint"] == str(checkpoint) and len(block["fingerprint"]["sha256"]) == 64
    assert block["results"]["clean"]["num_examples"] == 8


def test_evaluate_resumes_without_recomputing(tmp_path, model_dir, monkeypatch):
    from robustbench_labelaug.evaluation.pgd import PGDEvaluator

    cfg = load_config(_config(tmp_path, model_dir))
    first = evaluate_config(cfg)[0]
    before = json.loads(first.read_text())
    results = tmp_path / "out" / "tiny" / "results"
    mtimes = {p.name: p.stat().st_mtime_ns for p in results.iterdir()}

    def refuse(*args, **kwargs):
        raise AssertionError("a finished evaluator ran again")

    # finished model: every evaluator result is reused; nothing is run (the model is not even loaded)
    monkeypatch.setattr(Evaluator, "run", refuse)
    monkeypatch.setattr("robustbench_labelaug.runner.per_model.load_resolved_model", refuse)
    assert evaluate_config(cfg) == [first]
    assert json.loads(first.read_text())["labelaug"]["results"] == before["labelaug"]["results"]
    assert {p.name: p.stat().st_mtime_ns for p in results.iterdir()} == mtimes
    monkeypatch.undo()

    # interrupted after the attack finished its split: the cached split is scored again, not attacked again
    (results / "pgd5.json").unlink()
    monkeypatch.setattr(PGDEvaluator, "predict", refuse)
    evaluate_config(cfg)
    again = json.loads(first.read_text())["labelaug"]["results"]["pgd5"]
    assert again["metrics"] == before["labelaug"]["results"]["pgd5"]["metrics"]
    assert again["classwise"]["pgd"]["error"] == before["labelaug"]["results"]["pgd5"]["classwise"]["pgd"]["error"]


def test_changed_settings_are_refused_not_mixed(tmp_path, model_dir):
    evaluate_config(load_config(_config(tmp_path, model_dir)))
    changed = _config(tmp_path, model_dir, evaluators=[
        {"id": "pgd5", "name": "pgd", "settings": {"eps": DIGITS_EPS, "steps": 6, "n_examples": N_EXAMPLES}}])
    with pytest.raises(UserError, match="other settings or data"):
        evaluate_config(load_config(changed))


def test_fast_caps_examples_in_its_own_folder(tmp_path, model_dir):
    cfg = load_config(_config(tmp_path, model_dir))
    path = evaluate_config(cfg, fast=True)[0]
    assert path == tmp_path / "out-fast" / "model_info" / "tiny.json"
    results = json.loads(path.read_text())["labelaug"]["results"]
    # the id says what ran: 'pgd5' with --fast's steps: 2 is stored as 'pgd2'
    assert results["clean"]["num_examples"] == 16 and results["pgd2"]["num_examples"] == 16
    assert results["pgd2"]["settings"]["steps"] == 2


def test_missing_zoo_checkpoint_names_the_fix(tmp_path, capsys):
    path = _config(tmp_path, tmp_path / "empty_models")
    assert cli_main(["evaluate", "-c", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no checkpoint for zoo model 'digits_adv_plus'" in err and "rbla zoo show" in err


def _write_yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


BASE = """
datasets: {digits: {name: digits}}
models: [{name: m, checkpoint: CKPT}]
evaluators: [{name: clean}]
"""


@pytest.mark.parametrize("text, message", [
    (BASE + "bogus: 1\n", "unknown key(s) ['bogus']"),
    (BASE.replace("{name: clean}", "{name: nope}"), "unknown evaluator 'nope'"),
    (BASE.replace("{name: clean}", "{name: clean, steps: 3}"), "unknown key(s) ['steps'] in evaluators[0]"),
    (BASE.replace("{name: clean}", "{name: clean}, {name: clean}"), "appear twice"),
    (BASE.replace("CKPT", "/nonexistent/model.pth.tar"), "does not exist"),
    (BASE.replace("name: m, checkpoint: CKPT", "zoo: m, checkpoint: CKPT"), "exactly one of 'zoo'"),
    (BASE.replace("{name: digits}", "{name: imagenet, data_dir: '${RBLA_TEST_UNSET_DIR}'}"),
     "RBLA_TEST_UNSET_DIR, which is not set"),
    (BASE.replace("models: [{name: m, checkpoint: CKPT}]", "models: []"), "'models' must be a non-empty list"),
    (BASE + "runtime: {batch_size: 0}\n", "batch_size must be >= 1"),
    ("models: [\n", "not valid YAML"),
    # model overrides are validated before they reach model_info (issue 9)
    (BASE.replace("checkpoint: CKPT}", "checkpoint: CKPT, delta: 1.5}"), "delta must be a number in [0, 1), got 1.5"),
    (BASE.replace("checkpoint: CKPT}", "checkpoint: CKPT, delta: -2}"), "delta must be a number in [0, 1), got -2"),
    (BASE.replace("checkpoint: CKPT}", "checkpoint: CKPT, eps: -3}"), "eps (the training eps) must be a number"),
    (BASE.replace("checkpoint: CKPT}", "checkpoint: CKPT, eps: abc}"), "'eps' must be a number or null, got 'abc'"),
    (BASE.replace("checkpoint: CKPT}", "checkpoint: CKPT, training: bogus}"), "training 'bogus' is not known"),
    (BASE.replace("checkpoint: CKPT}", "checkpoint: CKPT, threat_model: L7}"), "threat_model 'L7' is not known"),
    (BASE.replace("checkpoint: CKPT}", "checkpoint: CKPT, num_classes: 1}"), "num_classes must be >= 2"),
    (BASE + "runtime: {device: gpu9}\n", "runtime.device 'gpu9' is not known"),
    (BASE + "runtime: {progress: maybe}\n", "'progress' must be true or false"),
    # the schema is pydantic's, strict: no "2" for 2, no "yes" for true; bounds named
    (BASE + "runtime: {num_workers: '2'}\n", "runtime: 'num_workers' must be an integer, got '2'"),
    (BASE + "runtime: {seed: -1}\n", "runtime: 'seed' must be >= 0, got -1"),
    (BASE + "runtime: {plots: 'yes'}\n", "runtime: 'plots' must be true or false, got 'yes'"),
    (BASE + "runtime: {bogus_key: 1}\n", "unknown key(s) ['bogus_key'] in runtime: use batch_size, device"),
    (BASE.replace("{name: digits}", "{name: digits, crop_pct: high}"), "datasets.digits: 'crop_pct' must be a number"),
    (BASE.replace("{name: clean}", "{name: clean, settings: [1]}"), "evaluators[0]: 'settings' must be a mapping"),
    (BASE.replace("{name: digits}", "{name: digits, split: holdout}"), "has no split 'holdout'"),
    (BASE.replace("{name: digits}", "{name: digits, subset: robustbench}"), "subset 'robustbench' is not known"),
    # every evaluator's settings, also the --fast ones, fail before the first evaluator runs
    (BASE.replace("{name: clean}", "{name: clean}, {name: pgd, settings: {eps: 5}}"),
     "evaluators[1] ('pgd'): pgd: eps must be a number in (0, 1]"),
    (BASE.replace("{name: clean}", "{name: clean}, {name: pgd, fast: {steps: 0}}"),
     "evaluators[1] ('pgd') with --fast: pgd: steps must be an integer >= 1"),
    (BASE.replace("{name: clean}", "{name: clean}, {name: masking, settings: {tolerance: -1}}"),
     "masking: tolerance must be a number >= 0"),
    (BASE + "fast: {n_examples: 0}\n", "fast: n_examples must be an integer >= 1"),
])
def test_bad_config_exits_2_with_one_line(tmp_path, checkpoint, capsys, monkeypatch, text, message):
    monkeypatch.delenv("RBLA_TEST_UNSET_DIR", raising=False)
    path = _write_yaml(tmp_path, text.replace("CKPT", str(checkpoint)))
    assert cli_main(["evaluate", "-c", str(path), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "o" / "model_info").exists()


def test_bad_evaluator_setting_fails_before_any_work(tmp_path, checkpoint, monkeypatch, capsys):
    """The clean evaluator listed first must not run (nor anything be written) when a later one is misconfigured."""
    import robustbench_labelaug.runner.per_model as run

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the config was fully validated")

    monkeypatch.setattr(run, "load_resolved_model", refuse)
    text = BASE.replace("{name: clean}", "{name: clean}, {name: autoattack, settings: {version: fast}}")
    path = _write_yaml(tmp_path, text.replace("CKPT", str(checkpoint)))
    assert cli_main(["evaluate", "-c", str(path), "--output", str(tmp_path / "o")]) == 2
    assert "autoattack: version 'fast' is not known" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_model_k_must_match_the_dataset_k(tmp_path, checkpoint, monkeypatch, capsys):
    """A K=10 checkpoint on a 2-class folder: one line before any evaluator runs (not 'clean err 100.00')."""
    from PIL import Image

    import robustbench_labelaug.runner.per_model as run

    for cls in ("cat", "dog"):
        (tmp_path / "data" / "val" / cls).mkdir(parents=True)
        Image.new("RGB", (32, 32), (10, 20, 30)).save(tmp_path / "data" / "val" / cls / "a.png")
    monkeypatch.setattr(run, "load_resolved_model", lambda *a, **k: pytest.fail("model loaded"))
    text = BASE.replace("{name: digits}", f"{{name: folder, data_dir: '{tmp_path / 'data'}', input_size: 32}}")
    path = _write_yaml(tmp_path, text.replace("CKPT", str(checkpoint)))
    assert cli_main(["evaluate", "-c", str(path), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model 'm' has K=10 classes but dataset 'digits' (folder) has 2" in err
    assert not (tmp_path / "o").exists()


def test_unknown_model_selection_exits_2(tmp_path, model_dir, capsys):
    path = _config(tmp_path, model_dir)
    assert cli_main(["evaluate", "-c", str(path), "--models", "tiny,other"]) == 2
    assert "--models names ['other']" in capsys.readouterr().err


def test_env_vars_expand_in_paths(tmp_path, checkpoint, monkeypatch):
    monkeypatch.setenv("RBLA_TEST_CKPT_DIR", str(checkpoint.parent))
    cfg = load_config(_write_yaml(tmp_path, BASE.replace("CKPT", f"'${{RBLA_TEST_CKPT_DIR}}/{checkpoint.name}'")))
    assert cfg.models[0].checkpoint == str(checkpoint)


@pytest.mark.parametrize("name", ["digits.yaml", "paper_imagenet.yaml", "robustbench_cifar10.yaml",
                                  "robustbench_imagenet.yaml"])
def test_shipped_configs_validate(name, monkeypatch, tmp_path):
    for var in ("IMAGENET_DIR", "IMAGENET_C_DIR", "CIFAR_DIR"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    cfg = load_config(REPO / "eval_configs" / name)
    assert cfg.models and cfg.evaluators
    protocols = {e.settings.get("protocol", "sound") for e in cfg.evaluators if e.name == "pgd"}
    # the RobustBench leaderboards compare with RobustBench: sound protocol only
    assert protocols == ({"sound"} if name.startswith("robustbench") else {"sound", "paper"})
    if name.startswith("robustbench"):
        assert all(m.robustbench for m in cfg.models) and all(m.reported for m in cfg.models)
    assert {"clean", "pgd", "autoattack", "corruptions", "masking"} <= {e.name for e in cfg.evaluators}
    from robustbench_labelaug.evaluation import create_evaluator

    for fast in (False, True):  # every evaluator accepts its settings, full and --fast
        for e in cfg.evaluators:
            evaluator = create_evaluator(e.name, **e.effective_settings(fast, cfg.fast))
            if fast:
                assert evaluator.n_examples <= cfg.fast["n_examples"], e.id


@pytest.mark.slow
def test_torchrun_two_ranks_match_one_process(tmp_path, model_dir):
    """Under torchrun the evaluators shard the images and only rank 0 writes: same numbers as one process."""
    import os
    import subprocess
    import sys

    config = _config(tmp_path, model_dir)
    single = evaluate_config(load_config(config), output=tmp_path / "single")[0]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--standalone", "-m", "robustbench_labelaug", "evaluate", "-c", str(config),
                           "--output", str(tmp_path / "ddp"), "--no-progress"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("tiny: clean err") == 1  # one summary line: rank 0 only
    ddp, one = (json.loads(p.read_text())["labelaug"]["results"]
                for p in (tmp_path / "ddp" / "model_info" / "tiny.json", single))
    assert ddp["clean"]["metrics"] == one["clean"]["metrics"]
    assert ddp["clean"]["classwise"]["clean"]["error"] == one["clean"]["classwise"]["clean"]["error"]
    # PGD's random starts are seeded per example, so two ranks attack every point exactly as one process does
    assert ddp["pgd5"]["num_examples"] == one["pgd5"]["num_examples"] == N_EXAMPLES
    def timeless(r: dict) -> dict:
        return {**r, "details": {k: v for k, v in r["details"].items() if k != "wall_seconds"}}

    assert timeless(ddp["pgd5"]) == timeless(one["pgd5"])  # every number but the wall time


def test_digits_config_matches_the_zoo_entries():
    """The embedded config evaluates the digits zoo models at their own threat model's eps."""
    from robustbench_labelaug.zoo import get_entry

    cfg = load_config(REPO / "eval_configs" / "digits.yaml")
    entries = [get_entry(m.zoo) for m in cfg.models]
    assert sorted(e.training for e in entries) == ["adv", "adv_plus", "std"]
    for e in cfg.evaluators:
        if e.name in ("autoattack", "masking") or e.settings.get("protocol", "sound") == "sound" and e.name == "pgd":
            assert {entry.eps for entry in entries} == {e.settings["eps"]}, e.id


def test_robustbench_subset_keeps_its_order_names_and_labels(tmp_path):
    from robustbench_labelaug.data import create_dataset, imagenet_wnids
    from robustbench_labelaug.data.subsets import robustbench_image_ids, robustbench_imagenet_subset

    from .fixtures_imagenet import make_imagenet_folder

    rb_ids = robustbench_image_ids()
    assert len(rb_ids) == 5000 and len({i.split("/")[0] for i in rb_ids[:100]}) > 50  # classes mixed
    first = rb_ids[:5]
    make_imagenet_folder(tmp_path, val_file_ids=[int(i[-13:-5]) for i in first], size=16)
    folder = create_dataset("imagenet", tmp_path, "val", input_size=16)
    subset = robustbench_imagenet_subset(folder, "rb", first)
    assert [subset.filename(i) for i in range(len(subset))] == [i.split("/")[1] for i in first]
    wnid_index = {w: k for k, w in enumerate(imagenet_wnids())}
    assert subset.targets == [wnid_index[i.split("/")[0]] for i in first]
    assert subset[0][1] == subset.targets[0]
    with pytest.raises(UserError, match="lacks 4995 of RobustBench's 5000 test images"):
        robustbench_imagenet_subset(folder, "rb")


def test_imagenet_pipeline_real_imagenet_x_corruptions_and_plots(tmp_path):
    """A 1000-class model on a small ImageNet-layout folder (official file names) through clean, ReaL,
    ImageNet-X, generated corruptions and PGD: one model_info with every block, the table, and all figures."""
    from robustbench_labelaug import create_classifier
    from robustbench_labelaug.leaderboard.cli import render

    from .fixtures_imagenet import make_imagenet_folder

    make_imagenet_folder(tmp_path / "imagenet", wnids=["n01440764", "n01443537", "n01484850", "n01491361"],
                         per_class=3, size=40)
    torch.manual_seed(0)
    model = create_classifier("resnet8_tiny", 1000, 0)
    ckpt = tmp_path / "in1k.pth.tar"
    torch.save({"arch": "resnet8_tiny", "num_classes": 1000, "num_ops": 0,
                "mean": model.normalize.mean.flatten().tolist(), "std": model.normalize.std.flatten().tolist(),
                "state_dict": model.state_dict(), "args": {"adv_mode": "std", "dataset": "imagenet"}}, ckpt)
    config = _config(
        tmp_path, tmp_path, runtime={"batch_size": 8, "device": "cpu", "output": str(tmp_path / "out"),
                                     "progress": False, "plots": True},
        datasets={"in": {"name": "imagenet", "data_dir": str(tmp_path / "imagenet"), "input_size": 32}},
        models=[{"name": "tiny1k", "checkpoint": str(ckpt)}],
        evaluators=[{"name": "clean"}, {"name": "real"}, {"name": "imagenet_x"},
                    {"name": "corruptions", "settings": {"corruptions": ["gaussian_noise", "fog"],
                                                         "severities": [1, 3], "cache_dir": str(tmp_path / "cc")}},
                    {"name": "pgd", "settings": {"eps": 0.03, "steps": 2}}])
    info = json.loads(evaluate_config(load_config(config))[0].read_text())
    validate_model_info(info)
    m = info["labelaug"]["measured"]
    assert {"clean_error", "real_error", "imagenet_x_error", "mce", "pgd_error"} <= set(m)
    assert set(m["classwise"]) == {"clean", "real", "pgd"}
    table = info["labelaug"]["results"]["corruptions"]["details"]["E"]
    assert info["corruptions_acc"] == f"{100 - np.mean([v for row in table.values() for v in row]):.2f}"
    assert info["corruptions_mce"] is None  # AlexNet-normalised mCE only on real ImageNet-C
    plots = tmp_path / "out" / "plots"
    for name in ("classwise_errors.png", "corruption_errors.png", "imagenet_x_error.png",
                 "imagenet_x_error_ratio.png"):
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    markdown = render(tmp_path / "out", quiet=True)["markdown"]
    assert "ReaL err" in markdown and "| tiny1k | std |" in markdown


@pytest.mark.slow
def test_jobs_run_the_runners_tasks_in_workers_with_the_same_results(tmp_path, model_dir):
    """``rbla evaluate --jobs 2``: one task per model and evaluator in worker processes (their output in logs/),
    then the same model_info as one process writes."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = evaluate_config(load_config(_config(tmp_path / "one", model_dir)))[0]
    assert run_cli_main(["evaluate", "-c", str(_config(tmp_path / "two", model_dir)), "--jobs", "2"]) == 0
    two = tmp_path / "two" / "out" / "model_info" / "tiny.json"
    first, second = (json.loads(p.read_text())["labelaug"]["results"] for p in (one, two))
    assert set(first) == set(second) == {"clean", "pgd5"}
    for key in first:
        assert second[key]["metrics"] == first[key]["metrics"]
        assert second[key]["classwise"] == first[key]["classwise"]
    assert sorted(p.name for p in (tmp_path / "two" / "out" / "logs").glob("*.log")) == [
        "out_tiny_clean.log", "out_tiny_pgd5.log"]


def run_cli_main(argv: list[str]) -> int:
    from robustbench_labelaug.cli import main

    return main(argv)
