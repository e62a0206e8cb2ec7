"""Data files never run code (issue 30, family 1): the restricted unpickler of CIFAR's batches, the weights-only
torch loader and its inflated-size bound, and a walk over the package source that finds no other loader."""

from __future__ import annotations

import io
import os
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from robustbench_labelaug import safeload
from robustbench_labelaug.errors import UserError
from robustbench_labelaug.safeload import (
    RestrictedUnpickler,
    check_inflated_size,
    declared_size,
    load_data_pickle,
    load_torch,
    meta_state_bytes,
)

PACKAGE = Path(safeload.__file__).resolve().parent


class _Call:
    def __init__(self, fn, *args) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_arrays_and_plain_data_load_in_every_protocol(protocol):
    value = {"data": np.arange(24, dtype=np.uint8).reshape(2, 12), "labels": [1, 2], "name": "x", "raw": b"\x00",
             "f": 1.5, "none": None, "t": (1, 2), "scalar": np.int64(3), "floats": np.linspace(0, 1, 5)}
    loaded = RestrictedUnpickler(io.BytesIO(pickle.dumps(value, protocol=protocol)), encoding="latin1").load()
    assert loaded.keys() == value.keys()
    for k, v in value.items():
        assert np.array_equal(loaded[k], v) if isinstance(v, np.ndarray) else loaded[k] == v


def test_python2_numpy_module_names_load():
    """CIFAR's batches were pickled by Python 2 with numpy 1.x: ``numpy.core.multiarray._reconstruct``."""
    data = pickle.dumps({"data": np.arange(6, dtype=np.uint8)}, protocol=2)
    legacy = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in legacy
    loaded = RestrictedUnpickler(io.BytesIO(legacy), encoding="latin1").load()
    assert loaded["data"].tolist() == list(range(6))


@pytest.mark.parametrize("payload", [
    lambda marker: _Call(os.system, f"touch {marker}"),
    lambda marker: _Call(eval, f"open({str(marker)!r}, 'w')"),
    lambda marker: _Call(exec, f"open({str(marker)!r}, 'w')"),
    lambda marker: {"ok": [1, _Call(getattr, "x", "upper")]},  # builtins.getattr: the door to any attribute
    lambda marker: _Call(np.save, str(marker), np.zeros(1)),  # numpy, but not an array's reconstruction
])
def test_anything_that_would_run_code_is_refused_unrun(tmp_path, payload):
    marker = tmp_path / "marker"
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({"data": np.zeros(3, np.uint8), "x": payload(marker)}, protocol=2))
    with pytest.raises(UserError, match="which is not data") as err:
        load_data_pickle(path, "CIFAR file", "replace it")
    assert "\n" not in str(err.value) and not marker.exists() and not Path(f"{marker}.npy").exists()


def test_damaged_pickles_are_one_line(tmp_path):
    for content in (b"", b"not a pickle", pickle.dumps({"a": 1})[:-3]):
        (tmp_path / "f").write_bytes(content)
        with pytest.raises(UserError, match="cannot be read") as err:
            load_data_pickle(tmp_path / "f", "CIFAR file", "replace it")
        assert "\n" not in str(err.value)


def _deflate(buffer: bytes, path: Path) -> Path:
    src = zipfile.ZipFile(io.BytesIO(buffer))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info.filename), compress_type=zipfile.ZIP_DEFLATED)
    return path


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_a_deflated_tensor_is_refused_before_it_is_inflated(tmp_path, monkeypatch):
    """A 0.1 MB file declaring 128 MiB: refused from the zip directory alone (torch.load is never called)."""
    bomb = _deflate(_saved({"state_dict": {"w": torch.zeros(32 << 20)}}), tmp_path / "bomb.pt")
    assert bomb.stat().st_size < 1 << 20 and declared_size(bomb) > 128 << 20
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load reached"))
    with pytest.raises(UserError, match=r"would inflate to 128\.\d MiB \(4x its 0\.\d MiB on disk") as err:
        load_torch(bomb)
    assert "\n" not in str(err.value)


def test_honest_files_pass_and_the_model_bound_applies(tmp_path, monkeypatch):
    state = {"state_dict": {"w": torch.randn(1000)}}
    stored = tmp_path / "ok.pt"
    stored.write_bytes(_saved(state))
    assert torch.equal(load_torch(stored)["state_dict"]["w"], state["state_dict"]["w"])
    deflated = _deflate(_saved(state), tmp_path / "deflated.pt")  # small and deflated: within the bound, loads
    assert torch.equal(load_torch(deflated)["state_dict"]["w"], state["state_dict"]["w"])
    monkeypatch.setattr(safeload, "INFLATE_SLACK", 1024)
    check_inflated_size(stored, expected_bytes=4000)  # 4 kB of weights, a 4 kB model: fine
    with pytest.raises(UserError, match=r"8x the model's 0\.0 MiB of weights"):
        check_inflated_size(stored, expected_bytes=100)  # a file far larger than the model it is for


