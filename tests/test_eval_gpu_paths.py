"""Evaluation as it runs on GPUs (issue #11 item 7), tested on the CPU: opt-in autocast precision for the
label evaluators, ReaL / ImageNet-X reusing the clean pass, an ImageNet-C folder checked once per run, the next
split's loader workers started ahead, and generated corruptions cached per rank (no images between ranks)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch import nn

from robustbench_labelaug import UserError, create_classifier
from robustbench_labelaug.data import corruptions as corr
from robustbench_labelaug.data import create_dataset, imagenet_wnids
from robustbench_labelaug.data.corruptions import CorruptionGenerator
from robustbench_labelaug.distributed import DistInfo
from robustbench_labelaug.evaluation import EvalContext, create_evaluator, evaluator_class
from robustbench_labelaug.evaluation.base import Evaluator

from .fixtures_imagenet import make_imagenet_folder, official_label, official_val_ids


class DtypeProbe(nn.Module):
    """A linear digits classifier that records the dtype of its logits and counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * 32 * 32, 10)
        self.dtypes: list[torch.dtype] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(x.flatten(1))
        self.dtypes.append(out.dtype)
        return out


def ctx(out_dir=None, num_classes: int = 10, **kwargs) -> EvalContext:
    return EvalContext(num_classes=num_classes, out_dir=out_dir, batch_size=16, progress=False, **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# precision
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16),
                                              ("fp16", torch.float16)])
def test_label_evaluators_run_under_the_precision_asked_and_name_it(tmp_path, digits_test, precision, dtype):
    model = DtypeProbe()
    result = create_evaluator("clean", n_examples=40, precision=precision).run(model, digits_test, ctx())
    assert len(model.dtypes) == 4 and set(model.dtypes[1:]) == {dtype}  # [0]: the output-width check
    assert result.settings["precision"] == precision
    text = evaluator_class("clean").measured(result.to_dict())[0].text()
    assert text.endswith(f"[{precision}]") == (precision != "fp32"), text
    # the same predictions as fp32 on nearly every image (a low-precision forward pass, not another model)
    ref = create_evaluator("clean", n_examples=40).run(DtypeProbe(), digits_test, ctx())
    assert abs(result.metrics["error"] - ref.metrics["error"]) <= 100 * 2 / 40


def test_precision_is_part_of_the_cache_and_attacks_stay_fp32(tmp_path, digits_test):
    create_evaluator("clean", n_examples=8).run(DtypeProbe(), digits_test, ctx(tmp_path))
    with pytest.raises(UserError, match="other settings"):
        create_evaluator("clean", n_examples=8, precision="bf16").run(DtypeProbe(), digits_test, ctx(tmp_path))
    with pytest.raises(UserError, match="precision 'fp8' is not known: use one of fp32, bf16, fp16"):
        create_evaluator("corruptions", precision="fp8")
    with pytest.raises(UserError, match="precision"):  # attacks have no precision setting: fp32 gradients
        create_evaluator("pgd", precision="bf16")
    assert all("precision" in evaluator_class(n).__dataclass_fields__
               for n in ("clean", "corruptions", "real", "imagenet_x"))


# ----------------------------------------------------------------------------------------------------------------
# ReaL and ImageNet-X reuse the clean pass
# ----------------------------------------------------------------------------------------------------------------


