"""CIFAR-10/100 from torchvision's files, RobustBench's subset, CIFAR-10-C in RobustBench's layout (generated data)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustbench_labelaug.data import create_dataset, dataset_num_classes
from robustbench_labelaug.data.cifar import (
    CIFAR_SPECS,
    check_cifar_c,
    cifar_c_split,
    robustbench_cifar_subset,
)
from robustbench_labelaug.data.registry import CIFAR10_CLASSES
from robustbench_labelaug.errors import UserError

from .fixtures_cifar import write_cifar10, write_cifar100, write_cifar_c

pytestmark = pytest.mark.filterwarnings("ignore:.*not the official:UserWarning")


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    test = write_cifar10(root)
    return root, test


def test_cifar10_reads_torchvision_files(cifar_dir):
    root, test = cifar_dir
    with pytest.warns(UserWarning, match="not the official"):
        ds = create_dataset("cifar10", root, "test")
    assert len(ds) == 20 and ds.classes == list(CIFAR10_CLASSES) and ds.classes[0] == "airplane"
    assert ds.targets == test["labels"].tolist()
    x, y = ds[3]
    assert x.shape == (3, 32, 32) and y == test["labels"][3]
    expected = torch.from_numpy(test["images"][3]).permute(2, 0, 1).float() / 255
    assert torch.allclose(x, expected)
    assert dataset_num_classes("cifar10") == 10 and dataset_num_classes("cifar100") == 100


def test_cifar_training_augmentation_is_crop_and_flip(cifar_dir):
    root, _ = cifar_dir
    ds = create_dataset("cifar10", root, "train", is_training=True)
    names = [type(t).__name__ for t in ds.transform.transforms]
    assert names == ["RandomCrop", "RandomHorizontalFlip", "ToTensor"]
    assert ds.transform.transforms[0].padding == 4 and ds.transform.transforms[0].size == (32, 32)
    assert len(ds) == 10 and ds[0][0].shape == (3, 32, 32)


def test_cifar100_fine_labels_and_meta(tmp_path):
    write_cifar100(tmp_path)
    ds = create_dataset("cifar100", tmp_path, "test")
    assert len(ds) == 10 and ds.num_classes == 100 and ds.classes[5] == "class_05"
    assert CIFAR_SPECS["cifar100"].c_folder == "CIFAR-100-C"


def test_missing_files_name_them(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(UserError, match=r"test_batch.*cifar-10-python.tar.gz") as err:
        create_dataset("cifar10", tmp_path, "test")
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="needs --data-dir"):
        create_dataset("cifar10", None, "test")
    with pytest.raises(UserError, match="has no split .holdout.: use one of train, test"):
        create_dataset("cifar10", tmp_path, "holdout")


def test_download_offline_is_one_line(tmp_path, monkeypatch):
    import urllib.error

    from torchvision import datasets

    def offline(self):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(datasets.CIFAR10, "download", offline)
    with pytest.raises(UserError, match=r"could not download cifar10.*cifar-10-batches-py") as err:
        create_dataset("cifar10", tmp_path, "test", download=True)
    assert "\n" not in str(err.value)


def test_damaged_batch_file(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="cannot be read"):
        create_dataset("cifar10", tmp_path, "test")


def test_robustbench_subset_is_its_first_n(cifar_dir, monkeypatch):
    """Against RobustBench's own load_cifar10 (its md5 checks bypassed for the generated files)."""
    from torchvision.datasets import cifar as tv_cifar

    from robustbench_labelaug.compat import import_robustbench

    import_robustbench()
    from robustbench.data import load_cifar10

    root, _ = cifar_dir
    ds = create_dataset("cifar10", root, "test")
    sub = robustbench_cifar_subset(ds, 7)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
    x_rb, y_rb = load_cifar10(7, data_dir=str(root))
    xs = torch.stack([sub[i][0] for i in range(len(sub))])
    assert torch.equal(xs, x_rb) and sub.targets == y_rb.tolist()
    assert sub.classes == list(CIFAR10_CLASSES) and sub.filename(0) == "cifar10_test_00000"
    with pytest.raises(UserError, match="1..20"):
        robustbench_cifar_subset(ds, 21)


# ----------------------------------------------------------------------------------------------------------------
# CIFAR-10-C
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cifar_c(cifar_dir):
    root, test = cifar_dir
    written = write_cifar_c(root, test["labels"])
    return root, test, written


