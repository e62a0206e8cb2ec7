"""The leaderboard's HTML page (without a browser: tests/test_browser.py drives it in chromium), --metric acc in
every column, the title and file name rbla leaderboard keeps, per-class Wilson CIs, figure formats."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from robustbench_labelaug.cli import main as cli_main
from robustbench_labelaug.evaluation.corruptions import MCE_LABEL
from robustbench_labelaug.leaderboard.cli import render
from robustbench_labelaug.scoring.intervals import classwise_intervals, wilson_interval
from tests.demo_shaped import TITLE, write_demo_shaped


@pytest.fixture
def demo_board(tmp_path: Path) -> Path:
    return write_demo_shaped(tmp_path / "eval")


def _rows(markdown: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    lines = [ln for ln in markdown.splitlines() if ln.startswith("| ")]
    cells = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines]
    header = cells[0]
    return header, {r[header.index("model")]: dict(zip(header, r)) for r in cells[2:]}


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(40.38, abs=0.01) and hi == pytest.approx(59.62, abs=0.01)
    lo, hi = wilson_interval(0, 12)  # not degenerate at 0 % (Wald would give [0, 0])
    assert lo == 0.0 and hi == pytest.approx(24.25, abs=0.01)
    # n = 0, or n or the error unknown: no interval (None), the one convention every caller follows
    assert wilson_interval(1, None) is None and wilson_interval(None, 10) is None and wilson_interval(0, 0) is None
    # from stored class-wise blocks (errors in %): the same intervals as from the counts
    assert classwise_intervals([50.0, 0.0, None, 10.0], [100, 12, 5, None]) == [
        wilson_interval(50, 100), wilson_interval(0, 12), None, None]


def test_wilson_interval_equals_scipy():
    from scipy.stats import binomtest

    for wrong, n in [(0, 1), (0, 12), (3, 12), (12, 12), (7, 360), (1, 3)]:
        for level in (0.9, 0.95, 0.99):
            ci = binomtest(wrong, n).proportion_ci(confidence_level=level, method="wilson")
            assert wilson_interval(wrong, n, level) == pytest.approx((100 * ci.low, 100 * ci.high), abs=1e-9)


def test_metric_acc_converts_every_error_column_worst_class_included(demo_board: Path):
    _, err = _rows(render(demo_board, quiet=True)["markdown"])
    header, acc = _rows(render(demo_board, quiet=True, metric="acc")["markdown"])
    assert all("err" not in h.split() for h in header), header  # no error column left
    for key in err:
        e, a = err[key], acc[key]
        assert float(a["clean acc (%)"]) == pytest.approx(100 - float(e["clean err (%)"]))
        assert float(a["worst class clean acc (%)"]) == pytest.approx(100 - float(e["worst class clean (%)"]))
        assert float(a["worst class PGD-40 (sound) acc (%)"]) == pytest.approx(
            100 - float(e["worst class PGD-40 (sound) (%)"]))
        assert float(a["mean corruption acc (unnormalised) (%)"]) == pytest.approx(100 - float(e[f"{MCE_LABEL} (%)"]))
        # a class SD is the same for errors and accuracies
        assert a["class SD clean (%)"] == e["class SD clean (%)"]
        # the worst class's accuracy is never above the clean accuracy (the bug: 100.00 beside 43.75)
        assert float(a["worst class clean acc (%)"]) <= float(a["clean acc (%)"])


def test_every_header_with_a_number_in_percent_says_so(demo_board: Path):
    header, _ = _rows(render(demo_board, quiet=True)["markdown"])
    unitless = {"rank", "model", "ranked by", "training", "architecture", "masking checks"}
    assert all(h.endswith("(%)") for h in header if h not in unitless), header


def test_leaderboard_keeps_the_config_title_and_a_new_name_unless_forced(demo_board: Path, capsys):
    first = render(demo_board, quiet=True, html=True, overwrite=True)
    assert first["markdown"].startswith(f"# {TITLE}\n")
    assert first["paths"] == [demo_board / "leaderboard.md", demo_board / "leaderboard.html"]
    before = (demo_board / "leaderboard.md").read_text()
    assert cli_main(["leaderboard", str(demo_board), "--sort", "name", "--html"]) == 0
    assert (demo_board / "leaderboard.md").read_text() == before  # kept
    second = (demo_board / "leaderboard-2.md").read_text()
    assert second.startswith(f"# {TITLE}\n") and (demo_board / "leaderboard-2.html").is_file()
    assert "leaderboard-2.md" in capsys.readouterr().out
    assert cli_main(["leaderboard", str(demo_board), "--sort", "name", "--force"]) == 0
    assert (demo_board / "leaderboard.md").read_text() == second  # overwritten when told to
    assert not (demo_board / "leaderboard-3.md").exists()
    assert render(demo_board, quiet=True, title="Mine")["markdown"].startswith("# Mine\n")


def test_page_is_self_contained_with_details_cis_and_figures(demo_board: Path):
    path = render(demo_board, quiet=True, html=True)["html"]
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)=["']https?://""", page)  # nothing fetched: works offline
    # two figures per model in its details, and the overview figure on the main view
    assert page.count('class="detail"') == 3 and page.count("data:image/svg+xml;base64,") == 2 * 3 + 1
    assert page.count("fast mode: no") == 1  # the run's facts once, not per row
    assert "AutoAttack standard, n = 120" in page and "pgd40_sound: PGD-40 (sound), n = 360" in page
    # the per-class CI of class 0's clean error (its n from the stored block) is on the page
    info = json.loads((demo_board / "model_info" / "digits_adv.json").read_text())
    block = info["labelaug"]["results"]["clean"]["classwise"]["clean"]
    lo, hi = classwise_intervals(block["error"][:1], block["n"][:1])[0]
    assert f"[{lo:.1f}, {hi:.1f}]" in page
    assert "worst class, clean: class " in page and "pgd_close_to_autoattack" in page and "gap_ci" in page


def test_plot_formats_and_caveats_in_titles(demo_board: Path):
    paths = render(demo_board, quiet=True, plots=True, plot_formats=("png", "svg", "pdf"))["paths"]
    names = {p.name for p in paths}
    assert {"classwise_errors.png", "classwise_errors.svg", "classwise_errors.pdf",
            "corruption_errors.svg"} <= names
    assert (demo_board / "plots" / "classwise_errors.pdf").read_bytes()[:5] == b"%PDF-"
    svg = (demo_board / "plots" / "classwise_errors.svg").read_text()
    assert "<svg" in svg and "n=36" in svg  # class 0's n under its bar
    assert svg.count("small n: 12 per class") == 1  # the AutoAttack panel's subset, said in its title only
    assert cli_main(["leaderboard", str(demo_board), "--plots", "--plot-format", "gif"]) == 2  # a UserError


def test_fast_mode_is_said_in_the_figure_titles(tmp_path: Path):
    from robustbench_labelaug.leaderboard.model_info import load_model_infos
    from robustbench_labelaug.leaderboard.plots import caveats

    infos = load_model_infos(write_demo_shaped(tmp_path, fast=True))
    assert caveats(infos, [np.array([36, 35])]) == "fast mode"
    assert caveats(infos, [np.array([12, 12])]) == "fast mode; small n: 12 per class"
