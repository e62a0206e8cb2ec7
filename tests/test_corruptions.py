"""Corruption evaluator: ImageNet-C folders (tiny fixture built here), generated corruptions (deterministic,
independent of order and sharding, cached), and E / CE / mCE on hand-computable predictions."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from robustbench_labelaug import UserError
from robustbench_labelaug.data import corruptions as corr
from robustbench_labelaug.data import create_dataset, imagenet_wnids
from robustbench_labelaug.data.corruptions import (
    CORRUPTIONS,
    CorruptionGenerator,
    corrupt_image,
    corruption_names,
    image_seed,
    imagenet_c_transform,
    select_corruptions,
    to_uint8_hwc,
)
from robustbench_labelaug.evaluation import EvalContext, create_evaluator
from robustbench_labelaug.scoring import ALEXNET_IMAGENET_C_ERRORS

from .fixtures_imagenet import make_imagenet_folder, official_label, val_name


def code_colour(code: int) -> tuple[int, int, int]:
    return (8 * code + 4, 128, 128)


class CodeModel(nn.Module):
    """K logits, one-hot at the class coded in the red channel (``code_colour``); counts its calls."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes, self.calls = num_classes, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        code = ((x[:, 0].mean(dim=(1, 2)) * 255 - 4) / 8).round().long().clamp(0, self.num_classes - 1)
        return nn.functional.one_hot(code, self.num_classes).float()


def ctx(out_dir=None, num_classes: int = 1000) -> EvalContext:
    return EvalContext(num_classes=num_classes, out_dir=out_dir, batch_size=4, progress=False)


# ----------------------------------------------------------------------------------------------------------------
# ImageNet-C folders
# ----------------------------------------------------------------------------------------------------------------

WNIDS = imagenet_wnids()[:3]  # classes 0, 1, 2; two images each, in this order: labels 0 0 1 1 2 2
# number of wrong predictions (the first w images, predicted (label + 1) % 3) per corruption and severity
WRONG = {("gaussian_noise", 1): 1, ("gaussian_noise", 2): 2, ("fog", 1): 3, ("fog", 2): 6}


@pytest.fixture
def imagenet_c(tmp_path) -> tuple[object, Path]:
    """A clean ImageNet val folder (3 classes x 2 images, each coloured with its own label's code) and an
    ImageNet-C folder for gaussian_noise and fog at severities 1-2 whose copies code the predictions of WRONG;
    ImageNet-C also holds a class (index 3) and a file the clean folder lacks, which must be ignored."""
    images = make_imagenet_folder(tmp_path / "imagenet", wnids=WNIDS, per_class=2, size=40,
                                  colors=lambda i: code_colour(official_label(i)))
    root = tmp_path / "imagenet-c"
    for (corruption, severity), wrong in WRONG.items():
        for p, im in enumerate(images):
            pred = (im.label + 1) % 3 if p < wrong else im.label
            path = root / corruption / str(severity) / im.wnid / im.path.name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 32), code_colour(pred)).save(path, format="JPEG", quality=95)
        extra = root / corruption / str(severity)
        (extra / imagenet_wnids()[3]).mkdir()
        Image.new("RGB", (32, 32), code_colour(0)).save(extra / imagenet_wnids()[3] / val_name(49999), "JPEG")
        Image.new("RGB", (32, 32), code_colour(0)).save(extra / WNIDS[0] / val_name(50000), "JPEG")
    dataset = create_dataset("imagenet", tmp_path / "imagenet", "val", input_size=32)
    assert [dataset[i][1] for i in range(6)] == [0, 0, 1, 1, 2, 2]
    return dataset, root


