"""Every registry entry, the way timm's test_models.py walks list_models(): evaluators, attacks, datasets (with
their class names on the leaderboard) and zoo model sources, all kept by the one Registry of registry.py.

For each entry: its key is its own name; a bad setting raises UserError (one line); a tiny run works (an
evaluator's result is JSON-serialisable and a second run comes from the cache without predicting anything)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Subset

from robustbench_labelaug.attacks import ATTACKS
from robustbench_labelaug.data import create_dataset, get_dataset_spec, list_datasets
from robustbench_labelaug.data.registry import DATASETS, class_names, register_dataset
from robustbench_labelaug.errors import UserError
from robustbench_labelaug.evaluation import EVALUATORS, EvalContext, create_evaluator, evaluator_class
from robustbench_labelaug.evaluation.base import Evaluator, Measured
from robustbench_labelaug.registry import Registry
from robustbench_labelaug.zoo.sources import MODEL_SOURCES, SourceKind, load_source, resolve_source

from .fixtures_imagenet import make_imagenet_folder

# Tiny settings per evaluator (a few examples, few steps); every evaluator must be listed.
TINY: dict[str, dict] = {
    "clean": {"n_examples": 8},
    "pgd": {"n_examples": 8, "eps": 0.1, "steps": 2},
    "autoattack": {"n_examples": 4, "eps": 0.3},
    "corruptions": {"n_examples": 4, "corruptions": "gaussian_noise", "severities": [1]},
    "real": {"n_examples": 4},
    "imagenet_x": {"n_examples": 4},
    "masking": {"n_examples": 4, "eps": 0.1, "steps": 2, "eps_sweep": [0.1, 0.5], "steps_sweep": [1, 2],
                "autoattack": False},
    "robustness_curve": {"n_examples": 4, "eps": 0.1, "steps": 5, "points": 5, "autoattack": False},
}
IMAGENET_EVALUATORS = ("real", "imagenet_x")  # need a 1000-class model on official validation file names


def test_every_evaluator_has_tiny_settings():
    assert set(TINY) == set(EVALUATORS)


@pytest.mark.parametrize("key", list(EVALUATORS))
def test_evaluator_key_is_its_name(key):
    cls = evaluator_class(key)
    assert issubclass(cls, Evaluator) and dataclasses.is_dataclass(cls)
    assert cls.name == key and create_evaluator(key).name == key
    assert "run" not in vars(cls), "evaluators use prepare(), not run()"


@pytest.mark.parametrize("key", list(EVALUATORS))
def test_evaluator_bad_settings_raise_user_error(key):
    with pytest.raises(UserError, match="unexpected keyword argument 'no_such_setting'"):
        create_evaluator(key, no_such_setting=1)
    with pytest.raises(UserError, match="n_examples"):
        create_evaluator(key, n_examples=0)
    for f in dataclasses.fields(evaluator_class(key)):  # every declared setting is type-checked
        with pytest.raises(UserError, match=f.name) as info:
            create_evaluator(key, **{f.name: object()})
        assert len(str(info.value).splitlines()) == 1


@pytest.fixture(scope="module")
def imagenet_root(tmp_path_factory):
    from robustbench_labelaug.data import imagenet_wnids

    root = tmp_path_factory.mktemp("imagenet")
    make_imagenet_folder(root, wnids=list(imagenet_wnids()[:2]), per_class=2, train_per_class=1)
    return root


class Linear1000(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * 32 * 32, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


@pytest.mark.parametrize("key", list(EVALUATORS))
def test_evaluator_tiny_run_is_json_and_resumes_from_cache(key, tmp_path, trained_digits_model, digits_test,
                                                           imagenet_root, monkeypatch, one_thread):
    settings = dict(TINY[key])
    if key == "corruptions":
        settings["cache_dir"] = str(tmp_path / "corruption_cache")
    if key in IMAGENET_EVALUATORS:
        model, k = Linear1000().eval(), 1000
        dataset, name = create_dataset("imagenet", imagenet_root, "val", input_size=32), "imagenet"
    else:
        model, k = trained_digits_model, 10
        dataset, name = Subset(digits_test, range(16)), "digits"
        dataset.targets = digits_test.targets[:16]
    ctx = EvalContext(num_classes=k, out_dir=tmp_path / "cache", batch_size=8, progress=False, dataset=name)
    first = create_evaluator(key, **settings).run(model, dataset, ctx).to_dict()
    assert json.loads(json.dumps(first)) == first
    assert first["evaluator"] == key and first["num_examples"] > 0
    headline = evaluator_class(key).headline(first)
    assert headline and all(isinstance(h, Measured) for h in headline)

    def no_predict(*args, **kwargs):
        raise AssertionError("predicted again although every split is cached")

    evaluator = create_evaluator(key, **settings)
    monkeypatch.setattr(type(evaluator), "predict", no_predict)
    second = evaluator.run(model, dataset, ctx).to_dict()
    assert second == first


# -- attacks -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(ATTACKS))
def test_attack_key_is_its_name_and_it_stays_in_the_ball(key, trained_digits_model, digits_test):
    cls = ATTACKS[key]
    assert cls.__name__ == key
    attack = cls(trained_digits_model, eps=0.1, alpha=0.05, steps=2)
    assert attack.attack == key  # torchattacks' own name of the attack
    x, y = digits_test.tensors[0][:4], digits_test.tensors[1][:4]
    adv = attack(x, y)
    assert adv.shape == x.shape and (adv - x).abs().max().item() <= 0.1 + 1e-6


@pytest.mark.parametrize("key", list(ATTACKS))
@pytest.mark.parametrize("bad", [{"eps": 0}, {"eps": 2.0}, {"eps": "8/255"}, {"steps": 0}, {"alpha": -1.0}])
def test_attack_bad_settings_raise_user_error(key, bad, trained_digits_model):
    settings = {"eps": 0.1, "alpha": 0.05, "steps": 2, **bad}
    with pytest.raises(UserError, match=next(iter(bad))):
        ATTACKS[key](trained_digits_model, **settings)


# -- datasets ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list_datasets())
def test_dataset_key_is_its_name_and_it_loads(name, imagenet_root, tmp_path):
    spec = get_dataset_spec(name)
    assert spec.name == name and spec.eval_split in spec.splits
    data_dir = imagenet_root if spec.needs_data_dir else None
    from .fixtures_cifar import write_cifar10, write_cifar100

    writers = {"cifar10": write_cifar10, "cifar100": write_cifar100}  # torchvision's files, generated
    if name in writers:
        writers[name](tmp_path)
        data_dir = tmp_path
    k = spec.count_classes(data_dir)
    names = spec.names_of_classes(data_dir)
    assert names is None or len(names) == k
    for split in spec.splits:
        ds = create_dataset(name, data_dir, split, input_size=32)
        x, y = ds[0][:2]
        assert x.shape == (3, 32, 32) and 0.0 <= float(x.min()) <= float(x.max()) <= 1.0
        assert 0 <= int(y) < k and len(ds) > 0
    assert len(spec.mean) == len(spec.std) == 3 and spec.input_size > 0


@pytest.mark.parametrize("name", list_datasets())
def test_dataset_bad_settings_raise_user_error(name, tmp_path):
    spec = get_dataset_spec(name)
    with pytest.raises(UserError, match="has no split 'holdout'"):
        create_dataset(name, tmp_path, "holdout")
    if spec.needs_data_dir:
        with pytest.raises(UserError, match="needs --data-dir"):
            create_dataset(name, None, spec.eval_split)
        with pytest.raises(UserError, match="does not exist|files missing in"):
            create_dataset(name, tmp_path / "nowhere", spec.eval_split)


def test_unknown_dataset_names_the_registered_ones():
    with pytest.raises(UserError, match="unknown dataset 'cifar7': use one of " + ", ".join(list_datasets())):
        get_dataset_spec("cifar7")


def test_registering_a_dataset_is_one_decorator():
    """What CONTRIBUTING.md tells a contributor to write: one decorated factory is enough for every module."""
    @register_dataset("toy", num_classes=2, mean=(0.5,) * 3, std=(0.5,) * 3, input_size=8,
                      splits={"train": (), "test": ("val",)})
    def create_toy(split, data_dir=None, **options):
        return torch.utils.data.TensorDataset(torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 0, 1]))

    try:
        assert "toy" in list_datasets() and get_dataset_spec("toy").resolve_split("val") == "test"
        assert len(create_dataset("toy", split="val")) == 4
        from robustbench_labelaug.data import dataset_num_classes

        assert dataset_num_classes("toy") == 2
    finally:
        DATASETS.unregister("toy")


# -- class names: the registry's, on the leaderboard ---------------------------------------------------------------


@pytest.mark.parametrize("name", list_datasets())
def test_dataset_class_names_reach_the_leaderboard(name, tmp_path):
    """Every registered dataset's class names (where the registry knows them without a folder) are what a
    model_info built for a model on it carries and what the leaderboard's class-wise figure labels its classes."""
    from robustbench_labelaug.evaluation.declare import model_info_from_results
    from robustbench_labelaug.leaderboard.plots import names_of_classes

    spec = get_dataset_spec(name)
    expected = spec.names_of_classes()
    k = spec.fixed_num_classes
    if k is None or expected is None:  # a generic folder / CIFAR-100: names come from the data, not the registry
        assert class_names(name) is None
        return
    assert len(expected) == k and class_names(name) == expected
    info = model_info_from_results({"key": "m", "dataset": name, "architecture": "a", "training": "std", "num_classes": k,
                                    "num_ops": 0}, {})
    assert info["labelaug"]["class_names"] == expected
    info["labelaug"].pop("class_names")  # an older file without them: the registry again
    assert names_of_classes(info, k) == expected


