"""The docs: generated blocks match a fresh render of the committed JSON, no generated number is also typed by hand,
the site builds with ``mkdocs build --strict``, the README stays short with its two set-up commands on top."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.docs_render import BLOCK, BLOCKS, markdown_files, render_all, render_text

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
SETUP = [
    'pip install -e . && rbla demo                        # main job: train + evaluate Std / Adv / Adv+ on the '
    "embedded digits (~3.5 min, CPU, offline)",
    'pip install -e ".[test]" && python -m pytest -q      # the tests (what CI runs; ~12 min on 2 CPU cores)',
]


def test_generated_blocks_match_a_fresh_render_of_the_committed_json():
    stale = render_all(ROOT, check=True)
    assert stale == [], f"stale generated blocks in {stale}: run python tools/docs_render.py"
    used = {m.group("name") for p in markdown_files(ROOT) for m in BLOCK.finditer(p.read_text())}
    assert used == set(BLOCKS)  # every renderer has a place, every place a renderer


def test_render_replaces_only_the_block(tmp_path: Path):
    text = "before 1.23\n<!-- generated:bench -->\nold 9.99\n<!-- /generated:bench -->\nafter\n"
    out = render_text(text, ROOT)
    assert out.startswith("before 1.23\n<!-- generated:bench -->\n| benchmark |") and out.endswith(
        "<!-- /generated:bench -->\nafter\n") and "9.99" not in out


def test_no_generated_number_is_also_typed_by_hand():
    """A number that a generated block shows must not appear in the text around the blocks. Numbers with fewer than
    three significant digits (0.1, 0.63) are left out: as short, they coincide across unrelated tables (a study's
    eps or alpha, a power figure), while a copied measurement (61.39, 0.148) has three or more."""
    generated, typed = set(), {}
    number = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")

    def distinctive(nums: list[str]) -> set[str]:
        return {n for n in nums if len(n.replace(".", "").lstrip("0")) >= 3}

    for path in markdown_files(ROOT):
        text = path.read_text()
        for m in BLOCK.finditer(text):
            generated |= distinctive(number.findall(m.group("body")))
        typed[path] = distinctive(number.findall(BLOCK.sub("", text)))
    # settings, not measurements: 12.8 M training images; the paper's claimed 2.79 % class-SD reduction (a study
    # config's effect of interest, printed by its power report)
    settings = {"12.8", "2.79"}
    clashes = {str(p.relative_to(ROOT)): sorted(nums & generated - settings) for p, nums in typed.items()
               if nums & generated - settings}
    assert clashes == {}, f"numbers both typed and generated: {clashes}"
    assert {"61.39", "0.148"} <= distinctive(["61.39", "0.148", "0.1", "0.63", "1.0"])  # the filter keeps these
    assert not distinctive(["0.1", "0.63", "1.0"])


def test_readme_is_short_and_starts_with_the_two_setup_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150
    assert lines[2] == "```bash" and lines[3:5] == SETUP and lines[5] == "```"
    ci = (ROOT / ".ci" / "run").read_text()
    # the README's test command, with the closure's pip check between (the test extra breaks no pinned dependency)
    assert 'python3 -m pip install -q -e ".[test]" && python3 tools/check_deps.py && python3 -m pytest -q' in ci


def test_mkdocs_build_strict(tmp_path: Path):
    if shutil.which("mkdocs") is None and subprocess.run([sys.executable, "-c", "import mkdocs"]).returncode:
        if IN_CI:
            pytest.fail("mkdocs is not installed: pip install -e '.[test]'")
        pytest.skip("mkdocs is not installed")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(tmp_path / "site")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "results" / "index.html").is_file()
    for page in ("timm-launcher-parity", "your-model", "methods", "gpu-decode", "input-validation"):
        assert (tmp_path / "site" / page / "index.html").is_file(), page


def test_help_lists_every_packaged_config_and_zoo_entry():
    from robustbench_labelaug.runner.config import packaged_configs
    from robustbench_labelaug.zoo.entries import list_entries
    from tests.conftest import run_cli_inprocess

    def flat(text: str) -> str:
        return " ".join(text.split())  # argparse wraps the help at any space

    evaluate = flat(run_cli_inprocess("evaluate", "--help").stdout)
    assert all(name in evaluate for name in packaged_configs()), evaluate
    assert {"digits", "robustbench_cifar10", "robustbench_imagenet", "paper_imagenet"} <= set(packaged_configs())
    show = flat(run_cli_inprocess("zoo", "show", "--help").stdout)
    assert all(name in show for name in list_entries()), show
