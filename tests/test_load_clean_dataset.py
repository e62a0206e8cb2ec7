"""load_clean_dataset: RobustBench's (x, y) shape for every registered dataset, checked against RobustBench's own
loaders where it has one (CIFAR-10: load_cifar10; ImageNet: load_clean_dataset on its test-id list)."""

from __future__ import annotations

import pytest
import torch

import robustbench_labelaug
from robustbench_labelaug import UserError, load_clean_dataset
from robustbench_labelaug.compat import import_robustbench
from robustbench_labelaug.data import create_dataset, imagenet_wnids, list_datasets
from robustbench_labelaug.data.registry import get_dataset_spec

from .fixtures_cifar import write_cifar10, write_cifar100
from .fixtures_imagenet import make_imagenet_folder

pytestmark = pytest.mark.filterwarnings("ignore:.*not the official:UserWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory):
    """A small folder for every dataset that needs one (the test data of test_registries' walk)."""
    imagenet = tmp_path_factory.mktemp("imagenet")
    make_imagenet_folder(imagenet, wnids=list(imagenet_wnids()[:2]), per_class=2, train_per_class=1)
    cifar = tmp_path_factory.mktemp("cifar")
    write_cifar10(cifar)
    write_cifar100(cifar)
    return {"cifar10": cifar, "cifar100": cifar}, imagenet


@pytest.mark.parametrize("name", list_datasets())
def test_every_registered_dataset_loads_as_x_y(name, data_dirs):
    """Every split of every dataset: x float32 N x 3 x H x W in [0,1], y int64 in 0..K-1, equal to the dataset's
    own items in order; n_examples takes the first n."""
    by_name, imagenet = data_dirs
    spec = get_dataset_spec(name)
    data_dir = by_name.get(name, imagenet) if spec.needs_data_dir else None
    k = spec.count_classes(data_dir)
    for split in spec.splits:
        x, y = load_clean_dataset(name, data_dir=data_dir, split=split, subset=None, input_size=32)
        ds = create_dataset(name, data_dir, split, input_size=32)
        assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape[1:] == (3, 32, 32)
        assert len(x) == len(y) == len(ds) and 0.0 <= float(x.min()) <= float(x.max()) <= 1.0
        assert int(y.min()) >= 0 and int(y.max()) < k
        first = ds[len(ds) - 1]
        assert torch.equal(x[-1], first[0]) and int(y[-1]) == int(first[1])
        x2, y2 = load_clean_dataset(name, 2, data_dir, split, subset=None, input_size=32)
        assert torch.equal(x2, x[:2]) and torch.equal(y2, y[:2])


def test_digits_defaults_are_the_test_split_and_the_package_exports_it():
    assert robustbench_labelaug.load_clean_dataset is load_clean_dataset
    x, y = load_clean_dataset("digits")
    assert x.shape == (360, 3, 32, 32) and sorted(set(y.tolist())) == list(range(10))
    x_val, _ = load_clean_dataset("digits", split="val")  # a synonym of test
    assert torch.equal(x, x_val)
    assert load_clean_dataset("digits", split="train")[0].shape[0] == 1437


@pytest.mark.parametrize("kwargs, match", [
    ({"n_examples": 0}, "n_examples must be an integer >= 1"),
    ({"n_examples": 361}, "n_examples=361 exceeds the 360 examples .* use n_examples <= 360"),
    ({"split": "holdout"}, "has no split 'holdout'"),
    ({"dataset": "mnist"}, "mnist"),
    ({"subset": "robustbench_typo"}, "has no subset 'robustbench_typo'"),
])
def test_bad_input_is_one_line(kwargs, match):
    kwargs = {"dataset": "digits", **kwargs}
    with pytest.raises(UserError, match=match) as info:
        load_clean_dataset(**kwargs)
    assert len(str(info.value).splitlines()) == 1


def test_cifar10_matches_robustbench_load_cifar10(data_dirs, monkeypatch):
    """RobustBench's BenchmarkDataset enum is accepted; the first n test images equal its load_cifar10's."""
    from torchvision.datasets import cifar as tv_cifar

    import_robustbench()
    from robustbench.data import load_cifar10
    from robustbench.model_zoo.enums import BenchmarkDataset

    root = data_dirs[0]["cifar10"]
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)  # generated files, not the official md5
    x_rb, y_rb = load_cifar10(7, data_dir=str(root))
    x, y = load_clean_dataset(BenchmarkDataset.cifar_10, 7, root)
    assert torch.equal(x, x_rb) and torch.equal(y, y_rb)


def test_imagenet_takes_robustbench_test_ids_in_its_order(tmp_path, monkeypatch):
    """On the evaluated split, the first n of RobustBench's ImageNet ids (classes mixed), as its own
    load_clean_dataset; subset=None takes the folder's order instead."""
    import torchvision.transforms as T

    from robustbench_labelaug.data import subsets

    from .test_robust_evaluators import GREY_LEVELS, fake_imagenet_val

    import_robustbench()
    import robustbench.data
    from robustbench.model_zoo.enums import BenchmarkDataset

    n = len(GREY_LEVELS)
    labels = fake_imagenet_val(tmp_path, GREY_LEVELS)
    ids = subsets.robustbench_image_ids()[:n]  # the images the folder holds (the full list needs all 5 000)
    monkeypatch.setattr(subsets, "robustbench_image_ids", lambda: ids)
    x_rb, y_rb = robustbench.data.load_clean_dataset(BenchmarkDataset.imagenet, n, str(tmp_path), T.ToTensor())
    for folder in (tmp_path / "val").iterdir():  # RobustBench needs all 1 000 class folders, ours refuses empty ones
        if not any(folder.iterdir()):
            folder.rmdir()
    x, y = load_clean_dataset("imagenet", n, tmp_path, input_size=32, crop_pct=1.0)
    assert y.tolist() == labels == y_rb.tolist() and torch.allclose(x, x_rb)
    _, y_folder = load_clean_dataset("imagenet", n, tmp_path, subset=None, input_size=32, crop_pct=1.0)
    assert y_folder.tolist() == sorted(labels) != labels