def test_a_new_dataset_registered_once_gets_class_names_on_the_leaderboard(tmp_path):
    """One register_dataset call (a lazy factory that is never imported) and a model evaluated on it shows up on the
    leaderboard with the dataset's class names on its class-wise figure."""
    from robustbench_labelaug.evaluation.declare import model_info_from_results
    from robustbench_labelaug.leaderboard.cli import render
    from robustbench_labelaug.leaderboard.plots import classwise_figure
    from robustbench_labelaug.results.model_info import load_model_infos

    names = ("apple", "banana", "cherry")
    register_dataset("fruit3", factory="no_such_module:create", num_classes=3, mean=(0.5,) * 3, std=(0.5,) * 3,
                     input_size=16, splits={"test": ()}, class_names=names)
    try:
        errors = [10.0, 20.0, 60.0]
        summary = {"mean": 30.0, "sd": float(np.std(errors)), "worst_error": 60.0, "worst_class": 2,
                   "best_error": 10.0, "best_class": 0}
        results = {"clean": {"evaluator": "clean", "metrics": {"error": 30.0}, "settings": {},
                             "classwise": {"clean": {"error": errors, "summary": summary}}, "protocol": None,
                             "details": {}, "num_examples": 30}}
        info = model_info_from_results({"key": "fruity", "dataset": "fruit3", "architecture": "resnet8_tiny",
                                        "training": "std", "num_classes": 3, "num_ops": 0}, results)
        (tmp_path / "model_info").mkdir()
        (tmp_path / "model_info" / "fruity.json").write_text(json.dumps(info))
        board = render(tmp_path, quiet=True)
        assert board["order"] == ["fruity"] and "| fruity |" in board["markdown"]
        infos = load_model_infos(tmp_path)
        assert infos[0][1]["labelaug"]["class_names"] == list(names)
        fig = classwise_figure(infos)
        assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list(names)
    finally:
        DATASETS.unregister("fruit3")