def test_meta_state_bytes_counts_the_models_weights_without_memory():
    from robustbench_labelaug.models.classifier import create_classifier

    n = meta_state_bytes(lambda: create_classifier("resnet8_tiny", 10, 1, mean=(0.5,) * 3, std=(0.5,) * 3))
    real = create_classifier("resnet8_tiny", 10, 1, mean=(0.5,) * 3, std=(0.5,) * 3)
    assert n == sum(t.numel() * t.element_size() for t in real.state_dict().values()) > 0
    assert meta_state_bytes(lambda: 1 / 0) is None


def test_weights_only_refusal_and_damage_are_one_line(tmp_path):
    (tmp_path / "obj.pt").write_bytes(_saved({"state_dict": {}, "x": _Call(os.system, "true")}))
    with pytest.raises(UserError, match="holds objects that weights-only loading refuses"):
        load_torch(tmp_path / "obj.pt")
    (tmp_path / "cut.pt").write_bytes(_saved({"w": torch.zeros(100)})[:-200])
    with pytest.raises(UserError, match="is not a torch checkpoint|cannot be read"):
        load_torch(tmp_path / "cut.pt")


LOADERS = re.compile(r"\btorch\.load\(|\bpickle\.loads?\(|\bUnpickler\b|\bnp\.load\(|\bnumpy\.load\(|\byaml\.load\(|"
                     r"\byaml\.unsafe_load|\bread_pickle\(|\bjoblib\.load|\bdill\.|\bmarshal\.load")


def test_no_other_loader_in_the_package():
    """Every pickle / torch file goes through safeload; np.load never allows pickles; YAML only through yamlio's
    StrictLoader (a SafeLoader)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = re.sub(r"``.*?``", "", line.split("#", 1)[0])  # mentions in docstrings are not calls
            if not LOADERS.search(code) or code.strip().startswith(("\"", "'", "``")):
                continue
            if rel == "safeload.py" or "allow_pickle=False" in code:
                continue
            if rel == "yamlio.py" and "Loader=StrictLoader" in code:
                continue
            found.append(f"{rel}:{i}: {line.strip()}")
    assert found == [], found


def test_timm_launcher_checks_its_checkpoints_before_timm_unpickles_them(tmp_path):
    """timm's train.py reads --resume (and --initial-checkpoint) with weights_only=False: the launcher loads each
    weights-only first (right after timm's parser), so a payload is refused before timm sees it."""
    import argparse

    from robustbench_labelaug.timm_train.fair import FairSettings, TimmClassWise

    marker = tmp_path / "marker"
    (tmp_path / "evil.pth.tar").write_bytes(_saved({"state_dict": {}, "x": _Call(os.system, f"touch {marker}")}))
    (tmp_path / "good.pth.tar").write_bytes(_saved({"state_dict": {"w": torch.zeros(2)},
                                                    "args": argparse.Namespace(model="resnet18")}))
    tracker = TimmClassWise(FairSettings())
    for flag in ("resume", "initial_checkpoint"):
        args = argparse.Namespace(resume="", initial_checkpoint="")
        setattr(args, flag, str(tmp_path / "evil.pth.tar"))
        with pytest.raises(UserError, match="holds objects that weights-only loading refuses"):
            tracker.check_resume(args)
        setattr(args, flag, str(tmp_path / "good.pth.tar"))
        tracker.check_resume(args)  # a checkpoint timm's train.py wrote (its args pickled) passes
    assert not marker.exists()


def test_cifar_files_are_checked_before_torchvision_unpickles_them(tmp_path):
    """What the timm launcher runs for --dataset torch/cifar10 before timm's torchvision dataset reads the files."""
    from robustbench_labelaug.data.cifar import check_cifar_files

    from .fixtures_cifar import write_cifar10

    write_cifar10(tmp_path)
    check_cifar_files("cifar10", tmp_path)  # the fixture's plain batches pass
    marker = tmp_path / "marker"
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [0],
                                    "x": _Call(os.system, f"touch {marker}")}, protocol=2))
    with pytest.raises(UserError, match="data_batch_3 holds posix.system, which is not data"):
        check_cifar_files("cifar10", tmp_path)
    assert not marker.exists()