class Counting(nn.Module):
    """Counts the images it is asked to classify."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.images = inner, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images += len(x)
        return self.inner(x)


@pytest.fixture(scope="module")
def imagenet_val(tmp_path_factory):
    ids = official_val_ids(0, 3) + official_val_ids(1, 3) + official_val_ids(2, 2)
    root = tmp_path_factory.mktemp("in") / "imagenet"
    make_imagenet_folder(root, val_file_ids=ids)
    torch.manual_seed(0)
    return create_dataset("imagenet", root, "val", input_size=32), create_classifier("resnet8_tiny", 1000, 0).eval()


def test_real_and_imagenet_x_reuse_the_clean_predictions(tmp_path, imagenet_val):
    dataset, model = imagenet_val
    shared: dict = {}
    counted = Counting(model)
    clean = create_evaluator("clean").run(counted, dataset, ctx(tmp_path / "a", 1000, predictions=shared))
    after_clean = counted.images
    assert after_clean == 1 + len(dataset)  # the one-image output-width check, then every image
    real = create_evaluator("real", n_examples=5).run(counted, dataset, ctx(tmp_path / "a", 1000,
                                                                             predictions=shared))
    assert counted.images == after_clean + 1  # only the width check: the clean predictions, subset to 5
    alone = create_evaluator("real", n_examples=5).run(model, dataset, ctx(tmp_path / "b", 1000))
    assert real.to_dict() == alone.to_dict()
    with np.load(tmp_path / "a" / "real" / "all.npz") as a, np.load(tmp_path / "b" / "real" / "all.npz") as b:
        for key in ("index", "y_true", "y_pred"):  # the cached split is what ReaL would have predicted itself
            np.testing.assert_array_equal(a[key], b[key])
    assert clean.num_examples == len(dataset)
    # another precision is another forward pass; so is another model's ctx (no dict shared)
    create_evaluator("real", precision="bf16").run(counted, dataset, ctx(None, 1000, predictions=shared))
    assert counted.images == after_clean + 2 + len(dataset)
    assert evaluator_class("imagenet_x").shares_predictions and not evaluator_class("corruptions").shares_predictions


def test_the_runner_runs_one_forward_pass_for_clean_real_and_imagenet_x(tmp_path, imagenet_val, monkeypatch):
    from robustbench_labelaug.evaluation import clean as clean_module
    from robustbench_labelaug.runner import evaluate_config, load_config

    dataset, model = imagenet_val
    calls = []
    original = clean_module.predict_labels
    monkeypatch.setattr(clean_module, "predict_labels",
                        lambda m, batches: calls.append(1) or original(m, batches))
    ckpt = tmp_path / "in1k.pth.tar"
    torch.save({"arch": "resnet8_tiny", "num_classes": 1000, "num_ops": 0,
                "mean": model.normalize.mean.flatten().tolist(), "std": model.normalize.std.flatten().tolist(),
                "state_dict": model.state_dict(), "args": {"adv_mode": "std", "dataset": "imagenet"}}, ckpt)
    cfg = {"title": "t", "runtime": {"batch_size": 4, "device": "cpu", "output": str(tmp_path / "out"),
                                     "progress": False, "plots": False},
           "datasets": {"in": {"name": "imagenet", "data_dir": str(dataset.root.parent), "input_size": 32}},
           "models": [{"name": "m", "checkpoint": str(ckpt)}],
           "evaluators": [{"name": "real"}, {"name": "clean"}, {"name": "imagenet_x"}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    info = json.loads(evaluate_config(load_config(tmp_path / "c.yaml"), leaderboard=False)[0].read_text())
    assert len(calls) == 1  # ReaL (listed first) predicted; clean and ImageNet-X took its predictions
    measured = info["labelaug"]["measured"]
    assert measured["clean_error"] == pytest.approx(info["labelaug"]["results"]["real"]["details"]
                                                    ["top1_error_original_labels"])


# ----------------------------------------------------------------------------------------------------------------
# ImageNet-C checked once per run
# ----------------------------------------------------------------------------------------------------------------


def test_imagenet_c_folder_is_checked_once_per_run_not_per_model(tmp_path, monkeypatch):
    from robustbench_labelaug.data import corruptions as corruption_data  # the registry's check lives here
    from robustbench_labelaug.runner import evaluate_config, load_config

    wnids = imagenet_wnids()[:2]
    images = make_imagenet_folder(tmp_path / "imagenet", wnids=wnids, per_class=2, size=32)
    for im in images:
        for severity in (1, 2):
            path = tmp_path / "imagenet-c" / "fog" / str(severity) / im.wnid / im.path.name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 32), (official_label(im.image_id), 9, 9)).save(path, format="JPEG")
    checks = []
    original = corruption_data.check_imagenet_c
    monkeypatch.setattr(corruption_data, "check_imagenet_c",
                        lambda *args: checks.append(args[0]) or original(*args))
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        m = create_classifier("resnet8_tiny", 1000, 0)
        ckpt = tmp_path / f"m{seed}.pth.tar"
        torch.save({"arch": "resnet8_tiny", "num_classes": 1000, "num_ops": 0,
                    "mean": m.normalize.mean.flatten().tolist(), "std": m.normalize.std.flatten().tolist(),
                    "state_dict": m.state_dict(), "args": {"adv_mode": "std", "dataset": "imagenet"}}, ckpt)
        models.append({"name": f"m{seed}", "checkpoint": str(ckpt)})
    cfg = {"title": "t", "runtime": {"batch_size": 4, "device": "cpu", "output": str(tmp_path / "out"),
                                     "progress": False, "plots": False},
           "datasets": {"in": {"name": "imagenet", "data_dir": str(tmp_path / "imagenet"), "input_size": 32}},
           "models": models,
           "evaluators": [{"name": "corruptions", "settings": {"data_dir": str(tmp_path / "imagenet-c"),
                                                              "corruptions": "fog", "severities": [1, 2]}}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    written = evaluate_config(load_config(tmp_path / "c.yaml"), leaderboard=False)
    assert len(written) == 2 and len(checks) == 1
    # the check still refuses a damaged folder before any work, in a new run
    (tmp_path / "imagenet-c" / "fog" / "2" / images[0].wnid / images[0].path.name).unlink()
    cfg["runtime"]["output"] = str(tmp_path / "out2")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(UserError, match="is missing"):
        evaluate_config(load_config(tmp_path / "c.yaml"), leaderboard=False)
    assert not (tmp_path / "out2" / "m0" / "results").exists()


# ----------------------------------------------------------------------------------------------------------------
# loader look-ahead
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, 1])
def test_next_split_loader_starts_while_this_split_is_predicted(tmp_path, digits_test, monkeypatch, workers):
    events = []
    from robustbench_labelaug.evaluation import parts

    open_split, predict = parts.open_part, evaluator_class("corruptions").predict

    def logged_open(evaluator, dataset, split, shard, c):
        events.append(("open", split))
        return open_split(evaluator, dataset, split, shard, c)

    def logged_predict(self, model, batches, split, c):
        events.append(("predict", split))
        return predict(self, model, batches, split, c)

    monkeypatch.setattr(parts, "open_part", logged_open)
    monkeypatch.setattr(evaluator_class("corruptions"), "predict", logged_predict)
    settings = {"n_examples": 20, "corruptions": "fog", "severities": [1, 2, 3], "cache_dir": str(tmp_path / "c")}
    result = create_evaluator("corruptions", **settings).run(DtypeProbe(), digits_test,
                                                              ctx(num_workers=workers))
    if workers:  # split k+1's workers were started before split k was predicted
        assert events == [("open", "fog/1"), ("open", "fog/2"), ("predict", "fog/1"), ("open", "fog/3"),
                          ("predict", "fog/2"), ("predict", "fog/3")]
    else:  # no workers: nothing to start early
        assert events == [("open", "fog/1"), ("predict", "fog/1"), ("open", "fog/2"), ("predict", "fog/2"),
                          ("open", "fog/3"), ("predict", "fog/3")]
    monkeypatch.undo()
    reference = create_evaluator("corruptions", **settings).run(DtypeProbe(), digits_test, ctx())
    assert result.to_dict() == reference.to_dict()


# ----------------------------------------------------------------------------------------------------------------
# generated corruptions: per-rank shards
# ----------------------------------------------------------------------------------------------------------------


def as_rank(monkeypatch, rank: int, world: int, gathered: list | None = None) -> list:
    """Run the generator as rank ``rank`` of ``world`` without a process group: ``gathered`` is what the one
    collective (the clean images' digests, for the cache key) returns; returns the list of what was sent."""
    sent: list = []

    class FakeDist:
        current = staticmethod(lambda: DistInfo(rank=rank, world_size=world))

        @staticmethod
        def gather_objects(obj):
            sent.append(obj)
            return [obj] if gathered is None else gathered

    monkeypatch.setattr(corr, "dist_utils", FakeDist)
    return sent


def test_each_rank_caches_only_its_share_and_any_world_size_reads_it(tmp_path, digits_test, monkeypatch):
    n, cache = 14, tmp_path / "cache"
    with monkeypatch.context() as m:
        digests = as_rank(m, 0, 1)  # every image's digest, as the ranks' gather would return them
        full = CorruptionGenerator(digits_test, range(n), cache_dir=tmp_path / "ref", progress=False).split("fog", 2)
    for rank in range(3):
        with monkeypatch.context() as m:
            sent = as_rank(m, rank, 3, digests)
            part = CorruptionGenerator(digits_test, range(n), cache_dir=cache, progress=False).split("fog", 2)
            assert sorted(part.index.tolist()) == list(range(rank, n, 3))  # holds its share only
            np.testing.assert_array_equal(part.images, full.images[rank::3])
            # the one collective carried this rank's (index, digest) pairs, no images
            assert len(sent) == 1 and [i for i, _ in sent[0]] == list(range(rank, n, 3))
    folder = next(cache.rglob("fog/2"))
    assert sorted(f.name for f in folder.iterdir()) == [f"shard-{r}-of-3.npz" for r in range(3)]

    monkeypatch.setattr("imagecorruptions.corrupt", lambda *a, **k: (_ for _ in ()).throw(AssertionError("regen")))
    one = CorruptionGenerator(digits_test, range(n), cache_dir=cache, progress=False).split("fog", 2)
    assert sorted(one.index.tolist()) == list(range(n))
    for i in range(n):  # one process reads the 3 shards: the same images as generating them itself
        np.testing.assert_array_equal(one[i][0], full[i][0])
    with monkeypatch.context() as m:  # rank 1 of 2 reads its rows out of the 3-rank shards
        as_rank(m, 1, 2, digests)
        part = CorruptionGenerator(digits_test, range(n), cache_dir=cache, progress=False).split("fog", 2)
        assert sorted(part.index.tolist()) == list(range(1, n, 2))
    # readers write nothing: the 3-rank shards stay the only copy
    assert sorted(f.name for f in folder.iterdir()) == [f"shard-{r}-of-3.npz" for r in range(3)]


@pytest.mark.parametrize("device, pinned", [("cpu", False), ("cuda", True)])
def test_evaluation_loaders_pin_memory_on_cuda(digits_test, monkeypatch, device, pinned):
    from robustbench_labelaug.evaluation import parts

    made = []

    class Recorder(list):
        def __init__(self, dataset, **kwargs):
            super().__init__()
            made.append(kwargs)

    monkeypatch.setattr(parts, "DataLoader", Recorder)
    evaluator = create_evaluator("clean")
    parts.open_part(evaluator, digits_test, "all", [0, 1, 2], EvalContext(num_classes=10, device=device,
                                                                          num_workers=3))
    assert made == [{"batch_size": 64, "shuffle": False, "num_workers": 3, "pin_memory": pinned}]


def test_a_bf16_result_is_named_in_model_info_summary_and_table(digits_test):
    from robustbench_labelaug.evaluation.declare import model_info_from_results
    from robustbench_labelaug.leaderboard.table import build_tables, summary_line, to_markdown
    from robustbench_labelaug.results.model_info import validate_model_info

    meta = {"key": "m", "dataset": "digits", "architecture": "linear", "training": "std", "num_classes": 10,
            "num_ops": 0, "threat_model": "Linf", "eps": None}
    infos = []
    for key, precision in (("m_bf16", "bf16"), ("m_fp32", "fp32")):
        result = create_evaluator("clean", n_examples=30, precision=precision).run(DtypeProbe(), digits_test, ctx())
        info = model_info_from_results({**meta, "key": key}, {"clean": result.to_dict()})
        validate_model_info(info)
        infos.append((key, info))
        record = next(h for h in info["labelaug"]["measured"]["headlines"] if h["key"] == "clean_error")
        assert record.get("precision") == (None if precision == "fp32" else "bf16")
        assert ("[bf16]" in summary_line(key, info)) == (precision == "bf16")
    markdown = to_markdown(build_tables(infos), infos)
    bf16_row = next(line for line in markdown.splitlines() if "m_bf16" in line and "|" in line)
    fp32_row = next(line for line in markdown.splitlines() if "m_fp32" in line and "|" in line)
    # Markdown escapes the brackets (mdtext.md_text), so the row renders "[bf16]"
    assert r"\[bf16\]" in bf16_row and "bf16" not in fp32_row.replace("m_fp32", "")
    bad = json.loads(json.dumps(infos[0][1]))
    bad["labelaug"]["measured"]["headlines"][0]["precision"] = "int8"
    with pytest.raises(UserError, match="precision"):
        validate_model_info(bad)


# ----------------------------------------------------------------------------------------------------------------
# masking takes the autoattack evaluator's per-point results (one AutoAttack run per model)
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pgd_first", [False, True])
def test_masking_reuses_the_autoattack_evaluators_run(digits_test, trained_digits_model, monkeypatch, pgd_first):
    from robustbench_labelaug.evaluation import masking as masking_module

    model, shared = trained_digits_model, {}
    c = ctx(predictions=shared)
    aa = create_evaluator("autoattack", eps=0.2, n_examples=30, selection="class_balanced", pgd_first=pgd_first)
    aa_result = aa.run(model, digits_test, c)
    calls = []
    original = masking_module.predict_autoattack
    monkeypatch.setattr(masking_module, "predict_autoattack", lambda *a, **k: calls.append(1) or original(*a, **k))
    settings = {"eps": 0.2, "steps": 40, "n_examples": 30, "autoattack_n": 20, "eps_sweep": [0.2],
                "steps_sweep": [40], "margin_attack": False}
    reused = create_evaluator("masking", **settings).run(model, digits_test, c)
    assert calls == []  # no second AutoAttack run
    checks = {ch["name"]: ch for ch in reused.details["checks"]}
    gap = checks["pgd_close_to_autoattack"]
    assert gap["n"] == 20
    if pgd_first:  # the union is not weaker than PGD by construction: that check is skipped, with the reason
        assert "autoattack_not_weaker_than_pgd" not in checks
        assert "pgd_first" in reused.details["skipped"]["autoattack_not_weaker_than_pgd"]
        assert gap["autoattack"].startswith("PGD-40 + AutoAttack") and gap["gap"] >= 0
    else:  # a standalone run: the same checks as masking's own AutoAttack run would make
        own = create_evaluator("masking", **settings).run(model, digits_test, ctx())
        assert len(calls) == 1
        own_checks = {ch["name"]: ch for ch in own.details["checks"]}
        assert set(own_checks) == set(checks)
        assert checks["autoattack_not_weaker_than_pgd"]["autoattack_robust_accuracy"] == pytest.approx(
            own_checks["autoattack_not_weaker_than_pgd"]["autoattack_robust_accuracy"], abs=100 * 2 / 20)
    # the AutoAttack numbers are the autoattack evaluator's on those 20 points (its 30 include them)
    from robustbench_labelaug.evaluation.base import select_examples

    (_, arrays), = [v for k, v in shared.items() if k[0][0] == "autoattack"]
    assert len(arrays["index"]) == aa_result.num_examples == 30
    rows = np.isin(arrays["index"], select_examples(digits_test, 20, "class_balanced"))
    assert rows.sum() == 20
    expected = 100.0 * float(np.mean(arrays["y_pred"][rows] == arrays["y_true"][rows]))
    assert gap["autoattack_robust_accuracy"] == pytest.approx(expected)
    assert evaluator_class("masking").reuses == ("autoattack",)


@pytest.mark.parametrize("channels_last", [False, True])
def test_runtime_channels_last_evaluates_the_model_in_that_format(tmp_path, imagenet_val, monkeypatch,
                                                                   channels_last):
    from robustbench_labelaug.runner import evaluate_config, load_config

    dataset, model = imagenet_val
    seen = []
    original = Evaluator.run
    monkeypatch.setattr(Evaluator, "run", lambda self, m, *a: seen.append(
        next(p for p in m.parameters() if p.dim() == 4).is_contiguous(memory_format=torch.channels_last))
        or original(self, m, *a))
    ckpt = tmp_path / "m.pth.tar"
    torch.save({"arch": "resnet8_tiny", "num_classes": 1000, "num_ops": 0,
                "mean": model.normalize.mean.flatten().tolist(), "std": model.normalize.std.flatten().tolist(),
                "state_dict": model.state_dict(), "args": {"adv_mode": "std", "dataset": "imagenet"}}, ckpt)
    cfg = {"title": "t", "runtime": {"batch_size": 4, "device": "cpu", "output": str(tmp_path / "out"),
                                     "progress": False, "plots": False, "channels_last": channels_last},
           "datasets": {"in": {"name": "imagenet", "data_dir": str(dataset.root.parent), "input_size": 32}},
           "models": [{"name": "m", "checkpoint": str(ckpt)}], "evaluators": [{"name": "clean"}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    info = json.loads(evaluate_config(load_config(tmp_path / "c.yaml"), leaderboard=False)[0].read_text())
    assert seen == [channels_last]
    reference = create_evaluator("clean").run(model, dataset, ctx(None, 1000))
    assert info["labelaug"]["measured"]["clean_error"] == pytest.approx(reference.metrics["error"])