def test_cifar_c_split_matches_the_npy_layout(cifar_c):
    root, test, written = cifar_c
    ds = create_dataset("cifar10", root, "test")
    indices = [0, 3, 11]
    folder = check_cifar_c(root, ["gaussian_noise", "fog"], [1, 2, 3, 4, 5], ds, indices)
    assert folder == root / "CIFAR-10-C"
    for severity in (1, 4):
        split = cifar_c_split(root, "fog", severity, ds, indices)
        for i in indices:
            x, y = split[i]
            expected = torch.from_numpy(written["fog"][severity - 1][i]).permute(2, 0, 1).float() / 255
            assert torch.equal(x, expected) and y == test["labels"][i]
    # data_dir may also be the CIFAR-10-C folder itself
    assert check_cifar_c(root / "CIFAR-10-C", ["fog"], [1], ds, indices) == root / "CIFAR-10-C"


def test_corruptions_evaluator_uses_cifar_c(cifar_c, monkeypatch, tmp_path):
    """The dataset registry names cifar10's corruption layout (cifar_c), so the evaluator reads the npy files: E per
    corruption x severity, mCE and the class-wise block agree with predictions computed by hand on the npy images."""
    from robustbench_labelaug.evaluation import EvalContext, create_evaluator
    from robustbench_labelaug.models import create_classifier

    root, test, written = cifar_c
    ds = create_dataset("cifar10", root, "test")
    torch.manual_seed(0)
    model = create_classifier("resnet8_tiny", 10).eval()
    ev = create_evaluator("corruptions", data_dir=str(root), corruptions=["gaussian_noise", "fog"],
                          severities=[1, 5], n_examples=12)
    result = ev.run(model, ds, EvalContext(num_classes=10, out_dir=tmp_path, batch_size=5, progress=False,
                                           dataset="cifar10"))
    assert result.details["source"] == "cifar_c" and "mce_normalized" not in result.metrics
    idx = ev.example_indices(ds)
    with torch.no_grad():
        for c in ("gaussian_noise", "fog"):
            for j, s in enumerate((1, 5)):
                x = torch.from_numpy(written[c][s - 1][idx]).permute(0, 3, 1, 2).float() / 255
                err = 100.0 * float((model(x).argmax(1).numpy() != test["labels"][idx]).mean())
                assert result.details["E"][c][j] == pytest.approx(err)
    assert result.metrics["mce"] == pytest.approx(np.mean([np.mean(v) for v in result.details["E"].values()]))
    assert len(result.classwise["corruptions"]["error"]) == 10
    assert "worst_class" in result.classwise["corruptions"]["summary"]


def test_cifar_c_bad_layouts(cifar_dir, tmp_path):
    root, test = cifar_dir
    ds = create_dataset("cifar10", root, "test")
    with pytest.raises(UserError, match=r"CIFAR-10-C does not exist.*labels.npy") as err:
        check_cifar_c(tmp_path, ["fog"], [1], ds, [0, 1])
    assert "\n" not in str(err.value)
    write_cifar_c(tmp_path, test["labels"], corruptions=("fog",), n=4)
    with pytest.raises(UserError, match=r"snow.npy is missing"):
        check_cifar_c(tmp_path, ["snow"], [1], ds, [0, 1])
    # truncated file: the header promises 50 000 images
    fog = tmp_path / "CIFAR-10-C" / "fog.npy"
    with open(fog, "r+b") as f:
        f.truncate(100_000)
    with pytest.raises(UserError, match=r"fog.npy is not a complete .npy file.*truncated"):
        check_cifar_c(tmp_path, ["fog"], [1], ds, [0, 1])
    # wrong layout: CHW float images
    np.save(fog, np.zeros((10, 3, 32, 32), dtype=np.float32))
    with pytest.raises(UserError, match=r"expected uint8 \(50000\+, 32, 32, 3\)"):
        check_cifar_c(tmp_path, ["fog"], [1, 5], ds, [0, 1])
    # labels of another test set (e.g. CIFAR-100-C put under the CIFAR-10-C name)
    np.save(tmp_path / "CIFAR-10-C" / "labels.npy", np.full(50_000, 9, dtype=np.uint8))
    with pytest.raises(UserError, match="does not match the cifar10 test labels"):
        check_cifar_c(tmp_path, ["fog"], [1], ds, [0, 1])
    with pytest.raises(UserError, match="first 10000 test images"):
        check_cifar_c(tmp_path, ["fog"], [1], ds, [10_000])
    with pytest.raises(UserError, match="need the clean data as dataset cifar10"):
        check_cifar_c(tmp_path, ["fog"], [1], create_dataset("digits", split="test"), [0])