@pytest.mark.parametrize("name", list_datasets())
def test_dataset_threat_model_eps_and_preprocessing_are_its_entrys(name):
    """Each dataset's default eps (per threat model) and preprocessing live in its registry entry: benchmark()'s
    default_eps and a user zoo entry read them there; a RobustBench dataset's L-inf eps and preprocessing are
    RobustBench's (its Standard models' model_info files, its PREPROCESSINGS)."""
    from robustbench.data import (
        PREPROCESSINGS,  # (this module imported robustbench_labelaug: its shims are in)
    )

    from robustbench_labelaug.api import default_eps
    from robustbench_labelaug.data.registry import default_eps as registry_eps
    from robustbench_labelaug.data.registry import preprocessing_of, robustbench_preprocessing
    from robustbench_labelaug.results.model_info import format_eps
    from robustbench_labelaug.results.vocab import EVALUATED_THREAT_MODELS, THREAT_MODELS
    from robustbench_labelaug.zoo.user import _threat_eps

    spec = get_dataset_spec(name)
    assert set(spec.default_eps) <= set(THREAT_MODELS) and all(0 < e <= 1 for e in spec.default_eps.values())
    assert robustbench_preprocessing(spec.preprocessing) in PREPROCESSINGS
    assert preprocessing_of(name) == spec.preprocessing
    for tm in THREAT_MODELS:
        eps = spec.eps_of(tm)
        assert registry_eps(name, tm) == eps
        if eps is not None and tm in EVALUATED_THREAT_MODELS:
            assert default_eps(name, tm) == eps and _threat_eps(name, tm) == eps
        else:
            with pytest.raises(UserError, match="eps=|L-inf only"):  # pass eps=...; or not an attacked threat
                default_eps(name, tm)
    if spec.robustbench is not None:  # RobustBench's own numbers, from its files (tests/robustbench_model_info)
        standard = sorted((Path(__file__).parent / "robustbench_model_info" / name / "Linf").glob("Standard*.json"))
        for path in standard:
            assert json.loads(path.read_text())["eps"] == format_eps(spec.eps_of("Linf"))
        assert spec.eps_of("Linf") is not None


