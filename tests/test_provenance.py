"""Issue 27 items 1-2: a benchmark() Report is comparable from one call (to_model_info writes its evaluation
beside the file; compare() takes Reports through the path rbla compare takes), and provenance (training, M,
architecture, description, name) goes through benchmark() into model_info."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from robustbench_labelaug import UserError
from robustbench_labelaug.cli import main as cli_main

from .robust_fixtures import UsersOwnModel
from .test_bad_input import Case, check_bad_input_case, snapshot

N = 20
EVALUATORS = ("clean", ("pgd", {"steps": 2}))



class TenWay(torch.nn.Module):
    """A K-way user module (10 outputs, no transformation logits)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


def export_as_zoo_entry(model, name: str, tmp: Path, **args) -> Path:
    """``model`` (an ImageClassifier) saved as the run of zoo entry ``name``'s recipe (other training ``args``
    where given), then exported with rbla zoo export into ``tmp/models`` (returned): a quickly trained stand-in
    for the entry's checkpoint."""
    from robustbench_labelaug.results.vocab import default_protocol, plain
    from robustbench_labelaug.zoo import export_checkpoint, get_entry

    entry = get_entry(name)
    tmp.mkdir(parents=True, exist_ok=True)
    ckpt = tmp / f"{name}.pth.tar"
    torch.save({"version": 1, "epoch": 1, "arch": entry.architecture, "num_classes": entry.num_classes,
                "num_ops": entry.num_ops, "mean": model.normalize.mean.flatten().tolist(),
                "std": model.normalize.std.flatten().tolist(), "state_dict": model.state_dict(),
                "args": plain({"adv_mode": entry.training, "la_delta": entry.delta, "adv_eps": entry.eps,
                               "la_protocol": default_protocol(entry.training), "dataset": entry.dataset,
                               "model": entry.architecture, **args})}, ckpt)
    export_checkpoint(ckpt, name, tmp / "models")
    return tmp / "models"


@pytest.fixture(scope="module")
def untrained():
    """resnet8_tiny (K=10, M=1) with other weights than the trained one."""
    from robustbench_labelaug.models.tiny_resnet import train_tiny_digits

    return train_tiny_digits(0, seed=1)


@pytest.fixture(scope="module")
def reports(trained_digits_model, untrained):
    from robustbench_labelaug import benchmark

    a = benchmark(trained_digits_model, n_examples=N, evaluators=EVALUATORS, device="cpu", model_name="tiny",
                  training="adv_plus", description="resnet8_tiny, two clean epochs")
    b = benchmark(untrained, n_examples=N, evaluators=EVALUATORS, device="cpu", model_name="untrained")
    return a, b


def test_to_model_info_feeds_rbla_compare_with_the_numbers_of_compare(tmp_path, reports, capsys):
    from robustbench_labelaug.compare import compare

    a, b = reports
    path_a, path_b = a.to_model_info(tmp_path / "a.json"), b.to_model_info(tmp_path / "b.json")
    assert (tmp_path / "a.evaluation" / "tiny" / "results" / "pgd.json").is_file()
    assert (tmp_path / "a.evaluation" / "tiny" / "cache" / "pgd" / "pgd" / "all.npz").is_file()
    capsys.readouterr()
    assert cli_main(["compare", str(path_a), str(path_b)]) == 0
    printed = capsys.readouterr().out
    in_python = compare(a, b)
    assert list(in_python.evaluators) == ["clean", "pgd"] and not in_python.skipped
    assert printed.strip() == in_python.markdown().strip()  # one path: the same tables, digit for digit
    on_disk = compare(path_a, path_b)
    for rid, e in in_python.evaluators.items():
        assert e.boot["summary"] == on_disk.evaluators[rid].boot["summary"]
    # the evaluation folders beside the files are not model_infos: rbla leaderboard reads the two files only
    from robustbench_labelaug.results.model_info import load_model_infos

    assert sorted(k for k, _ in load_model_infos(tmp_path)) == ["tiny", "untrained"]
    assert cli_main(["leaderboard", str(tmp_path)]) == 0


def test_to_model_info_in_a_store_writes_its_layout_and_refuses_a_second_model_under_the_name(tmp_path, reports,
                                                                                            untrained):
    from robustbench_labelaug import benchmark

    a, _ = reports
    out = tmp_path / "out"
    a.to_model_info(out / "model_info" / "tiny.json")  # the store's own file: rbla evaluate's layout
    assert (out / "tiny" / "results" / "clean.json").is_file() and not (out / "model_info" / "tiny.evaluation").exists()
    assert a.to_model_info(out / "model_info" / "tiny.json").is_file()  # the same evaluation again: fine
    other = benchmark(untrained, n_examples=N, evaluators=("clean",), device="cpu", model_name="tiny")
    before = snapshot(out)
    refused = r"of model 'tiny' as it was before .*: give this model another name: benchmark\(\.\.\., model_name='tiny_2'\)"
    with pytest.raises(UserError, match=refused) as info:
        other.to_model_info(out / "model_info" / "tiny.json")
    assert "\n" not in str(info.value) and snapshot(out) == before
    with pytest.raises(UserError, match=refused):
        benchmark(untrained, n_examples=N, evaluators=("clean",), device="cpu", model_name="tiny", to_disk=True,
                  output=out)
    assert snapshot(out) == before


