"""Installed packages, looked up without importing them: a distribution's version and a package's folder."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_version(distribution: str) -> str | None:
    """The installed version of ``distribution`` (e.g. ``"pyautoattack"``), or None when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def package_folder(module: str) -> Path | None:
    """The folder of the installed package ``module`` (e.g. ``"robustbench"`` or
    ``"robustbench_labelaug.model_zoo"``), found without importing it; None when there is none."""
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:  # a parent package is missing
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))
