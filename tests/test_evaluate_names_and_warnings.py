"""rbla evaluate's reporting (issue 18, section 4): missing models listed (not a stop), result names that say what
ran, a warning where a selection leaves classes without examples, EvalResult read by headline() as stored, --help
lists every config."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from robustbench_labelaug.evaluation import EvalContext, create_evaluator, evaluator_class
from robustbench_labelaug.evaluation.base import warn_uncovered_classes
from robustbench_labelaug.runner.config import load_config, packaged_configs
from tests.conftest import run_cli_inprocess


def test_evaluate_help_lists_every_packaged_config():
    r = run_cli_inprocess("evaluate", "--help")
    names = list(packaged_configs())
    assert {"digits", "paper_imagenet", "robustbench_cifar10", "robustbench_imagenet"} <= set(names)
    flat = " ".join(r.stdout.split())
    assert all(n in flat for n in names)


def test_fast_result_names_say_what_ran():
    cfg = load_config("digits")
    ids = {e.id: (e.effective_id(False, cfg.fast), e.effective_id(True, cfg.fast)) for e in cfg.evaluators}
    assert ids["pgd40_sound"] == ("pgd40_sound", "pgd10_sound")
    assert ids["pgd40_paper"] == ("pgd40_paper", "pgd10_paper")
    assert ids["clean"] == ("clean", "clean")


def test_evaluate_fast_lists_missing_models_and_evaluates_the_rest(tmp_path, monkeypatch):
    from robustbench_labelaug.models import create_classifier
    from robustbench_labelaug.train.checkpoint import RunCheckpointSaver
    from robustbench_labelaug.zoo.entries import get_entry, parse_recipe
    from robustbench_labelaug.zoo.export import export_checkpoint

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = create_classifier("resnet8_tiny", 10, 0, mean=(0.5,) * 3, std=(0.5,) * 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    RunCheckpointSaver(model, opt, torch.optim.lr_scheduler.StepLR(opt, 1), parse_recipe(get_entry("digits_std").recipe),
                       checkpoint_dir=str(tmp_path / "run"), max_history=1).save_checkpoint(epoch=0)
    export_checkpoint(tmp_path / "run" / "last.pth.tar", "digits_std", tmp_path / "models")
    (tmp_path / "cfg.yaml").write_text(textwrap.dedent("""
        runtime: {device: cpu, progress: false, plots: false, model_dir: models, output: out}
        datasets: {digits: {name: digits}}
        models: [digits_std, digits_adv, digits_adv_plus]
        evaluators:
          - {name: clean}
          - {id: pgd40_sound, name: pgd, settings: {eps: 0.2, steps: 40}, fast: {steps: 2}}
        fast: {n_examples: 10}
    """))
    r = run_cli_inprocess("evaluate", "-c", "cfg.yaml", "--fast")
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert err[0].startswith("missing: digits_adv: no checkpoint") and "make it: `rbla train --dataset digits" in err[0]
    assert "rbla zoo export" in err[0]
    assert err[1].startswith("missing: digits_adv_plus: ")
    assert len(err) == 3 and "--models digits_std" in err[2] and "2 of 3 models" in err[2]
    assert (tmp_path / "out-fast" / "model_info" / "digits_std.json").is_file()
    assert (tmp_path / "out-fast" / "digits_std" / "results" / "pgd2_sound.json").is_file()  # PGD-2 ran


class ClassSorted(Dataset):
    """The digits test split sorted by class (a class-sorted file), with ``targets``."""

    def __init__(self, ds) -> None:
        self.ds, self.order = ds, np.argsort(np.asarray(ds.targets), kind="stable")
        self.targets = np.asarray(ds.targets)[self.order]

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i):
        return self.ds[int(self.order[i])]


def test_autoattack_default_selection_leaving_classes_warns(digits_test):
    data = ClassSorted(digits_test)
    aa = create_evaluator("autoattack", eps=0.2, n_examples=16)          # selection: robustbench (first n)
    with pytest.warns(UserWarning, match=r"leave 9 of 10 classes without any .*selection: class_balanced"):
        warn_uncovered_classes(aa, data, aa.example_indices(data), 10)
    balanced = create_evaluator("autoattack", eps=0.2, n_examples=16, selection="class_balanced")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_uncovered_classes(balanced, data, balanced.example_indices(data), 10)


def test_run_warns_when_classes_have_no_examples(trained_digits_model, digits_test):
    from robustbench_labelaug import k_way

    with pytest.warns(UserWarning, match=r"clean: the 5 examples .* leave 5 of 10 classes .*n_examples >= 10"):
        create_evaluator("clean", n_examples=5).run(k_way(trained_digits_model, 10), digits_test,
                                                     EvalContext(dataset="digits", progress=False))


def test_headline_takes_the_result_object(trained_digits_model, digits_test):
    from robustbench_labelaug import k_way

    model = k_way(trained_digits_model, 10)
    ctx = EvalContext(dataset="digits", progress=False)
    for name, settings in (("clean", {"n_examples": 20}), ("pgd", {"eps": 0.2, "steps": 2, "n_examples": 20})):
        result = create_evaluator(name, **settings).run(model, digits_test, ctx)
        cls = evaluator_class(name)
        assert cls.headline(result) == cls.headline(result.to_dict())
        assert cls.measured(result) == cls.measured(result.to_dict())
    assert result["classwise"].keys() == {"pgd"} and result.get("nope", 1) == 1