def test_provenance_from_the_arguments_and_the_model(reports, trained_digits_model):
    from robustbench_labelaug import benchmark

    a, b = reports
    info = a.model_info()
    assert (a.meta["architecture"], a.meta["num_ops"], a.meta["training"]) == ("resnet8_tiny", 1, "adv_plus")
    assert info["architecture"] == "resnet8_tiny" and info["name"] == "resnet8_tiny, two clean epochs"
    assert info["footnote"].startswith("adv_plus training, K=10, M=1;")
    assert (info["labelaug"]["training"], info["labelaug"]["num_ops"]) == ("adv_plus", 1)
    assert b.model_info()["footnote"].startswith("training not stated, K=10, M=1;")
    own = benchmark(UsersOwnModel(trained_digits_model), n_examples=10, evaluators=("clean",), device="cpu",
                    num_classes=10, training="adv")
    assert own.model_name == "UsersOwnModel"  # the class name, the model's M counted from its outputs
    assert (own.meta["architecture"], own.meta["num_ops"], own.meta["training"]) == ("UsersOwnModel", 1, "adv")
    flat = benchmark(TenWay(), n_examples=10, evaluators=("clean",), device="cpu")
    assert (flat.model_name, flat.meta["num_ops"]) == ("TenWay", 0)


def test_a_zoo_model_brings_its_entry(tmp_path, trained_digits_model):
    """load_model's model knows its entry: architecture, training, M and name come from it (not
    'KWayClassifier', M=0), as rbla evaluate writes them for a zoo: model."""
    from robustbench_labelaug import benchmark, load_model
    from robustbench_labelaug.zoo import get_entry, zoo_entry_of

    entry = get_entry("digits_adv_plus")
    export_as_zoo_entry(trained_digits_model, "digits_adv_plus", tmp_path)
    zoo_model = load_model("digits_adv_plus", model_dir=tmp_path / "models")
    assert zoo_entry_of(zoo_model) == entry
    r = benchmark(zoo_model, n_examples=10, evaluators=("clean",), device="cpu")
    assert r.model_name == "digits_adv_plus"
    assert {k: r.meta[k] for k in ("architecture", "training", "num_ops", "delta")} == \
        {"architecture": "resnet8_tiny", "training": "adv_plus", "num_ops": 1, "delta": entry.delta}
    info = r.model_info()
    assert info["architecture"] == "resnet8_tiny" and info["footnote"].startswith("adv_plus training, K=10, M=1;")
    assert info["name"] == entry.paper["title"]
    with pytest.raises(UserError, match="training='std' but zoo model 'digits_adv_plus' records 'adv_plus'"):
        benchmark(zoo_model, n_examples=10, evaluators=("clean",), device="cpu", training="std")
    # not trained by the recipe: no paper authorship, the departures said, as rbla evaluate says them
    off = export_as_zoo_entry(trained_digits_model, "digits_adv_plus", tmp_path / "off", epochs=2)
    with pytest.warns(UserWarning, match=r"benchmark\(\): 'digits_adv_plus' was not trained by its zoo recipe: --epochs 2"):
        r = benchmark(load_model("digits_adv_plus", model_dir=off), n_examples=10, evaluators=("clean",),
                      device="cpu")
    assert r.meta["paper"] is None and r.meta["recipe_departures"], r.meta
    assert r.model_info()["name"].endswith("— not trained by the zoo recipe (--epochs 2 (recipe: 15))")


def _api(call):
    def setup(tmp, run):
        return call(tmp), tmp
    return setup


def _bench(model_factory=TenWay, **kwargs):
    def call(tmp):
        from robustbench_labelaug import benchmark

        return lambda: benchmark(model_factory(), n_examples=4, evaluators=("clean",), device="cpu", to_disk=True,
                                 output=tmp / "out", **kwargs)
    return _api(call)


def _compare_bare_model_info(tmp, run):
    info = tmp / "mine.json"
    info.write_text(json.dumps({"name": "x", "labelaug": {"model": "mine"}}))
    return ["compare", str(info), str(info)], tmp


CASES = [
    Case("benchmark-training-unknown", _bench(training="pgd"),
         "benchmark(): training 'pgd' is not known: use one of std, adv, adv_plus", how="api"),
    Case("benchmark-adv-plus-without-m", _bench(training="adv_plus"),
         "training='adv_plus' but the model has M=0: adv_plus needs M >= 1", how="api"),
    Case("benchmark-name-escapes", _bench(model_name="../x"), "model_name '../x'", how="api"),
    Case("benchmark-description-not-text", _bench(description=3), "description must be a string", how="api"),
    Case("compare-model-info-without-results", _compare_bare_model_info,
         "write it with report.to_model_info(path), which keeps them beside it, or with benchmark(..., "
         "to_disk=True, model_name=...)"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_provenance_input_is_one_line_and_writes_nothing(case, tmp_path, capsys):
    check_bad_input_case(case, tmp_path, None, capsys)
    assert not (tmp_path / "out").exists()


def test_to_model_info_needs_a_json_path(reports, tmp_path):
    with pytest.raises(UserError, match=r"a model_info file is a \.json file"):
        reports[0].to_model_info(tmp_path / "mine")
    assert list(Path(tmp_path).iterdir()) == []
