"""Issue #21 on the CPU: ``runtime.decode: gpu`` (bytes in the workers, batched decode + resize + crop on the
evaluation device; here device="cpu") against the PIL path on generated JPEGs, PNG / CMYK / grey / damaged files,
the dataset wrappers, the CUDA-stream prefetcher's ordering (with fake streams) and ``runtime.batch_size: auto``
(with a fake out-of-memory error)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch import nn
from torch.utils.data import TensorDataset

from robustbench_labelaug import UserError
from robustbench_labelaug.data import create_dataset, imagenet_wnids
from robustbench_labelaug.data.device_decode import (
    _NOTED,
    DeviceDecoder,
    device_batches,
    encoded_source,
    is_complete_jpeg,
    tensor_transform,
)
from robustbench_labelaug.data.folder import BadImageError, folder_transform
from robustbench_labelaug.data.prefetch import move_batch, prefetch
from robustbench_labelaug.evaluation import EvalContext, create_evaluator
from robustbench_labelaug.runner import feeding

from .fixtures_jpeg import make_jpeg_folder, photo_like

WNIDS = imagenet_wnids()[:4]
SIZES = ((120, 90), (90, 120), (100, 100), (130, 87))  # small ImageNet-like aspect ratios: fast on 2 cores


class MeanColour(nn.Module):
    """1000 logits from the image's mean colour and a 4x4 pooled layout (a small, smooth classifier)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * 4 * 4, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(nn.functional.adaptive_avg_pool2d(x, 4).flatten(1))


@pytest.fixture(scope="module")
def jpeg_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("jpegs")
    make_jpeg_folder(root, WNIDS, 24, sizes=SIZES)
    return root


def _ctx(decode: str, num_classes: int = 1000, **kw) -> EvalContext:
    return EvalContext(num_classes=num_classes, batch_size=8, progress=False, decode=decode, predictions={}, **kw)


def assert_close_to_pil(x: torch.Tensor, ref: torch.Tensor) -> None:
    """PIL resizes in 8-bit fixed point: a pixel may differ by a grey level (two, after both passes): on under 1 % of the pixels at 224 from ImageNet sizes, a few % on these tiny images."""
    diff = (x - ref).abs() * 255
    assert diff.max().item() <= 2 + 1e-4 and (diff > 0.5).float().mean().item() < 0.05, diff.max()


def _device_images(dataset, batch_size: int = 8) -> tuple[torch.Tensor, list[int], DeviceDecoder]:
    loader, decoder = device_batches(dataset, list(range(len(dataset))), batch_size=batch_size, num_workers=0,
                                     device="cpu")
    xs, idx = [], []
    for batch in loader:
        x, _, i = decoder(batch)
        xs.append(x)
        idx += i.tolist()
    return torch.cat(xs), idx, decoder


def test_device_path_matches_the_pil_path(jpeg_folder):
    """Same size, pixels within PIL's rounding, same labels; the clean evaluator's predictions equal the PIL
    path's."""
    dataset = create_dataset("imagenet", jpeg_folder, "val", input_size=64)
    x, idx, decoder = _device_images(dataset)
    ref = torch.stack([dataset[i][0] for i in idx])
    assert x.shape == ref.shape == (24, 3, 64, 64) and x.dtype == ref.dtype
    assert_close_to_pil(x, ref)
    assert decoder.stats == {"jpeg_device": 24, "pil": 0}
    preds = {}
    for decode in ("cpu", "gpu"):
        ctx = _ctx(decode)
        result = create_evaluator("clean").run(MeanColour(), dataset, ctx)
        (held,) = ctx.predictions.values()
        preds[decode] = (result.metrics["error"], held[1]["y_pred"], held[1]["y_true"])
    assert preds["cpu"][0] == preds["gpu"][0]
    np.testing.assert_array_equal(preds["cpu"][1], preds["gpu"][1])
    np.testing.assert_array_equal(preds["cpu"][2], preds["gpu"][2])


