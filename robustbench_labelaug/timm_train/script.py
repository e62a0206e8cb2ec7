"""What ``rbla timm-train`` checks of the script before it runs it: its structure (the functions the launcher
hooks into, :func:`check_script_structure`), its text (:func:`read_script`), whether it creates loaders with
persistent workers, and the flags it parsed that would fail later with a traceback (:func:`check_script_args`,
:func:`check_torchvision_files`)."""

from __future__ import annotations

import argparse
import ast
import io
import tokenize
from pathlib import Path

import torch

from ..checks import check_declared_classes  # rbla train's own check of K against the data
from ..data.cifar import CIFAR_SPECS, check_cifar_files
from ..errors import UserError

TESTED_TIMM_VERSIONS = ("1.0.9",)
REQUIRED_FUNCTIONS = {"main": (), "train_one_epoch": ("model", "loader", "loss_fn", "args", "mixup_fn"),
                      "validate": ("model",)}


def check_script_structure(source: str, path: str = "train.py") -> None:
    """Raise one line if ``source`` lacks what the launcher hooks into: module-level ``main()``,
    ``train_one_epoch(model, loader, ..., loss_fn, args, ..., mixup_fn)``, ``validate(model, ...)`` and an
    ``if __name__ == "__main__":`` block that only calls ``main()``."""
    hint = (f"rbla timm-train is tested with timm {', '.join(TESTED_TIMM_VERSIONS)}'s train.py (use that one, or "
            "put the hook in by hand: docs/timm-launcher.md, 'To edit train.py by hand')")
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        raise UserError(f"{path} is not valid Python (line {exc.lineno}): {hint}") from None
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    for name, params in REQUIRED_FUNCTIONS.items():
        node = functions.get(name)
        if node is None:
            raise UserError(f"{path} has no module-level function {name}(): {hint}")
        names = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
        missing = [p for p in params if p not in names]
        if missing:
            raise UserError(f"{path}: {name}() has no parameter {', '.join(missing)}: {hint}")
    guards = [node for node in tree.body if isinstance(node, ast.If) and _is_main_guard(node.test)]
    if not guards:
        raise UserError(f"{path} has no `if __name__ == '__main__':` block: {hint}")
    for guard in guards:
        if guard.orelse or len(guard.body) != 1 or not _is_main_call(guard.body[0]):
            raise UserError(f"{path}: its `if __name__ == '__main__':` block does more than call main(), which "
                            f"the launcher calls itself: {hint}")


def _is_main_guard(test: ast.expr) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


def _is_main_call(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Name)
            and stmt.value.func.id == "main" and not stmt.value.args and not stmt.value.keywords)


def check_torchvision_files(parsed: argparse.Namespace) -> None:
    """timm's ``--dataset torch/cifar10`` (``cifar100``) reads CIFAR's pickled batches with torchvision's
    ``pickle.load``: read them with the restricted unpickler first, so a file holding code is refused before."""
    dataset = str(getattr(parsed, "dataset", "") or "")
    name = dataset.split("/", 1)[1] if dataset.startswith("torch/") else ""
    if name in CIFAR_SPECS and getattr(parsed, "data_dir", None):
        check_cifar_files(name, parsed.data_dir)


FOLDER_DATASETS = ("", "folder", "imagefolder", "image_folder")  # timm's names for an image folder


def check_script_args(args: argparse.Namespace, persistent_loader: bool = False) -> None:
    """The script's parsed flags that would fail later with a traceback, checked before it builds anything: the
    data folder (missing or not a folder), a CUDA device on a machine without one, and ``-j 0`` where the script
    creates timm's loaders with persistent workers (timm's default), which need at least one."""
    data_dir = getattr(args, "data_dir", None) or getattr(args, "data", None)
    dataset = str(getattr(args, "dataset", "") or "")
    if hasattr(args, "data_dir") or hasattr(args, "data"):
        if not data_dir and dataset.lower() in FOLDER_DATASETS:
            raise UserError("timm's train.py was given no data folder: pass --data-dir DIR (a folder with train/ and "
                            "validation/ class folders)")
        if data_dir and not Path(data_dir).is_dir() and not getattr(args, "dataset_download", False):
            kind = "is a file, not a folder" if Path(data_dir).exists() else "does not exist"
            raise UserError(f"--data-dir {data_dir} {kind}: pass the dataset's folder")
        classes = _class_folders(data_dir, getattr(args, "train_split", "train")) \
            if data_dir and dataset.lower() in FOLDER_DATASETS else None
        if classes and getattr(args, "num_classes", None) is not None:
            check_declared_classes(args.num_classes, len(classes), f"the training folder of {data_dir}")
    device = str(getattr(args, "device", "") or "")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"timm's train.py would run on --device {device} (its default is cuda) but this machine has "
                        "no CUDA device: pass --device cpu")
    workers = getattr(args, "workers", None)
    if persistent_loader and isinstance(workers, int) and workers < 1:
        raise UserError(f"-j {workers}: timm's train.py keeps its loader workers alive between epochs (persistent "
                        "workers), which needs at least one: pass -j 1 or more")


def _class_folders(data_dir: str, split: str) -> list[str]:
    """The class folders of an image-folder training split (``<data_dir>/<split>``, else ``data_dir``): what
    timm's folder reader makes classes of, counted before it scans every image."""
    root = Path(data_dir) / str(split)
    root = root if root.is_dir() else Path(data_dir)
    try:
        return sorted(p.name for p in root.iterdir() if p.is_dir())
    except OSError:
        return []


def creates_persistent_loaders(source: str) -> bool:
    """Whether ``source`` calls timm's ``create_loader`` without a ``persistent_workers`` argument (its default,
    True, needs ``num_workers >= 1``)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name == "create_loader" and not any(k.arg in ("persistent_workers", None) for k in node.keywords):
                return True
    return False


def read_script(path: Path) -> str:
    """The script's text in the encoding Python itself would read it with (UTF-8, or its coding cookie); one
    line if it cannot be decoded."""
    data = path.read_bytes()
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        where = f" (byte {exc.start})" if isinstance(exc, UnicodeDecodeError) else ""
        raise UserError(f"{path} is not readable Python text{where}: Python reads a script as UTF-8 unless a coding "
                        "line (# -*- coding: latin-1 -*-) says otherwise: save it as UTF-8 or add that line") from None