def test_imagenet_c_folder_errors_hand_computed(tmp_path, imagenet_c):
    dataset, root = imagenet_c
    evaluator = create_evaluator("corruptions", data_dir=str(root), corruptions=["fog", "gaussian_noise"],
                                 severities=[2, 1])
    result = evaluator.run(CodeModel(1000), dataset, ctx(tmp_path / "out"))
    e = {"gaussian_noise": [100 / 6, 200 / 6], "fog": [50.0, 100.0]}
    assert result.details["corruptions"] == ["gaussian_noise", "fog"] and result.details["severities"] == [1, 2]
    for c, row in e.items():
        assert result.details["E"][c] == pytest.approx(row)
    assert result.details["CE"] == pytest.approx({"gaussian_noise": 25.0, "fog": 75.0})
    assert result.metrics["mce"] == pytest.approx(50.0)
    assert result.metrics["mean_corruption_error"] == pytest.approx(50.0)
    # ImageNet-C with a 1000-class model: Hendrycks & Dietterich's AlexNet-normalised CE on the same severities
    ref = ALEXNET_IMAGENET_C_ERRORS
    norm = {c: 100 * sum(row) / (ref[c][0] + ref[c][1]) for c, row in e.items()}
    assert result.details["CE_normalized"] == pytest.approx(norm)
    assert result.metrics["mce_alexnet"] == pytest.approx(np.mean(list(norm.values())))
    assert result.metrics["mce_normalized"] == result.metrics["mce_alexnet"]
    # class-wise over all 4 x 6 corrupted samples: class 0 wrong 7/8, class 1 3/8, class 2 2/8
    per_class = result.classwise["corruptions"]["error"]
    assert per_class[:3] == pytest.approx([87.5, 37.5, 25.0]) and np.isnan(per_class[3:]).all()
    assert result.num_examples == 6
    assert sorted(p.name for p in (tmp_path / "out" / "corruptions").glob("*.npz")) == [
        "fog__1.npz", "fog__2.npz", "gaussian_noise__1.npz", "gaussian_noise__2.npz"]


def test_imagenet_c_subset_of_classes_keeps_indices(tmp_path, imagenet_c):
    """A 'folder' dataset naming its classes: ImageNet-C folders are read with the same class map."""
    dataset, root = imagenet_c
    names = [imagenet_wnids()[3], *WNIDS]  # class index = position here: WNIDS get 1, 2, 3
    clean = create_dataset("folder", tmp_path / "imagenet", "val", input_size=32, class_names=names)
    evaluator = create_evaluator("corruptions", data_dir=str(root), corruptions="gaussian_noise", severities=2)
    split = evaluator.part_dataset(clean, "gaussian_noise/2")
    assert [split[i][1] for i in range(6)] == [1, 1, 2, 2, 3, 3]
    result = evaluator.run(CodeModel(4), clean, ctx(num_classes=4))
    assert "mce_alexnet" not in result.metrics  # not a 1000-class model
    # the copies code predictions 1 1 1 1 2 2 (the first two one class off); labels are now 1 1 2 2 3 3
    assert result.details["E"] == {"gaussian_noise": [pytest.approx(400 / 6)]}


def test_imagenet_c_transform_keeps_size_without_crop(imagenet_c):
    dataset, _ = imagenet_c
    steps = imagenet_c_transform(dataset, 1.0).transforms
    assert [getattr(t, "size", None) for t in steps[:2]] == [32, (32, 32)]
    assert imagenet_c_transform(dataset, None) is dataset.transform
    assert [getattr(t, "size", None) for t in dataset.transform.transforms[:2]] == [36, (32, 32)]