@pytest.mark.parametrize("crop_pct, interpolation", [(1.0, "bicubic"), (0.875, "bilinear")])
def test_the_transform_follows_crop_pct_and_interpolation(jpeg_folder, crop_pct, interpolation):
    dataset = create_dataset("imagenet", jpeg_folder, "val", input_size=48, crop_pct=crop_pct,
                             interpolation=interpolation)
    steps = tensor_transform(dataset.transform)
    assert [type(s).__name__ for s in steps.geometry] == ["Resize", "CenterCrop"]
    assert steps.geometry[0].size == round(48 / crop_pct) or steps.geometry[0].size == int(48 / crop_pct)
    x, idx, _ = _device_images(dataset, batch_size=24)
    ref = torch.stack([dataset[i][0] for i in idx])
    assert_close_to_pil(x, ref)


def test_png_cmyk_and_grey_files_work_and_a_damaged_file_gets_one_line(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "val" / WNIDS[0]
    folder.mkdir(parents=True)
    photo_like(rng, 90, 70).save(folder / "a.png")
    photo_like(rng, 90, 70).convert("CMYK").save(folder / "b.JPEG", quality=90)
    photo_like(rng, 70, 90).convert("L").save(folder / "c.JPEG", quality=90)
    photo_like(rng, 80, 80).save(folder / "d.JPEG", quality=90)
    dataset = create_dataset("imagenet", tmp_path, "val", input_size=32)
    x, idx, decoder = _device_images(dataset)
    ref = torch.stack([dataset[i][0] for i in idx])
    assert_close_to_pil(x, ref)
    assert decoder.stats["pil"] >= 1 and decoder.stats["jpeg_device"] >= 2  # the PNG went to PIL

    good = (folder / "d.JPEG").read_bytes()
    assert is_complete_jpeg(torch.frombuffer(bytearray(good), dtype=torch.uint8))
    (folder / "e.JPEG").write_bytes(good[: len(good) // 2])  # truncated
    dataset = create_dataset("imagenet", tmp_path, "val", input_size=32)
    with pytest.raises(BadImageError) as caught:
        _device_images(dataset)
    assert "e.JPEG" in str(caught.value) and len(str(caught.value).splitlines()) == 1
    (folder / "e.JPEG").write_bytes(b"\xff\xd8\xff" + b"not a jpeg at all" + b"\xff\xd9")  # complete, but garbage
    dataset = create_dataset("imagenet", tmp_path, "val", input_size=32)
    with pytest.raises(UserError) as caught:  # through an evaluator: the same one line
        create_evaluator("clean").run(MeanColour(), dataset, _ctx("gpu"))
    assert str(folder / "e.JPEG") in str(caught.value) and len(str(caught.value).splitlines()) == 1


def test_subsets_and_imagenet_c_splits_resolve_to_their_files(jpeg_folder, tmp_path):
    from robustbench_labelaug.data.corruptions import imagenet_c_split
    from robustbench_labelaug.data.subsets import NamedSubset

    dataset = create_dataset("imagenet", jpeg_folder, "val", input_size=32)
    subset = NamedSubset(dataset, [5, 2, 17])
    files, _ = encoded_source(subset, [0, 2])
    assert [Path(p).name for p, _ in files.samples] == [dataset.filename(5), dataset.filename(17)]
    assert [t for _, t in files.samples] == [dataset.targets[5], dataset.targets[17]]
    # an ImageNet-C split: the corrupted copy of each clean image, indexed by the clean index
    root = tmp_path / "inc"
    for i in range(len(dataset)):
        rel = dataset.filename(i, basename=False)
        (root / "fog" / "1" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.open(jpeg_folder / "val" / rel).resize((40, 40)).save(root / "fog" / "1" / rel, "JPEG")
    split = imagenet_c_split(root, "fog", 1, dataset, [3, 9], dataset.transform)
    files, _ = encoded_source(split, [9, 3])
    assert [p for p, _ in files.samples] == [str(root / "fog" / "1" / dataset.filename(i, basename=False))
                                             for i in (9, 3)]
    assert files.indices == [9, 3]


def test_a_dataset_without_files_is_loaded_as_usual(digits_test):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = create_evaluator("clean", n_examples=24).run(MeanColourSmall(), digits_test, _ctx("gpu", 10))
    b = create_evaluator("clean", n_examples=24).run(MeanColourSmall(), digits_test, _ctx("cpu", 10))
    assert a.metrics == b.metrics
    assert any("decoded on the CPU as usual" in str(w.message) for w in caught) or "DigitsDataset" in _NOTED
    assert encoded_source(TensorDataset(torch.zeros(2, 3, 8, 8), torch.zeros(2)), [0, 1]) is None


class MeanColourSmall(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(2, 3)))


def test_transforms_without_a_tensor_equivalent_are_refused():
    from torchvision import transforms as T

    assert tensor_transform(folder_transform(32, False)) is not None
    assert tensor_transform(folder_transform(32, True)) is None  # RandomResizedCrop: training, not evaluation
    assert tensor_transform(T.Compose([T.Resize(8), T.Grayscale(), T.ToTensor()])) is None
    assert tensor_transform(T.Compose([T.Resize(8)])) is None  # no ToTensor: PIL images, not this path


# ----------------------------------------------------------------------------------------------------------------
# prefetch
# ----------------------------------------------------------------------------------------------------------------


class FakeStreams:
    """Records the prefetcher's stream operations in order."""

    def __init__(self, log: list) -> None:
        self.log = log

    def on_side(self):
        log = self.log

        class Side:
            def __enter__(self):
                log.append("side{")

            def __exit__(self, *exc):
                log.append("}side")

        return Side()

    def wait_side(self) -> None:
        self.log.append("wait")

    def hand_over(self, tensor) -> None:
        self.log.append(f"hand_over {int(tensor[0])}")


def test_prefetch_copies_the_next_batch_before_handing_out_this_one():
    log: list = []
    batches = [(torch.tensor([i]),) for i in range(3)]

    def to_device(batch):
        log.append(f"copy {int(batch[0][0])}")
        return batch

    out = []
    for (x,) in prefetch(iter(batches), to_device, "cpu", streams=FakeStreams(log)):
        log.append(f"compute {int(x[0])}")
        out.append(int(x[0]))
    assert out == [0, 1, 2]
    assert log == ["side{", "copy 0", "}side",
                   "wait", "hand_over 0", "side{", "copy 1", "}side", "compute 0",
                   "wait", "hand_over 1", "side{", "copy 2", "}side", "compute 1",
                   "wait", "hand_over 2", "compute 2"]


def test_prefetch_on_a_cpu_device_is_a_plain_map():
    calls: list = []
    batches = [(torch.tensor([i]), torch.tensor([2 * i])) for i in range(3)]
    mover = move_batch("cpu")
    got = list(prefetch(iter(batches), lambda b: calls.append(1) or mover(b), "cpu"))
    assert len(calls) == 3 and [int(x[0]) for x, _ in got] == [0, 1, 2] and [int(y[0]) for _, y in got] == [0, 2, 4]
    assert list(prefetch(iter([]), mover, "cpu")) == []


# ----------------------------------------------------------------------------------------------------------------
# batch size: chosen, or probed once
# ----------------------------------------------------------------------------------------------------------------


def _fake_step(limit: int, tried: list, error=torch.cuda.OutOfMemoryError):
    def step(b: int) -> None:
        tried.append(b)
        if b > limit:
            raise error("CUDA out of memory. Tried to allocate 2.00 GiB")

    return step


@pytest.mark.parametrize("limit, expected, tries", [(300, 256, [32, 64, 128, 256, 512]),
                                                    (5000, 1024, [32, 64, 128, 256, 512, 1024]),
                                                    (20, 16, [32, 16]), (1, 1, [32, 16, 8, 4, 2, 1])])
def test_the_probe_finds_the_largest_batch_that_fits(limit, expected, tries):
    tried, released = [], []
    assert feeding.probe_batch_size(_fake_step(limit, tried), release=lambda: released.append(1)) == expected
    assert tried == tries and len(released) == sum(b > limit for b in tries)


def test_the_probe_reports_other_errors_and_no_fit():
    with pytest.raises(ValueError, match="shape"):
        feeding.probe_batch_size(_fake_step(0, [], error=lambda m: ValueError("bad shape")))
    with pytest.raises(UserError, match="even a batch of 1 runs out of device memory"):
        feeding.probe_batch_size(_fake_step(0, []))
    assert feeding.probe_batch_size(_fake_step(100, [], error=RuntimeError)) == 64  # "out of memory" in a RuntimeError


def test_auto_batch_size_runs_the_attack_step_and_is_fixed_on_a_cpu():
    model = MeanColour()
    feeding.attack_step(model, (3, 16, 16), "cpu")(4)  # forward + input gradient runs
    assert feeding.auto_batch_size(model, (3, 16, 16), "cpu") == feeding.CPU_AUTO_BATCH
    assert feeding.resolve_batch_size(12, model, None, "cpu") == 12


# ----------------------------------------------------------------------------------------------------------------
# the config keys, end to end
# ----------------------------------------------------------------------------------------------------------------


def _model_checkpoint(path: Path) -> Path:
    from robustbench_labelaug import create_classifier

    torch.manual_seed(0)
    model = create_classifier("resnet8_tiny", 1000, 0)
    torch.save({"arch": "resnet8_tiny", "num_classes": 1000, "num_ops": 0,
                "mean": model.normalize.mean.flatten().tolist(), "std": model.normalize.std.flatten().tolist(),
                "state_dict": model.state_dict(), "args": {"adv_mode": "std", "dataset": "imagenet"}}, path)
    return path


def test_rbla_evaluate_with_decode_gpu_and_batch_size_auto_matches_the_cpu_path(jpeg_folder, tmp_path, capsys):
    from robustbench_labelaug.runner import evaluate_config, load_config

    ckpt = _model_checkpoint(tmp_path / "m.pth.tar")
    infos = {}
    for decode, batch in (("cpu", 8), ("gpu", "auto")):
        cfg = {"runtime": {"batch_size": batch, "device": "cpu", "decode": decode, "progress": False,
                           "plots": False, "output": str(tmp_path / decode)},
               "datasets": {"in": {"name": "imagenet", "data_dir": str(jpeg_folder), "input_size": 32}},
               "models": [{"name": "m", "checkpoint": str(ckpt)}],
               "evaluators": [{"name": "clean"}, {"name": "pgd", "settings": {"eps": 0.01, "steps": 2}}]}
        path = tmp_path / f"{decode}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        loaded = load_config(path)
        assert loaded.runtime.decode == decode and loaded.runtime.batch_size == batch
        infos[decode] = json.loads(evaluate_config(loaded, leaderboard=False)[0].read_text())
    assert "runtime.batch_size auto: 64 for model 'm' (no probe on a CPU device)" in capsys.readouterr().out
    measured = [{k: v for k, v in info["labelaug"]["measured"].items() if k != "classwise"}
                for info in infos.values()]
    assert measured[0] == measured[1]


@pytest.mark.parametrize("runtime, message", [
    ({"decode": "nvjpeg"}, "runtime.decode 'nvjpeg' is not known: use cpu"),
    ({"batch_size": "big"}, "runtime.batch_size must be an integer >= 1 or auto, got 'big'"),
    ({"batch_size": 0}, "runtime.batch_size must be >= 1, got 0"),
])
def test_bad_runtime_values_are_one_line(tmp_path, runtime, message):
    from robustbench_labelaug.runner import load_config

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"runtime": runtime, "datasets": {"d": {"name": "digits"}},
                                    "models": [{"zoo": "digits_std"}], "evaluators": ["clean"]}))
    with pytest.raises(UserError) as caught:
        load_config(path)
    assert message in str(caught.value) and len(str(caught.value).splitlines()) == 1
