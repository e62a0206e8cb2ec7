"""What a result depends on in the data itself: a fingerprint of a data folder's files, so that editing the data
and re-running ``rbla evaluate`` into the same output recomputes instead of reusing stale results.

The default fingerprint is the sorted list of relative file paths with their sizes and modification times (a stat
per file, no reading); ``content=True`` (``runtime.data_fingerprint: content``) hashes every file's bytes instead
of its time stamp. Array files (``.npy``/``.npz``, e.g. CIFAR-10-C) also contribute their header bytes.

The walk follows symbolic links but reaches each real folder once and refuses a link back to one of its own
parent folders (a loop) with one line; :func:`check_no_symlink_loops` is the same check for the dataset readers.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import UserError
from .registry import FOLDER_SPLITS  # the folder names each split may have (one home: the registry)

FINGERPRINT_MODES = ("stat", "content")
ARRAY_SUFFIXES = (".npy", ".npz")
HEADER_BYTES = 128


def _loop_error(link: str, target: str) -> UserError:
    return UserError(f"{link} is a symbolic link to {target}, a folder that contains it (a loop): remove the link "
                     "(every image would be counted again and again)")


def walk_files(root: str | Path) -> Iterator[str]:
    """Every file under ``root`` (links followed, each real folder walked once, sorted order); a symlink loop is
    one :class:`UserError`."""
    root = str(root)
    top = os.path.realpath(root)
    visited = {top}
    stack: list[tuple[str, str, frozenset[str]]] = [(root, top, frozenset({top}))]
    while stack:
        folder, real, ancestors = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)
        except OSError as exc:
            raise UserError(f"data folder {folder} cannot be read ({exc.strerror}): check its permissions") from None
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                child = os.path.realpath(entry.path) if entry.is_symlink() else os.path.join(real, entry.name)
                if child in ancestors:
                    raise _loop_error(entry.path, child)
                if child in visited:
                    continue
                visited.add(child)
                stack.append((entry.path, child, ancestors | {child}))
            else:
                files_here = entry.path
                try:
                    if entry.is_file(follow_symlinks=True):
                        yield files_here
                except OSError:
                    continue


def check_no_symlink_loops(root: str | Path) -> None:
    """:class:`UserError` if a symbolic link under ``root`` points back to a folder that contains it."""
    for _ in walk_files(root):
        pass


def folder_fingerprint(root: str | Path, content: bool = False) -> str:
    """sha256 over the sorted ``(relative path, size, mtime | content hash)`` of every real file under ``root``
    (each real file once)."""
    root = Path(root)
    seen: set[str] = set()
    rows = []
    for path in walk_files(root):
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        st = os.stat(path)
        rel = os.path.relpath(path, root)
        if content:
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            stamp = digest.hexdigest()
        else:
            stamp = str(st.st_mtime_ns)
        if path.lower().endswith(ARRAY_SUFFIXES):
            with open(path, "rb") as f:
                stamp += ":" + f.read(HEADER_BYTES).hex()
        rows.append(f"{rel}\t{st.st_size}\t{stamp}")
    rows.sort()
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


def data_root(data_dir: str | Path, split: str | None) -> Path:
    """The folder a split reads: ``<data_dir>/<split folder>`` where one exists (an ImageNet-layout folder), else
    ``data_dir`` itself (e.g. CIFAR's batch files)."""
    folders = {key: (key, *aliases) for key, aliases in FOLDER_SPLITS.items()}
    data_dir = Path(data_dir).expanduser()
    if split is not None:
        key = next((k for k, names in folders.items() if split in names), None)
        for name in folders.get(key, (split,)):
            if (data_dir / name).is_dir():
                return data_dir / name
    return data_dir


def dataset_fingerprint(data_dir: str | Path | None, split: str | None, mode: str = "stat") -> str | None:
    """The fingerprint of the files a dataset split reads (None for embedded data without a folder)."""
    if mode not in FINGERPRINT_MODES:
        raise UserError(f"data_fingerprint must be one of {', '.join(FINGERPRINT_MODES)}, got {mode!r}")
    if not data_dir:
        return None
    root = data_root(data_dir, split)
    if not root.is_dir():
        return None  # the dataset reader names the missing folder
    return folder_fingerprint(root, content=mode == "content")


__all__ = ["FINGERPRINT_MODES", "check_no_symlink_loops", "data_root", "dataset_fingerprint", "folder_fingerprint",
           "walk_files"]
