"""ReaL and ImageNet-X evaluators on tiny ImageNet-layout folders with official validation file names.

Each image is a solid colour whose red value encodes its position; a lookup "model" turns that code into a
chosen prediction, so the expected errors follow from the design below by hand."""

from __future__ import annotations

import json
import math
from importlib import resources

import numpy as np
import pytest
import torch
from torch import nn

from robustbench_labelaug import UserError, create_classifier
from robustbench_labelaug.data import create_dataset
from robustbench_labelaug.evaluation import EvalContext, create_evaluator
from robustbench_labelaug.scoring import NUM_VAL_IMAGES, official_val_labels, real_error

from .fixtures_imagenet import make_imagenet_folder, official_val_ids, val_name


def code_colour(code: int) -> tuple[int, int, int]:
    return (8 * code + 4, 128, 128)


class LookupModel(nn.Module):
    """1000 logits, one-hot at ``predictions[code]`` where ``code`` is read from the red channel."""

    def __init__(self, predictions: list[int]) -> None:
        super().__init__()
        self.register_buffer("predictions", torch.tensor(predictions, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = ((x[:, 0].mean(dim=(1, 2)) * 255 - 4) / 8).round().long().clamp(0, len(self.predictions) - 1)
        return nn.functional.one_hot(self.predictions[code], 1000).float()


@pytest.fixture(scope="module")
def real_sets() -> list[list[int]]:
    return json.loads((resources.files("timm.data") / "_info" / "imagenet_real_labels.json").read_text())


def kind_of(real_sets, image_id: int, cls: int) -> str:
    s = real_sets[image_id - 1]
    return "C" if not s else "D" if cls not in s else "A" if len(s) == 1 else "B"


def pick(real_sets, cls: int, kind: str) -> int:
    return next(i for i in official_val_ids(cls) if kind_of(real_sets, i, cls) == kind)


def build(root, image_ids: list[int], predictions: dict[int, int]):
    """Folder with ``image_ids`` in their official class folders, colours coding their order, and the
    lookup model predicting ``predictions[image_id]``."""
    order = sorted(image_ids, key=lambda i: (val_name(i),))
    codes = {image_id: k for k, image_id in enumerate(order)}
    make_imagenet_folder(root, val_file_ids=image_ids, colors=lambda i: code_colour(codes[i]))
    model = LookupModel([predictions[i] for i in order])
    return create_dataset("imagenet", root, "val", input_size=32), model


def ctx(out_dir=None, num_classes: int = 1000) -> EvalContext:
    return EvalContext(num_classes=num_classes, out_dir=out_dir, batch_size=4, progress=False)


def outside(real_sets, image_id: int, cls: int) -> int:
    """A class that is neither ``cls`` nor in the image's ReaL set."""
    return next(x for x in range(999, -1, -1) if x != cls and x not in real_sets[image_id - 1])


@pytest.fixture
def real_design(tmp_path, real_sets):
    """Classes 3, 4, 5 with images of ReaL kinds A = {c}, B = {c, ...}, C = {} (skipped), D = set without c.

    class 3: A right, B predicted its other ReaL label (ReaL-right, top-1 wrong), C skipped, D predicted c
             (top-1 right, ReaL wrong)                        -> ReaL 1/3 wrong, top-1 1/4 wrong
    class 4: A wrong, B other label, C skipped, D predicted c  -> ReaL 2/3 wrong, top-1 2/4 wrong
    class 5: A right, B other label, C skipped                 -> ReaL 0/2 wrong, top-1 1/3 wrong"""
    preds: dict[int, int] = {}
    for cls, kinds in ((3, "ABCD"), (4, "ABCD"), (5, "ABC")):
        for kind in kinds:
            i = pick(real_sets, cls, kind)
            if kind == "B":
                preds[i] = next(label for label in real_sets[i - 1] if label != cls)
            elif kind == "A" and cls == 4:
                preds[i] = outside(real_sets, i, cls)
            else:
                preds[i] = cls
    dataset, model = build(tmp_path / "data", list(preds), preds)
    return dataset, model, preds


def test_real_evaluator_hand_computed(tmp_path, real_design):
    dataset, model, preds = real_design
    result = create_evaluator("real").run(model, dataset, ctx(tmp_path / "out"))
    assert result.metrics["num_scored"] == 8
    assert result.metrics["real_error"] == pytest.approx(100 * 3 / 8)
    assert result.details["num_empty_label_sets"] == 3
    assert result.details["top1_error_original_labels"] == pytest.approx(100 * 4 / 11)
    assert result.num_examples == 11
    cw = result.classwise["real"]
    np.testing.assert_allclose([cw["error"][c] for c in (3, 4, 5)], [100 / 3, 200 / 3, 0.0])
    assert math.isnan(cw["error"][0]) and len(cw["error"]) == 1000
    summary = cw["summary"]
    assert summary["mean"] == pytest.approx(100 / 3)
    assert summary["sd"] == pytest.approx(math.sqrt((0 + (100 / 3) ** 2 + (100 / 3) ** 2) / 3))
    assert (summary["worst_class"], summary["best_class"], summary["num_classes_scored"]) == (4, 5, 3)
    assert (tmp_path / "out" / "real" / "all.npz").exists()
    # a second run reads the cached predictions (a model that would now predict differently is not called)
    again = create_evaluator("real").run(LookupModel([0] * 11), dataset, ctx(tmp_path / "out"))
    assert again.metrics == result.metrics
    assert json.loads(result.to_json())["metrics"]["real_error"] == pytest.approx(37.5)


def test_real_evaluator_n_examples_and_timm_model(tmp_path, real_sets):
    """A real (untrained) package classifier: the evaluator scores exactly its predictions."""
    ids = official_val_ids(0, 3) + official_val_ids(1, 3)
    make_imagenet_folder(tmp_path / "data", val_file_ids=ids)
    dataset = create_dataset("imagenet", tmp_path / "data", "val", input_size=32)
    torch.manual_seed(0)
    model = create_classifier("resnet8_tiny", 1000).eval()
    result = create_evaluator("real", n_examples=4).run(model, dataset, ctx())
    with torch.no_grad():
        preds = model(torch.stack([dataset[i][0] for i in range(4)])).argmax(1).numpy()
    names = [dataset.filename(i) for i in range(4)]
    error, count = real_error(names, preds, return_count=True)
    assert result.num_examples == 4
    assert result.metrics == {"real_error": pytest.approx(error), "num_scored": count}


def test_real_evaluator_bad_input_writes_nothing(tmp_path, real_sets):
    ids = official_val_ids(3, 2)
    make_imagenet_folder(tmp_path / "data", val_file_ids=ids)
    odd = tmp_path / "data" / "val" / "n01491361" / "tiger_shark.JPEG"
    (tmp_path / "data" / "val" / "n01491361" / val_name(ids[0])).rename(odd)
    dataset = create_dataset("imagenet", tmp_path / "data", "val", input_size=32)
    with pytest.raises(UserError, match=r"'tiger_shark\.JPEG'.*ILSVRC2012_val_XXXXXXXX\.JPEG"):
        create_evaluator("real").run(LookupModel([3]), dataset, ctx(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    # an official image in the folder of another class
    make_imagenet_folder(tmp_path / "moved", val_file_ids={"n01440764": official_val_ids(3, 1)})
    moved = create_dataset("imagenet", tmp_path / "moved", "val", input_size=32)
    with pytest.raises(UserError, match="official ImageNet class is 3"):
        create_evaluator("real").run(LookupModel([3]), moved, ctx(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    with pytest.raises(UserError, match="K=10"):
        create_evaluator("real").run(LookupModel([3]), moved, ctx(tmp_path / "out", num_classes=10))


@pytest.fixture(scope="module")
def inx_annotations():
    imagenet_x = pytest.importorskip("imagenet_x")
    return imagenet_x.load_annotations(filter_prototypes=False), imagenet_x


def test_imagenet_x_evaluator_hand_computed(tmp_path, inx_annotations):
    """2 pose images (1 wrong), 2 background (right), 2 color (wrong), a prototype and an unannotated image
    (skipped): overall 3/6 wrong; error ratios pose 1, background 0, color 2."""
    annotations, imagenet_x = inx_annotations
    prototypes = set(imagenet_x.load_annotations(filter_prototypes=False).file_name) - set(
        imagenet_x.load_annotations().file_name)
    plain = annotations[~annotations.file_name.isin(prototypes)]
    chosen = {f: [int(n[15:23]) for n in plain.loc[plain[f] == 1, "file_name"].head(2)]
              for f in ("pose", "background", "color")}
    prototype = int(sorted(prototypes)[0][15:23])
    annotated = {int(n[15:23]) for n in annotations.file_name}
    unannotated = next(i for i in range(1, NUM_VAL_IMAGES + 1) if i not in annotated)
    ids = [*chosen["pose"], *chosen["background"], *chosen["color"], prototype, unannotated]
    truth = dict(zip(ids, official_val_labels([val_name(i) for i in ids]).tolist()))
    wrong = {i: (truth[i] + 1) % 1000 for i in ids}
    preds = {chosen["pose"][0]: truth[chosen["pose"][0]], chosen["pose"][1]: wrong[chosen["pose"][1]],
             **{i: truth[i] for i in chosen["background"]}, **{i: wrong[i] for i in chosen["color"]},
             prototype: wrong[prototype], unannotated: wrong[unannotated]}
    dataset, model = build(tmp_path / "data", ids, preds)
    result = create_evaluator("imagenet_x").run(model, dataset, ctx(tmp_path / "out"))
    m = result.metrics
    assert (m["error"], m["num_annotated"], result.details["num_skipped"]) == (pytest.approx(50.0), 6, 2)
    assert (m["error_pose"], m["error_ratio_pose"]) == (pytest.approx(50.0), pytest.approx(1.0))
    assert (m["error_background"], m["error_ratio_background"]) == (0.0, 0.0)
    assert (m["error_color"], m["error_ratio_color"]) == (pytest.approx(100.0), pytest.approx(2.0))
    assert math.isnan(m["error_texture"]) and math.isnan(m["error_ratio_texture"])
    assert result.details["factors"]["color"]["count"] == 2
    assert result.details["worst_factor"] == "color"
    assert json.loads(result.to_json())["metrics"]["error_texture"] is None
    # keeping prototypes adds the (wrong) prototype image: 4/7 wrong
    kept = create_evaluator("imagenet_x", filter_prototypes=False).run(model, dataset, ctx())
    assert (kept.metrics["num_annotated"], kept.metrics["error"]) == (7, pytest.approx(400 / 7))


def test_imagenet_x_evaluator_no_annotated_images(tmp_path, inx_annotations):
    annotations, _ = inx_annotations
    annotated = {int(n[15:23]) for n in annotations.file_name}
    ids = [i for i in range(1, NUM_VAL_IMAGES + 1) if i not in annotated][:3]
    make_imagenet_folder(tmp_path / "data", val_file_ids=ids)
    dataset = create_dataset("imagenet", tmp_path / "data", "val", input_size=32)
    with pytest.raises(UserError, match="none of the 3 images .* ImageNet-X annotation"):
        create_evaluator("imagenet_x").run(LookupModel([0]), dataset, ctx(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    with pytest.raises(UserError, match="which_factor"):
        create_evaluator("imagenet_x", which_factor="all")
