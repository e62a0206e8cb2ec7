"""Where the zoo's entries live: the packaged folder (:func:`zoo_dir`) and a user's own zoo folders, by
precedence (``--zoo DIR`` / ``load_model(..., zoo=DIR)``: :func:`set_user_zoo`, :func:`using_zoo`; ``RBLA_ZOO``;
``./model_zoo``): :func:`user_zoo_dirs`, and where ``rbla zoo export`` writes a new entry (:func:`export_zoo_dir`).
See :mod:`.user` for what a user entry holds. Torch-free; the entries (:mod:`.entries`) and the loaders read it."""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

from ..errors import UserError
from ..packages import package_folder

ZOO_PACKAGE = "robustbench_labelaug.model_zoo"
ZOO_ENV = "RBLA_ZOO"
LOCAL_ZOO = "model_zoo"
_override: list[Path] | None = None


def set_user_zoo(dirs: str | Path | list[str | Path] | None) -> None:
    """Use ``dirs`` as the user zoo (``--zoo DIR``); None: back to ``RBLA_ZOO`` / ``./model_zoo``."""
    global _override
    if dirs is None:
        _override = None
    else:
        items = [dirs] if isinstance(dirs, (str, Path)) else list(dirs)
        _override = [Path(d).expanduser() for d in items]


@contextlib.contextmanager
def using_zoo(dirs: str | Path | list[str | Path] | None):
    """:func:`set_user_zoo` for the duration of a ``with`` block (None: leave it as it is)."""
    global _override
    saved = _override
    if dirs is not None:
        set_user_zoo(dirs)
    try:
        yield
    finally:
        _override = saved


@contextlib.contextmanager
def using_zoo_for_tasks(dirs: str | Path | None):
    """:func:`using_zoo` plus ``RBLA_ZOO`` for the duration of a ``with`` block, so the tasks a command starts see
    the same user zoo (a local Ray inherits the variable; a cluster gets the ``RBLA_*`` variables); both restored
    after (None: leave everything as it is). ``rbla evaluate --zoo`` and ``rbla study --zoo``."""
    if not dirs:
        yield
        return
    saved = os.environ.get(ZOO_ENV)
    os.environ[ZOO_ENV] = str(Path(dirs).expanduser().resolve())
    try:
        with using_zoo(dirs):
            yield
    finally:
        if saved is None:
            os.environ.pop(ZOO_ENV, None)
        else:
            os.environ[ZOO_ENV] = saved


def zoo_dir() -> Path:
    """The folder holding the entries: the installed ``robustbench_labelaug.model_zoo`` package, or the source
    tree's ``model_zoo/`` when the package is imported from a checkout without installing it."""
    folder = package_folder(ZOO_PACKAGE)
    if folder is not None:
        return folder
    source_tree = Path(__file__).resolve().parents[2] / "model_zoo"
    if source_tree.is_dir():
        return source_tree
    raise UserError(f"the model zoo ({ZOO_PACKAGE}) is not installed: reinstall robustbench-labelaug")


def user_zoo_dirs(existing_only: bool = True) -> list[Path]:
    """The user zoo folders, by precedence (see the module docstring)."""
    if _override is not None:
        dirs = list(_override)
    elif os.environ.get(ZOO_ENV):
        dirs = [Path(p).expanduser() for p in os.environ[ZOO_ENV].split(os.pathsep) if p]
    else:
        dirs = [Path.cwd() / LOCAL_ZOO]
    try:
        packaged = zoo_dir().resolve()
    except UserError:
        packaged = None
    out = []
    for d in dirs:
        if existing_only and not d.is_dir():
            if _override is not None or os.environ.get(ZOO_ENV):
                raise UserError(f"user zoo {d} (from {'--zoo' if _override is not None else ZOO_ENV}) is not a "
                                "folder: create it (rbla zoo export --zoo DIR creates it) or fix the path")
            continue
        if packaged is not None and d.resolve() == packaged:
            continue
        out.append(d)
    return out


def export_zoo_dir(zoo: str | Path | None = None) -> Path | None:
    """Where ``rbla zoo export`` writes a new entry: ``zoo``, else the first user zoo folder (created); None (with
    a one-line warning) where ``./model_zoo`` is the packaged folder itself (working in a source checkout)."""
    if zoo is not None:
        return Path(zoo).expanduser()
    dirs = user_zoo_dirs(existing_only=False)
    if not dirs:
        warnings.warn(f"{Path.cwd() / LOCAL_ZOO} is this package's own zoo (a source checkout): no user zoo entry "
                      f"written; pass --zoo DIR (or set {ZOO_ENV}) so load_model finds the exported model by name",
                      UserWarning, stacklevel=3)
        return None
    return dirs[0]


__all__ = ["LOCAL_ZOO", "ZOO_ENV", "ZOO_PACKAGE", "export_zoo_dir", "set_user_zoo", "user_zoo_dirs", "using_zoo",
           "using_zoo_for_tasks", "zoo_dir"]
