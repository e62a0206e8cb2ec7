"""Shared fixtures: small real data and helpers to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

torch.set_num_threads(min(2, os.cpu_count() or 1))


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600, env: dict | None = None):
    """``python -m robustbench_labelaug ARGS`` in a subprocess; returns the CompletedProcess."""
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run([sys.executable, "-m", "robustbench_labelaug", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=full_env)


def run_gloo_workers(worker: str, tmp_path: Path, world: int = 2) -> list[dict]:
    """Run ``tests/<worker>`` as ``world`` gloo processes (``worker rank world init_file out_dir``); each saves
    ``rank<r>.pt`` in ``tmp_path``. Returns what each rank saved, in rank order."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    script = Path(__file__).with_name(worker)
    procs = [subprocess.Popen([sys.executable, str(script), str(r), str(world), str(tmp_path / "pg"), str(tmp_path)],
                              env=env, stderr=subprocess.PIPE, text=True) for r in range(world)]
    for rank, p in enumerate(procs):
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, f"rank {rank} exited with {p.returncode}: {err[-3000:]}"
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world)]


def run_cli_inprocess(*args: str) -> subprocess.CompletedProcess:
    """``rbla ARGS`` through :func:`robustbench_labelaug.cli.main` in this process (stdout/stderr captured, warnings
    silenced as ``run_cli``'s ``PYTHONWARNINGS=ignore`` does): what ``run_cli`` returns, without a new interpreter's
    2-4 s of imports. For checks of the error line a command prints; every command keeps a ``run_cli`` test, so
    the real entry point is still exercised."""
    import contextlib
    import io
    import warnings

    from robustbench_labelaug.cli import main

    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        warnings.simplefilter("ignore")
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse: --help, bad flags
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return subprocess.CompletedProcess(["rbla", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def digits_test():
    from robustbench_labelaug.data import create_dataset

    return create_dataset("digits", split="test")


@pytest.fixture(scope="session")
def digits_train():
    from robustbench_labelaug.data import create_dataset

    return create_dataset("digits", split="train")


@pytest.fixture(scope="session")
def trained_digits_model():
    """resnet8_tiny (K=10, M=1) after two quick clean epochs on digits (data order): gradients are informative."""
    from robustbench_labelaug.models.tiny_resnet import train_tiny_digits

    return train_tiny_digits(2, shuffle=False)


@pytest.fixture
def one_thread():
    """AutoAttack runs thousands of tiny ops: on a loaded 2-core machine a second torch thread only spins."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
