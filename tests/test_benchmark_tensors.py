"""benchmark(model, dataset=(x, y)): tensors, as RobustBench's clean_accuracy(model, x, y) takes them.

The two doors (a registered name, its tensors) give the same per-example numbers; K comes from num_classes or y;
each bad input is one UserError line and writes nothing; the store's data fingerprint covers the tensors' content
(one changed pixel recomputes, the same tensors reuse); model_info, compare and the leaderboard read the result."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from robustbench_labelaug import UserError, benchmark, load_clean_dataset

N = 40  # examples evaluated (class-balanced: 4 per digit)
EVALUATORS = ("clean", ("pgd", {"steps": 3}))
EPS = 0.1


@pytest.fixture(scope="module")
def linear_model():
    """A linear classifier fitted in a few full-batch steps on the digits training split: informative predictions
    (clean error well below chance, PGD breaking some points and not others) in about a second."""
    torch.manual_seed(0)
    x, y = load_clean_dataset("digits", split="train")
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(30):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return net.eval()


@pytest.fixture(scope="module")
def digits_test_tensors():
    return load_clean_dataset("digits", split="test")  # all 360, in the registered dataset's order


def _run(model, dataset, **kw):
    kw = {"n_examples": N, "eps": EPS, "evaluators": EVALUATORS, "device": "cpu", "model_name": "lin", **kw}
    return benchmark(model, dataset=dataset, **kw)


def test_tensors_and_registered_name_give_the_same_numbers(linear_model, digits_test_tensors):
    x, y = digits_test_tensors
    by_tensors = _run(linear_model, (x, y))
    by_name = _run(linear_model, "digits")
    a, b = by_tensors.per_example, by_name.per_example
    assert len(a) == N and list(a.index) == list(b.index)  # the same examples (class-balanced on the same labels)
    assert a.equals(b)  # predictions, wrong and broken flags, example by example
    for rid in ("clean", "pgd"):
        np.testing.assert_array_equal(by_tensors.arrays[rid]["y_pred"], by_name.arrays[rid]["y_pred"])
        assert by_tensors.results[rid]["classwise"] == by_name.results[rid]["classwise"]
    fa, fb = by_tensors.to_frame(), by_name.to_frame()
    cols = [c for c in fa.columns if c != "name"]
    assert fa[cols].equals(fb[cols])
    assert by_tensors.headline == by_name.headline
    # the numbers are informative: some points clean-correct, some broken by PGD, some not
    assert 0 < a["clean_wrong"].sum() < N / 2 and 0 < a["pgd_broken"].sum() < N - a["clean_wrong"].sum()
    # the data are named as what they are: tensors with their content's fingerprint, the classes class_<c>
    assert list(fa["name"]) == [f"class_{c}" for c in range(10)] and list(fb["name"]) == [str(c) for c in range(10)]
    info = by_tensors.model_info()
    assert info["dataset"] == "tensors" and by_name.model_info()["dataset"] == "digits"
    assert info["labelaug"]["data"]["n_examples"] == 360 and info["labelaug"]["data"]["num_classes"] == 10
    assert info["labelaug"]["data"]["fingerprint"] == by_tensors.meta["data_fingerprint"]


def test_k_from_labels_or_num_classes(linear_model, digits_test_tensors):
    x, y = digits_test_tensors
    from_y = _run(linear_model, (x, y), evaluators=("clean",), eps=None)  # clean alone needs no eps
    given = _run(linear_model, (x, y), evaluators=("clean",), num_classes=10, eps=None,
                 class_names=[f"digit {c}" for c in range(10)])
    assert from_y.model_info()["labelaug"]["num_classes"] == given.model_info()["labelaug"]["num_classes"] == 10
    assert from_y.per_example.equals(given.per_example)
    assert list(given.to_frame()["name"]) == [f"digit {c}" for c in range(10)]
    # without the last class, K read from y is 9: the 10-logit model is refused, num_classes=10 evaluates it
    keep = y < 9
    with pytest.raises(UserError, match=r"K=9 was read from y .* outputs 10 logits: pass num_classes=K") as err:
        _run(linear_model, (x[keep], y[keep]), evaluators=("clean",), eps=None)
    assert "\n" not in str(err.value)
    ten = _run(linear_model, (x[keep], y[keep]), evaluators=("clean",), eps=None, num_classes=10)
    frame = ten.to_frame()
    assert len(frame) == 10 and frame.loc[9, "clean_n"] == 0 and np.isnan(frame.loc[9, "clean_error"])
    # a 9-way model on 9 classes: K = 9 from y, its 9 logits classify
    from robustbench_labelaug import k_way

    nine = _run(k_way(linear_model, 9), (x[keep], y[keep]), evaluators=("clean",), eps=None)
    assert nine.model_info()["labelaug"]["num_classes"] == 9 and len(nine.to_frame()) == 9
    # a K+M model that declares its M (ImageClassifier, 11 logits): K = 10 from y, M = 1; its first 10 classify
    from robustbench_labelaug.models.classifier import create_classifier

    torch.manual_seed(0)
    plus = create_classifier("resnet8_tiny", 10, 1).eval()
    report = _run(plus, (x, y), evaluators=("clean",), eps=None, n_examples=20)
    block = report.model_info()["labelaug"]
    assert (block["num_classes"], block["num_ops"]) == (10, 1)
    with torch.no_grad():
        expected = plus(x[report.arrays["clean"]["index"]])[:, :10].argmax(1).numpy()
    np.testing.assert_array_equal(report.arrays["clean"]["y_pred"], expected)
    with pytest.raises(UserError, match=r"K=9 was read from y .* outputs 11 logits \(M=1 declared\)"):
        _run(plus, (x[keep], y[keep]), evaluators=("clean",), eps=None)


X_OK = torch.rand(4, 3, 8, 8)
Y_OK = torch.tensor([0, 1, 2, 1])
BAD = [
    ("not-a-pair", X_OK, "dataset is a Tensor: pass a registered name"),
    ("three-items", (X_OK, Y_OK, Y_OK), "dataset is a tuple of 3 items"),
    ("numpy-x", (X_OK.numpy(), Y_OK), r"x is a ndarray, not a torch.Tensor: pass torch.as_tensor\(x\)"),
    ("list-y", (X_OK, [0, 1, 2, 1]), "y is a list, not a torch.Tensor"),
    ("rank-3", (X_OK[:, 0], Y_OK), r"x has shape \(4, 8, 8\), not N x C x H x W: add the channel axis"),
    ("rank-2", (X_OK.flatten(1), Y_OK), "not N x C x H x W: pass a batch of images"),
    ("empty", (X_OK[:0], Y_OK[:0]), r"x holds no images: pass at least one image"),
    ("uint8", ((X_OK * 255).to(torch.uint8), Y_OK), r"x is torch.uint8, not float images in \[0,1\]: pass x.float"),
    ("above-one", (X_OK * 255, Y_OK), r"outside \[0,1\]: pass images in \[0,1\] pixel units"),
    ("negative", (X_OK - 0.5, Y_OK), r"x holds values in \[-0.\d+, 0.\d+\], outside \[0,1\]"),
    ("nan", (X_OK.clone().index_fill_(0, torch.tensor([2]), float("nan")), Y_OK),
     r"x holds NaN or infinite values \(1 image\(s\)\): pass finite images"),
    ("inf", (X_OK.clone().index_fill_(0, torch.tensor([1]), float("inf")), Y_OK), "NaN or infinite"),
    ("float-y", (X_OK, Y_OK.float()), r"y is torch.float32, not integer labels: .*y.long\(\)"),
    ("bool-y", (X_OK, Y_OK > 0), "y is torch.bool, not integer labels"),
    ("y-2d", (X_OK, Y_OK[:, None]), r"y has shape \(4, 1\), not N labels: .*y.view\(-1\)"),
    ("length", (X_OK, Y_OK[:3]), "x holds 4 images but y 3 labels: pass one label per image"),
    ("negative-label", (X_OK, torch.tensor([0, -1, 2, 1])), "y holds the label -1: labels are class indices"),
]


@pytest.mark.parametrize("dataset, message", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_tensors_one_line_nothing_written(tmp_path, linear_model, dataset, message):
    out = tmp_path / "out"
    with pytest.raises(UserError, match=message) as err:
        benchmark(linear_model, dataset=dataset, evaluators=("clean",), to_disk=True, output=out, device="cpu")
    assert "\n" not in str(err.value) and str(err.value).startswith("benchmark(dataset=(x, y)): ")
    assert not out.exists()


BAD_ARGS = [
    ("label-above-num-classes", {"num_classes": 2}, r"y holds the label 2 but num_classes=2: pass labels 0..1, "
                                                    r"or num_classes=3"),
    ("num-classes-not-int", {"num_classes": 2.5}, r"num_classes must be an integer >= 1, got 2.5"),
    ("class-names-count", {"class_names": ["a", "b"]}, r"class_names has 2 names but K=3 \(from y: labels 0..2\)"),
    ("class-names-type", {"class_names": "abc"}, "class_names must be a list of K strings, got str"),
    ("pgd-without-eps", {"evaluators": ("clean", "pgd")},
     r"evaluator 'pgd' attacks but dataset=\(x, y\) tensors have no default eps: pass eps=..."),
    ("split", {"split": "test"}, r"split='test' selects files of a registered dataset; .*leave split out"),
    ("data-dir", {"data_dir": "./data"}, "leave data_dir out"),
]


@pytest.mark.parametrize("kwargs, message", [c[1:] for c in BAD_ARGS], ids=[c[0] for c in BAD_ARGS])
def test_bad_arguments_with_tensors(tmp_path, kwargs, message):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
    out = tmp_path / "out"
    kwargs = {"evaluators": ("clean",), **kwargs}
    with pytest.raises(UserError, match=message) as err:
        benchmark(net, dataset=(X_OK, Y_OK), to_disk=True, output=out, device="cpu", **kwargs)
    assert "\n" not in str(err.value)
    assert not out.exists()


def test_class_names_belong_to_tensors(tmp_path, linear_model):
    with pytest.raises(UserError, match="dataset 'digits' names its own: leave class_names out"):
        benchmark(linear_model, dataset="digits", class_names=list("abcdefghij"), evaluators=("clean",))


def test_fingerprint_one_pixel_recomputes_same_tensors_reuse(tmp_path, capsys, linear_model, digits_test_tensors):
    x, y = digits_test_tensors
    x, y = x[:60].clone(), y[:60].clone()
    out = tmp_path / "out"

    def run(xs):
        report = benchmark(linear_model, dataset=(xs, y), evaluators=("clean",), n_examples=N, to_disk=True,
                           output=out, device="cpu", model_name="lin")
        path = out / "lin" / "results" / "clean.json"
        return report, os.stat(path).st_ino

    first, ino = run(x)
    again, ino_again = run(x.clone())  # equal tensors, another object: reused, the file untouched
    assert ino_again == ino and again.results == first.results
    assert "recomputing" not in capsys.readouterr().out
    changed = x.clone()
    changed[0, 0, 0, 0] = 1.0 - changed[0, 0, 0, 0]  # one pixel of an evaluated example
    third, ino_third = run(changed)
    assert ino_third != ino and "changed since" in capsys.readouterr().out
    assert third.meta["data_fingerprint"] != first.meta["data_fingerprint"]
    from robustbench_labelaug.results.model_info import load_model_info

    info = load_model_info(out / "model_info" / "lin.json")  # validated as every model_info is
    assert info["labelaug"]["data"]["fingerprint"] == third.meta["data_fingerprint"]


def test_model_info_compare_and_leaderboard(tmp_path, linear_model, digits_test_tensors):
    from robustbench_labelaug.compare import compare
    from robustbench_labelaug.leaderboard.table import build_tables
    from robustbench_labelaug.results.model_info import load_model_infos

    x, y = digits_test_tensors
    torch.manual_seed(1)
    other = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10)).eval()
    a = _run(linear_model, (x, y), evaluators=("clean",), eps=None)
    b = _run(other, (x, y), evaluators=("clean",), eps=None, model_name="other")
    result = compare(a, b)
    assert set(result.evaluators) == {"clean"}
    a.to_model_info(tmp_path / "board" / "lin.json")
    b.to_model_info(tmp_path / "board" / "other.json")
    from_files = compare(tmp_path / "board" / "lin.json", tmp_path / "board" / "other.json")  # rbla compare's door
    assert from_files.verdicts == result.verdicts
    shifted = _run(other, (x[:200], y[:200]), evaluators=("clean",), eps=None, model_name="other2")
    with pytest.raises(UserError):  # other tensors: not the same data, never paired
        compare(a, shifted)
    shifted.to_model_info(tmp_path / "board" / "other2.json")
    tables = build_tables(load_model_infos(tmp_path / "board"))
    groups = {t.group: sorted(t.keys) for t in tables}
    assert sorted(groups.values()) == [["lin", "other"], ["other2"]]  # ranked only with the same tensors
    assert all(g.startswith("tensors ") for g in groups)


def test_clean_error_is_robustbench_clean_accuracy_on_the_same_tensors(linear_model, digits_test_tensors):
    from robustbench.utils import clean_accuracy

    x, y = digits_test_tensors[0][:N], digits_test_tensors[1][:N]
    report = _run(linear_model, (x, y), evaluators=("clean",), eps=None, n_examples=None)
    acc = clean_accuracy(linear_model, x, y, batch_size=16, device=torch.device("cpu"))
    assert report.headline["clean_error"] == pytest.approx(100 * (1 - acc))


def test_corruptions_generated_from_tensors(linear_model, digits_test_tensors):
    """An evaluator that asks the registry for a dataset's own corruptions runs on tensors (none registered):
    the corruptions are generated from the images, as for a dataset that declares none."""
    x, y = digits_test_tensors[0][:10], digits_test_tensors[1][:10]
    report = _run(linear_model, (x, y), evaluators=(("corruptions", {"corruptions": ["gaussian_noise"],
                                                                     "severities": [1]}),), eps=None)
    assert report.results["corruptions"]["num_examples"] == 10 and report.headline["corruptions_error"] >= 0


def test_model_info_data_block_is_checked():
    from robustbench_labelaug.results.model_info import validate_model_info

    info = {"name": "m", "dataset": "tensors", "architecture": "a", "eps": "0.1", "clean_acc": "90.00",
            "additional_data": False, "number_forward_passes": 1,
            "labelaug": {"measured": {}, "results": {}, "data": {"name": "tensors", "fingerprint": "ab12"}}}
    validate_model_info(info)
    for bad in ({"name": "tensors"}, {"name": "tensors", "fingerprint": ""}, "ab12", {"fingerprint": 3}):
        with pytest.raises(UserError, match="'labelaug.data' must be an object with the strings 'name' and "
                                            "'fingerprint'"):
            validate_model_info({**info, "labelaug": {**info["labelaug"], "data": bad}})
