"""Tiny generated CIFAR data on disk: torchvision's pickled batches and RobustBench's CIFAR-C npy layout."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from robustbench_labelaug.data.registry import CIFAR10_CLASSES

C_TOTAL = 50_000  # RobustBench: 10 000 images x 5 severities per corruption file


def _images(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)  # torchvision rows: R plane, G plane, B plane


def write_cifar10(root: Path, n_train_per_batch: int | list[int] = 2, n_test: int = 20,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """``root/cifar-10-batches-py`` with 5 train batches (``n_train_per_batch`` images each, or one count per
    batch) and a test batch; returns the test arrays (HWC)."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    sizes = n_train_per_batch if isinstance(n_train_per_batch, list) else [n_train_per_batch] * 5
    for i, n in enumerate(sizes, start=1):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({"data": _images(rng, n), "labels": rng.integers(0, 10, n).tolist()}, f)
    data, labels = _images(rng, n_test), (np.arange(n_test) * 7 % 10).tolist()
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": data, "labels": labels}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CIFAR10_CLASSES), "num_vis": 3072}, f)
    return {"images": data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), "labels": np.asarray(labels)}


def write_cifar100(root: Path, n_train: int = 4, n_test: int = 10, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        fine = rng.integers(0, 100, n).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"data": _images(rng, n), "fine_labels": fine, "coarse_labels": [x // 5 for x in fine]}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"class_{i:02d}" for i in range(100)],
                     "coarse_label_names": [f"super_{i:02d}" for i in range(20)]}, f)


def write_cifar_c(root: Path, labels: np.ndarray, corruptions=("gaussian_noise", "fog"), n: int | None = None,
                  folder: str = "CIFAR-10-C", seed: int = 2) -> dict[str, np.ndarray]:
    """``root/<folder>/<corruption>.npy`` (uint8 50 000 x 32 x 32 x 3, sparse: only the first ``n`` images of each
    severity are written) + ``labels.npy``; returns the written corruption arrays (5, n, 32, 32, 3)."""
    rng = np.random.default_rng(seed)
    n = len(labels) if n is None else n
    out = Path(root) / folder
    out.mkdir(parents=True, exist_ok=True)
    all_labels = np.zeros(C_TOTAL, dtype=np.uint8)
    for s in range(5):
        all_labels[s * 10_000:s * 10_000 + len(labels)] = labels
    np.save(out / "labels.npy", all_labels)
    written = {}
    for c in corruptions:
        arr = np.lib.format.open_memmap(out / f"{c}.npy", mode="w+", dtype=np.uint8, shape=(C_TOTAL, 32, 32, 3))
        block = rng.integers(0, 256, size=(5, n, 32, 32, 3), dtype=np.uint8)
        for s in range(5):
            arr[s * 10_000:s * 10_000 + n] = block[s]
        arr.flush()
        del arr
        written[c] = block
    return written