def test_vocabulary_and_default_datasets_are_robustbenchs():
    """ThreatModel has RobustBench's members; the default datasets are registered (the RobustBench one with
    RobustBench facts)."""
    from robustbench.model_zoo.enums import BenchmarkDataset
    from robustbench.model_zoo.enums import ThreatModel as RBThreatModel

    from robustbench_labelaug.data.registry import DEFAULT_DATASET, ROBUSTBENCH_DEFAULT_DATASET
    from robustbench_labelaug.results.vocab import ThreatModel

    assert {m.value for m in ThreatModel} == {m.value for m in RBThreatModel}
    assert DEFAULT_DATASET in DATASETS and get_dataset_spec(ROBUSTBENCH_DEFAULT_DATASET).robustbench is not None
    rb_datasets = {d.value for d in BenchmarkDataset}
    assert {n for n in list_datasets() if get_dataset_spec(n).robustbench is not None} <= rb_datasets


def test_dataset_metadata_is_read_without_torch():
    """The registry (names, K, class names) and the label files import no torch: the leaderboard needs none."""
    code = (
        "import sys, types\n"
        "from pathlib import Path\n"
        "import importlib.util as u\n"
        # the bare package (its __init__ is lazy in the final layout; here only the data registry is under test)
        "root = Path(u.find_spec('robustbench_labelaug').origin).parent\n"
        "pkg = types.ModuleType('robustbench_labelaug'); pkg.__path__ = [str(root)]\n"
        "sys.modules['robustbench_labelaug'] = pkg\n"
        "from robustbench_labelaug.data.registry import class_names, list_datasets, get_dataset_spec\n"
        "assert [n for n in list_datasets()][:5] == ['digits', 'folder', 'imagenet', 'cifar10', 'cifar100']\n"
        "assert class_names('imagenet')[:2] == ['tench', 'goldfish'] and len(class_names('cifar10')) == 10\n"
        "assert get_dataset_spec('cifar100').count_classes() == 100\n"
        "bad = sorted(m for m in ('torch', 'timm', 'torchvision') if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_imagenet_names_are_timms():
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    assert class_names("imagenet") == [info.index_to_description(i).split(",")[0] for i in range(1000)]


# -- zoo model sources ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", MODEL_SOURCES.names())
def test_model_source_key_is_its_name_and_refuses_bad_names(key, tmp_path):
    kind = MODEL_SOURCES.get(key)
    assert isinstance(kind, SourceKind) and kind.key == key and callable(kind.resolve) and callable(kind.load)
    with pytest.raises(UserError) as info:
        resolve_source({key: "no_such_model_xyz", "num_classes": 10, "dataset": "cifar10"}, tmp_path)
    assert len(str(info.value).splitlines()) == 1 and "no_such_model_xyz" in str(info.value)


def test_timm_source_resolves_and_loads():
    model = load_source(resolve_source({"timm": "resnet8_tiny", "num_classes": 10, "dataset": "digits"}))
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_a_model_entry_names_exactly_one_source():
    with pytest.raises(UserError, match="exactly one of 'robustbench: <name>' or 'timm: <name>'"):
        resolve_source({"robustbench": "a", "timm": "b"})


# -- the mechanism --------------------------------------------------------------------------------------------------


def test_every_registry_is_the_one_mechanism():
    from robustbench_labelaug.attacks import ATTACKS
    from robustbench_labelaug.data.registry import CORRUPTION_FOLDERS

    for registry in (DATASETS, EVALUATORS, ATTACKS, MODEL_SOURCES, CORRUPTION_FOLDERS):
        assert isinstance(registry, Registry) and len(registry) > 0
        with pytest.raises(UserError, match=f"unknown {registry.kind} 'nope': use one of"):
            registry.get("nope")


@pytest.mark.parametrize("name", CORRUPTION_FOLDERS_NAMES := ["imagenet_c", "cifar_c"])
def test_corruption_folder_layouts_resolve(name):
    from robustbench_labelaug.data.registry import CORRUPTION_FOLDERS

    assert sorted(CORRUPTION_FOLDERS.names()) == sorted(CORRUPTION_FOLDERS_NAMES)
    layout = CORRUPTION_FOLDERS.get(name)
    assert layout.name == name and callable(layout.function("check")) and callable(layout.function("split"))


def test_registry_decorator_and_lazy_entries():
    reg: Registry = Registry("widget")
    reg.register("json", "json:dumps")

    @reg.register("mine")
    def mine():
        return 1

    assert reg.names() == ["json", "mine"] and reg.raw("json") == "json:dumps" and reg.get("json") is json.dumps
    assert reg.get("mine") is mine and "mine" in reg
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("mine", print)


def test_the_config_names_every_registered_model_source():
    """An eval config's model keys: a zoo name, a checkpoint, or exactly the registered model sources."""
    from robustbench_labelaug.runner.config import MODEL_SOURCES as CONFIG_SOURCES
    from robustbench_labelaug.runner.config import ModelConfig

    assert CONFIG_SOURCES == ("zoo", "checkpoint", *MODEL_SOURCES.names())
    assert set(CONFIG_SOURCES) <= set(ModelConfig.model_fields)
