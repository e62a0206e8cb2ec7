"""A user's own zoo (./model_zoo, --zoo DIR, RBLA_ZOO) and honest provenance: training args recorded, recipe
departures warned about in one line, no paper authorship for weights not trained by the paper's recipe."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
import torch

from robustbench_labelaug import UserError, load_model
from robustbench_labelaug.models import create_classifier
from robustbench_labelaug.train.checkpoint import RunCheckpointSaver
from robustbench_labelaug.zoo import get_entry, load_entries
from robustbench_labelaug.zoo.entries import parse_recipe, zoo_dir
from robustbench_labelaug.zoo.export import export_checkpoint
from robustbench_labelaug.zoo.user import recipe_departures
from tests.conftest import run_cli_inprocess


def run_checkpoint(folder, **changes):
    """An `rbla train` checkpoint with the FULL args of digits_adv_plus's recipe, changed by ``changes``."""
    args = parse_recipe(get_entry("digits_adv_plus").recipe)
    for k, v in changes.items():
        setattr(args, k, v)
    torch.manual_seed(0)
    model = create_classifier("resnet8_tiny", 10, 1, mean=(0.5,) * 3, std=(0.5,) * 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    folder.mkdir(parents=True, exist_ok=True)
    RunCheckpointSaver(model, opt, torch.optim.lr_scheduler.StepLR(opt, 1), args, checkpoint_dir=str(folder),
                       max_history=1).save_checkpoint(epoch=0)
    return folder / "last.pth.tar"


def test_recipe_departures():
    from robustbench_labelaug.train.args import check_fair_args

    entry = get_entry("digits_adv_plus")
    # the args as a run records them: defaults that depend on other flags resolved (--val-split None -> 0.0) by
    # what validate_args applies before training; a run trained by the recipe departs from nothing, so the
    # demo's models keep the paper's authorship
    recorded = parse_recipe(entry.recipe)
    check_fair_args(recorded)
    args = vars(recorded)
    assert args["val_split"] == 0.0
    assert recipe_departures(entry.recipe, {**args, "output": "elsewhere", "device": "cuda"}) == {}
    found = recipe_departures(entry.recipe, {**args, "epochs": 2, "seed": 42})
    assert found == {"--epochs": [15, 2], "--seed": [0, 42]}


def test_export_under_a_packaged_name_warns_and_model_info_drops_the_paper(tmp_path, monkeypatch):
    from robustbench_labelaug.runner.config import load_config
    from robustbench_labelaug.runner.run import evaluate_config

    monkeypatch.chdir(tmp_path)
    ckpt = run_checkpoint(tmp_path / "run", epochs=2, seed=42)
    with pytest.warns(UserWarning, match=r"not trained by its zoo recipe: --epochs 2 \(recipe: 15\), --seed 42 "
                                         r"\(recipe: 0\)") as caught:
        exported = export_checkpoint(ckpt, "digits_adv_plus", tmp_path / "models")
    assert len(str(caught[0].message).splitlines()) == 1
    assert exported.departures == {"--epochs": [15, 2], "--seed": [0, 42]} and exported.entry is None
    (tmp_path / "cfg.yaml").write_text(
        "runtime: {device: cpu, progress: false, plots: false, model_dir: models}\n"
        "datasets: {digits: {name: digits}}\nmodels: [digits_adv_plus]\n"
        "evaluators: [{name: clean, settings: {n_examples: 20}}]\n")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        [path] = evaluate_config(load_config(tmp_path / "cfg.yaml"), output=tmp_path / "out", leaderboard=False)
    assert any("--epochs 2 (recipe: 15)" in str(x.message) for x in w)
    info = json.loads(path.read_text())
    assert "Amerehi" not in json.dumps(info) and info["authors"] in ("", "N/A")
    assert info["labelaug"]["recipe_departures"]["--epochs"] == [15, 2]
    assert info["labelaug"]["trained_with"]["epochs"] == 2 and info["labelaug"]["trained_with"]["seed"] == 42
    assert "not trained by the zoo recipe" in info["name"]


def test_user_zoo_export_load_and_clash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RBLA_ZOO", raising=False)
    ckpt = run_checkpoint(tmp_path / "run", epochs=2, seed=42)
    r = run_cli_inprocess("zoo", "export", "--checkpoint", str(ckpt), "--name", "my_advplus", "--model-dir",
                          "models")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "model_zoo" / "my_advplus.yaml").is_file() and "user zoo entry" in r.stdout
    model = load_model("my_advplus", model_dir="models")            # found beside the packaged entries
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 10)
    entry = get_entry("my_advplus")
    assert entry.paper is None and entry.trained_with["epochs"] == 2 and entry.origin.endswith("model_zoo")
    assert "--epochs 2" in entry.recipe and "--seed 42" in entry.recipe and "--experiment my_advplus" in entry.recipe
    listed = run_cli_inprocess("zoo", "list", "--model-dir", "models")
    assert "my_advplus" in listed.stdout and "digits_adv_plus" in listed.stdout
    # --zoo DIR and RBLA_ZOO
    r = run_cli_inprocess("zoo", "export", "--checkpoint", str(ckpt), "--name", "other_model", "--model-dir",
                          "models", "--zoo", "elsewhere")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "elsewhere" / "other_model.yaml").is_file()
    with pytest.raises(UserError, match="unknown zoo model 'other_model'"):
        load_model("other_model", model_dir="models")
    assert load_model("other_model", model_dir="models", zoo="elsewhere") is not None
    monkeypatch.setenv("RBLA_ZOO", str(tmp_path / "elsewhere"))
    assert "other_model" in load_entries() and "my_advplus" not in load_entries()
    monkeypatch.delenv("RBLA_ZOO")
    # a user entry may not take a packaged name
    shutil.copy(zoo_dir() / "digits_std.yaml", tmp_path / "model_zoo" / "digits_std.yaml")
    with pytest.raises(UserError, match="'digits_std' is a packaged zoo model"):
        load_entries()
    bad = run_cli_inprocess("zoo", "list")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
