"""tools/check_deps.py: pip check over robustbench-labelaug[test]'s dependency closure, not the whole machine."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "check_deps.py"


@pytest.fixture(scope="module")
def check_deps():
    spec = importlib.util.spec_from_file_location("check_deps", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fake_dist(site: Path, name: str, requires: list[str]) -> None:
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"  # the normalised name, as wheels write it
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0", "Provides-Extra: extra1"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")


def test_a_broken_requirement_in_the_closure_is_reported_and_one_outside_it_is_not(check_deps, tmp_path, monkeypatch):
    import packaging

    have = packaging.__version__
    _fake_dist(tmp_path, "rbla-fake-root", ["rbla-fake-child", 'rbla-fake-missing; extra == "extra1"'])
    _fake_dist(tmp_path, "rbla-fake-child", ["packaging>=999"])             # broken, one level down
    _fake_dist(tmp_path, "rbla-fake-outsider", ["packaging>=999"])          # broken, but nobody requires it
    monkeypatch.syspath_prepend(str(tmp_path))
    problems, n = check_deps.broken_requirements("rbla-fake-root", ())
    assert problems == [f"rbla-fake-child requires packaging>=999, but packaging {have} is installed"]
    assert n == 3  # root, child, packaging (the extra's requirement is not followed without the extra)
    problems, _ = check_deps.broken_requirements("rbla-fake-root", ("extra1",))
    assert "rbla-fake-root requires rbla-fake-missing; extra == \"extra1\", which is not installed" in problems


def test_this_install_passes_the_check():
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "every requirement satisfied" in proc.stdout