@pytest.mark.parametrize("damage, message", [
    ("severity", r"imagenet-c/fog/2 does not exist: ImageNet-C must be laid out as <root>/<corruption>/"
                 r"<severity 1-5>/<wnid>/<image>"),
    ("file", r"gaussian_noise/1/n01440764/ILSVRC2012_val_\d{8}.JPEG is missing \(1 of the 2 evaluated images "
             r"of class n01440764"),
    ("empty", r"imagenet-c/fog/1 has no <wnid> class folders"),
    ("unknown", r"gaussian_noise/2 has folders \['not_a_wnid'\] that are not classes of the clean data"),
    ("root", r"nowhere does not exist: ImageNet-C must be laid out as"),
])
def test_imagenet_c_layout_errors_before_any_work(tmp_path, imagenet_c, damage, message):
    dataset, root = imagenet_c
    data_dir = root
    if damage == "severity":
        for p in sorted((root / "fog" / "2").rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        (root / "fog" / "2").rmdir()
    elif damage == "file":
        sorted((root / "gaussian_noise" / "1" / WNIDS[0]).glob("*.JPEG"))[0].unlink()
    elif damage == "empty":
        for p in sorted((root / "fog" / "1").rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
    elif damage == "unknown":
        (root / "gaussian_noise" / "2" / "not_a_wnid").mkdir()
    else:
        data_dir = tmp_path / "nowhere"
    model = CodeModel(1000)
    evaluator = create_evaluator("corruptions", data_dir=str(data_dir), corruptions="gaussian_noise,fog",
                                 severities="1,2")
    with pytest.raises(UserError, match=message):
        evaluator.run(model, dataset, ctx(tmp_path / "out"))
    assert model.calls == 0 and not (tmp_path / "out").exists()


def test_imagenet_c_needs_a_folder_dataset(tmp_path, digits_test, imagenet_c):
    _, root = imagenet_c
    with pytest.raises(UserError, match=r"needs the clean data as an ImageNet-layout folder"):
        create_evaluator("corruptions", data_dir=str(root), corruptions="fog").run(
            CodeModel(10), digits_test, ctx(tmp_path / "out", num_classes=10))
    assert not (tmp_path / "out").exists()


def test_imagenet_c_below_robustbench_folder(tmp_path, imagenet_c):
    """RobustBench's ``<dir>/ImageNet-C/<corruption>/...`` is found from ``<dir>``."""
    dataset, root = imagenet_c
    os.rename(root, tmp_path / "ImageNet-C")
    result = create_evaluator("corruptions", data_dir=str(tmp_path), corruptions="fog", severities=[1]).run(
        CodeModel(1000), dataset, ctx())
    assert result.details["E"] == {"fog": [50.0]}


# ----------------------------------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------------------------------


def test_names_are_imagecorruptions_common_set():
    assert corruption_names() == list(CORRUPTIONS) and len(CORRUPTIONS) == 15
    assert select_corruptions() == (list(CORRUPTIONS), [1, 2, 3, 4, 5])
    assert select_corruptions("fog, gaussian_noise", "5,1") == (["gaussian_noise", "fog"], [1, 5])


@pytest.mark.parametrize("kwargs, message", [
    ({"corruptions": ["fog", "speckle_noise"]}, r"unknown: \['speckle_noise'\]"),
    ({"corruptions": []}, r"use some of gaussian_noise"),
    ({"severities": [0, 3]}, r"distinct integers in 1-5"),
    ({"severities": "1,x"}, r"distinct integers in 1-5"),
    ({"severities": [2, 2]}, r"distinct integers in 1-5"),
    ({"min_size": 16}, r"min_size=16 is below 32"),
    ({"crop_pct": 1.5}, r"crop_pct=1.5 must be in \(0, 1\]"),
    ({"severity": 3}, r"evaluator 'corruptions': .*unexpected keyword argument 'severity'"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(UserError, match=message):
        create_evaluator("corruptions", **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# Generated corruptions
# ----------------------------------------------------------------------------------------------------------------


def digit_images(dataset, n: int) -> list[np.ndarray]:
    return [to_uint8_hwc(dataset[i][0]) for i in range(n)]


@pytest.mark.parametrize("corruption", ["gaussian_noise", "impulse_noise", "glass_blur", "frost"])
def test_corrupt_image_is_deterministic_and_leaves_global_rng_alone(digits_test, corruption):
    image = digit_images(digits_test, 1)[0]
    np.random.seed(123)
    expected_next = np.random.rand()
    np.random.seed(123)
    a = corrupt_image(image, corruption, 3, seed=7)
    assert np.random.rand() == expected_next  # numpy's global RNG state is restored
    b = corrupt_image(image, corruption, 3, seed=7)
    c = corrupt_image(image, corruption, 3, seed=8)
    assert a.dtype == np.uint8 and a.shape == image.shape
    assert a.tobytes() == b.tobytes() and not np.array_equal(a, c) and not np.array_equal(a, image)


def test_small_and_grey_images_are_resized_around_the_corruption():
    """imagecorruptions refuses images below 32x32: they are upsampled, corrupted and downsampled back."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (32, 32, 1), dtype=np.uint8)
    for corruption in ("zoom_blur", "frost", "motion_blur", "contrast"):
        out = corrupt_image(small, corruption, 5, seed=1)
        assert out.shape == small.shape and out.dtype == np.uint8
        assert corrupt_image(grey, corruption, 5, seed=1).shape == grey.shape
    big = corrupt_image(small, "contrast", 5, seed=1, min_size=64)
    assert big.shape == small.shape and not np.array_equal(big, corrupt_image(small, "contrast", 5, seed=1))


def test_generation_does_not_depend_on_order_or_sharding(tmp_path, digits_test, monkeypatch):
    n, seed = 12, 3
    generator = CorruptionGenerator(digits_test, range(n), seed=seed, cache_dir=tmp_path, progress=False)
    split = generator.generate_shard("shot_noise", 4)
    assert split["index"].tolist() == list(range(n))
    images = digit_images(digits_test, n)
    for i in reversed(range(n)):  # one by one, in reverse order
        expected = corrupt_image(images[i], "shot_noise", 4, image_seed(seed, "shot_noise", 4, i))
        assert split["images"][i].tobytes() == expected.tobytes()
    assert split["labels"].tolist() == digits_test.tensors[1][:n].tolist()

    class Rank1Of3:  # what rank 1 of a 3-process run computes
        @staticmethod
        def current():
            from robustbench_labelaug.distributed import DistInfo

            return DistInfo(rank=1, world_size=3)

        gather_objects = staticmethod(lambda obj: [obj])

    monkeypatch.setattr(corr, "dist_utils", Rank1Of3)
    shard = CorruptionGenerator(digits_test, range(n), seed=seed, cache_dir=tmp_path,
                                progress=False).generate_shard("shot_noise", 4)
    assert shard["index"].tolist() == [1, 4, 7, 10]
    np.testing.assert_array_equal(shard["images"], split["images"][1::3])
    other = CorruptionGenerator(digits_test, range(n), seed=seed + 1, cache_dir=tmp_path, progress=False)
    assert not np.array_equal(other.generate_shard("shot_noise", 4)["images"], split["images"][1::3])


def test_generated_errors_match_independent_predictions_and_cache_is_reused(tmp_path, digits_test,
                                                                            trained_digits_model, monkeypatch):
    """E_{c,s} equals the error of the model's own predictions on images corrupted here one by one; a second
    run (even without the split cache) reads the cached corruptions: nothing is regenerated or rewritten."""
    n, model = 24, trained_digits_model
    settings = {"n_examples": n, "corruptions": ["gaussian_noise", "pixelate"], "severities": [1, 5],
                "cache_dir": str(tmp_path / "cache")}
    evaluator = create_evaluator("corruptions", **settings)
    first = evaluator.run(model, digits_test, ctx(num_classes=10))
    chosen = evaluator.example_indices(digits_test)  # n examples spread over the classes
    assert len(chosen) == n and len(set(digits_test.targets[chosen].tolist())) == 10
    images = [to_uint8_hwc(digits_test[i][0]) for i in chosen]
    labels = digits_test.tensors[1][chosen]
    all_true, all_pred = [], []
    for c in ("gaussian_noise", "pixelate"):
        for k, s in enumerate((1, 5)):
            x = torch.stack([torch.from_numpy(corrupt_image(im, c, s, image_seed(0, c, s, i))).permute(2, 0, 1)
                             for i, im in zip(chosen, images)]).float() / 255
            with torch.no_grad():
                pred = model(x)[:, :10].argmax(1)
            assert first.details["E"][c][k] == pytest.approx(100 * (pred != labels).float().mean().item())
            all_true.append(labels)
            all_pred.append(pred)
    y, p = torch.cat(all_true), torch.cat(all_pred)
    per_class = first.classwise["corruptions"]["error"]
    assert per_class[3] == pytest.approx(100 * (p[y == 3] != 3).float().mean().item())
    assert first.metrics["mce"] == pytest.approx(np.mean([np.mean(v) for v in first.details["E"].values()]))
    assert "mce_alexnet" not in first.metrics and first.details["source"].startswith("generated")

    files = sorted((tmp_path / "cache").rglob("*.npz"))
    assert len(files) == 4
    stamps = [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files]

    def refuse(*args, **kwargs):
        raise AssertionError("corruptions were regenerated")

    monkeypatch.setattr("imagecorruptions.corrupt", refuse)
    second = create_evaluator("corruptions", **settings).run(model, digits_test, ctx(num_classes=10))
    assert second.to_dict() == first.to_dict()
    assert [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files] == stamps
    with pytest.raises(AssertionError, match="regenerated"):  # another seed is another cache entry
        create_evaluator("corruptions", **settings, seed=1).run(model, digits_test, ctx(num_classes=10))
