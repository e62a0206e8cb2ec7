"""Reading data files without running code: the one place pickled data and torch files are opened.

- :func:`load_data_pickle`: a pickle whose format is plain data (CIFAR's python batches, ``cifar-10-batches-py/*``
  and CIFAR-100's ``train``/``test``/``meta``: dicts of lists, strings, bytes, numbers and numpy arrays) read by a
  restricted unpickler that admits only those types (numpy's array reconstruction among them) and refuses any other
  global (``os.system``, ``builtins.eval``, ...) with one :class:`UserError` before it is called.
- :func:`load_torch`: ``torch.load(weights_only=True)`` (never retried without it) behind two checks: the file is
  one ``torch.save`` can have written, and the sizes its zip directory declares for its entries (read without
  inflating anything) stay within :func:`inflated_limit`, in proportion to the file on disk and, where the caller
  knows it, to the model the weights are for. ``torch.save`` stores entries uncompressed; a deflated entry that
  would inflate far beyond the file (a 1.7 MB file holding a 1 GiB zero tensor) is refused before any byte of it
  is read. :func:`check_inflated_size` is the same bound for files handed to other loaders (timm's, RobustBench's).

Every checkpoint reader of the package (``rbla train --resume``, ``rbla evaluate``'s checkpoints and zoo models,
``rbla zoo export``, ``python:`` / ``timm:`` / ``robustbench:`` sources, the timm launcher's ``--fair`` resume)
goes through these functions; ``tests/test_safeload.py`` checks that no other ``torch.load``/``pickle.load`` exists.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import UserError

# ----------------------------------------------------------------------------------------------------------------
# plain-data pickles (CIFAR's batches)
# ----------------------------------------------------------------------------------------------------------------

# the globals a pickled numpy array needs (numpy 1.x and 2.x module names; protocols 2-5): nothing that runs code
NUMPY_ARRAY_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol 2 spells a bytes object written by Python 3 (str.encode, no code)
})


class _Refused(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain data (dict, list, tuple, str, bytes, int, float, bool, None, which
    need no global) and the globals in ``allowed``; any other global, and persistent ids, are refused before they
    are looked up, so nothing in the file is ever called."""

    def __init__(self, file, allowed: Iterable[tuple[str, str]] = NUMPY_ARRAY_GLOBALS, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.allowed = frozenset(allowed)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.allowed:
            raise _Refused(f"{module}.{name}")
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("a persistent id")


def load_data_pickle(path: str | Path, what: str, fix: str, *, encoding: str = "latin1",
                     allowed: Iterable[tuple[str, str]] = NUMPY_ARRAY_GLOBALS) -> Any:
    """The plain data in the pickle file ``path`` (``encoding``: how Python 2 strings are decoded, latin1 as
    torchvision reads CIFAR), else one :class:`UserError`: a global outside ``allowed`` (code the file would run)
    or a damaged stream, naming ``what`` the file is and the ``fix``."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, allowed, encoding=encoding).load()
    except _Refused as exc:
        raise UserError(f"{what} {path} holds {exc.what}, which is not data (loading it would run code): it was "
                        f"not written by the dataset's authors; {fix}") from None
    except MemoryError:
        raise UserError(f"{what} {path} declares more data than fits in memory: it is damaged; {fix}") from None
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read ({exc.strerror or type(exc).__name__}): {fix}") from None
    except Exception as exc:  # noqa: BLE001 - a damaged pickle stream fails in many ways (EOFError, KeyError, ...)
        first = (str(exc).splitlines() or [""])[0][:100]
        raise UserError(f"{what} {path} cannot be read ({type(exc).__name__}{': ' + first if first else ''}): "
                        f"the file is damaged; {fix}") from None


# ----------------------------------------------------------------------------------------------------------------
# torch files
# ----------------------------------------------------------------------------------------------------------------

# ``torch.save``'s legacy (non-zip) format starts with a pickled magic number
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
INFLATE_FACTOR = 4  # declared (inflated) bytes per byte on disk: torch.save stores entries, so honest files are ~1
MODEL_FACTOR = 8    # declared bytes per byte of the model's state dict (weights + EMA + optimizer moments, ...)
INFLATE_SLACK = 64 << 20  # plus this much: pickled args, RNG states, small tensors


def torch_file_kind(path: str | Path) -> str | None:
    """``"zip"`` or ``"legacy"`` for files ``torch.save`` can have written, None for anything else (text,
    random bytes, an empty file)."""
    with open(path, "rb") as f:
        head = f.read(len(_LEGACY_TORCH_MAGIC))
    if head.startswith(_LEGACY_TORCH_MAGIC):
        return "legacy"
    return "zip" if head.startswith(b"PK") and zipfile.is_zipfile(path) else None


def declared_size(path: str | Path) -> int | None:
    """The bytes a zip-format torch file's entries inflate to, as its central directory declares them (nothing is
    inflated; torch's reader allocates by these sizes); None for a file that is no zip."""
    try:
        with zipfile.ZipFile(path) as z:
            return sum(max(int(info.file_size), 0) for info in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def inflated_limit(path: str | Path, expected_bytes: int | None = None) -> int:
    """The most a torch file at ``path`` may inflate to: :data:`INFLATE_FACTOR` x its size on disk, and (where
    ``expected_bytes``, the model's state-dict size, is known) :data:`MODEL_FACTOR` x that, each plus
    :data:`INFLATE_SLACK`."""
    limit = INFLATE_FACTOR * Path(path).stat().st_size + INFLATE_SLACK
    if expected_bytes is not None:
        limit = min(limit, MODEL_FACTOR * int(expected_bytes) + INFLATE_SLACK)
    return limit


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def check_inflated_size(path: str | Path, what: str = "checkpoint", expected_bytes: int | None = None) -> None:
    """Refuse (one :class:`UserError`) a zip-format torch file whose entries declare more bytes than
    :func:`inflated_limit` allows, before anything is inflated. Legacy-format files store tensors raw (nothing
    inflates beyond the file) and pass."""
    path = Path(path)
    declared = declared_size(path)
    if declared is None:
        return
    limit = inflated_limit(path, expected_bytes)
    if declared > limit:
        whose = (f"{MODEL_FACTOR}x the model's {_mib(int(expected_bytes))} of weights"
                 if expected_bytes is not None and limit < INFLATE_FACTOR * path.stat().st_size + INFLATE_SLACK
                 else f"{INFLATE_FACTOR}x its {_mib(path.stat().st_size)} on disk")
        raise UserError(f"{what} {path} would inflate to {_mib(declared)} ({whose} is the most a weights file may "
                        "hold; torch.save writes entries uncompressed): it is not a checkpoint of this model, or "
                        "was crafted to exhaust memory; use the file its training run wrote")


def state_bytes(module: Any) -> int:
    """The bytes of a torch module's state dict (parameters and buffers), e.g. of a model built on the meta device."""
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


def meta_state_bytes(build: Callable[[], Any]) -> int | None:
    """:func:`state_bytes` of the module ``build()`` makes on torch's meta device (no memory, no weights: the sizes
    a checkpoint for it should hold); None where the architecture cannot be built there."""
    import torch

    try:
        with torch.device("meta"):
            return state_bytes(build())
    except Exception:  # noqa: BLE001 - an architecture that needs real tensors to build: no model-based bound
        return None


def load_torch(path: str | Path, what: str = "checkpoint", *, expected_bytes: int | None = None, mmap: bool = False,
               allowed_globals: Iterable[Any] = (),
               fix: str = "pass the .pth.tar/.pt file that rbla train or rbla zoo export wrote") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU (``allowed_globals``: extra classes weights-only loading
    may build, e.g. ``argparse.Namespace`` for timm's checkpoints), else one :class:`UserError`: no such file, a
    file ``torch.save`` did not write, entries that would inflate beyond :func:`inflated_limit`, objects
    weights-only loading refuses (code the file would run), or damaged data."""
    import torch

    path = Path(path)
    if not path.is_file():
        kind = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise UserError(f"{what} {path} {kind}: {fix}")
    try:
        kind = torch_file_kind(path)
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read ({exc.strerror or type(exc).__name__}): check its "
                        "permissions") from None
    if kind is None:
        shown = "an empty file" if path.stat().st_size == 0 else "neither torch.save's zip nor its legacy format"
        raise UserError(f"{what} {path} is not a torch checkpoint ({shown}): {fix}")
    check_inflated_size(path, what, expected_bytes)
    try:
        with torch.serialization.safe_globals(list(allowed_globals)):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        text = str(exc).strip()
        if "Weights only load failed" not in text:  # a damaged pickle stream, not a refused object
            raise UserError(f"{what} {path} cannot be read (damaged pickle data): the file is damaged; "
                            "re-download or re-export it") from None
        lines = [line for line in text.splitlines() if "Unsupported global" in line or "GLOBAL" in line]
        first = (lines[0].strip() if lines else "unsafe content")[:120]
        raise UserError(f"{what} {path} holds objects that weights-only loading refuses ({first}): "
                        "only load files from sources you trust, re-saved as plain state dicts") from None
    except MemoryError:
        raise UserError(f"{what} {path} declares more data than fits in memory: it is damaged or not a "
                        "checkpoint; re-download or re-export it") from None
    except (RuntimeError, EOFError, OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise UserError(f"{what} {path} cannot be read ({type(exc).__name__}): the file is damaged or "
                        "truncated; re-download or re-export it") from None


__all__ = ["INFLATE_FACTOR", "INFLATE_SLACK", "MODEL_FACTOR", "NUMPY_ARRAY_GLOBALS", "RestrictedUnpickler",
           "check_inflated_size", "declared_size", "inflated_limit", "load_data_pickle", "load_torch",
           "meta_state_bytes", "state_bytes", "torch_file_kind"]
