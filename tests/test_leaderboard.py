"""rbla leaderboard: model_info schema, table order and cells, HTML, plots, bad input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from robustbench_labelaug.cli import main as cli_main
from robustbench_labelaug.errors import UserError
from robustbench_labelaug.leaderboard.cli import render
from robustbench_labelaug.results.model_info import (
    MODEL_INFO_FIELDS,
    build_model_info,
    format_eps,
    parse_eps,
    percent,
    validate_model_info,
)
from robustbench_labelaug.scoring import IMAGENET_X_FACTORS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _classwise(errors: list[float]) -> dict:
    e = np.asarray(errors, dtype=float)
    return {"error": e.tolist(),
            "summary": {"mean": float(e.mean()), "sd": float(e.std()), "worst_error": float(e.max()),
                        "worst_class": int(e.argmax())}}


def _results(clean: float, aa: float | None, pgd: float, pgd_paper: float | None, k: int, seed: int,
             corruptions: bool = False, imagenet_x: bool = False, masking_failed: int = 0) -> dict:
    """EvalResult dicts shaped like the evaluators' (class-wise errors spread around the headline)."""
    rng = np.random.default_rng(seed)

    def spread(mean: float) -> list[float]:
        return np.clip(mean + rng.normal(0, 8, k), 0, 100).tolist()

    out = {"clean": {"evaluator": "clean", "metrics": {"error": clean}, "settings": {},
                     "classwise": {"clean": _classwise(spread(clean))}, "protocol": None, "details": {},
                     "num_examples": 360}}
    if aa is not None:
        out["autoattack"] = {"evaluator": "autoattack", "metrics": {"robust_error": aa},
                             "settings": {"eps": 0.03, "version": "standard", "n_examples": 100},
                             "classwise": {"autoattack": _classwise(spread(aa))}, "protocol": "sound",
                             "details": {}, "num_examples": 100}
    out["pgd40_sound"] = {"evaluator": "pgd", "metrics": {"robust_error": pgd},
                          "settings": {"eps": 0.03, "steps": 40, "protocol": "sound"},
                          "classwise": {"pgd40": _classwise(spread(pgd))}, "protocol": "sound", "details": {},
                          "num_examples": 200}
    if pgd_paper is not None:
        out["pgd40_paper"] = {"evaluator": "pgd", "metrics": {"robust_error": pgd_paper},
                              "settings": {"eps": 0.03, "steps": 40, "protocol": "paper"},
                              "classwise": {"pgd40": _classwise(spread(pgd_paper))}, "protocol": "paper",
                              "details": {}, "num_examples": 200}
    if corruptions:
        names = ["gaussian_noise", "fog", "pixelate"]
        table = {n: sorted(np.clip(clean + rng.uniform(0, 40, 5), 0, 100).tolist()) for n in names}
        out["corruptions"] = {"evaluator": "corruptions",
                              "metrics": {"mce": float(np.mean([np.mean(v) for v in table.values()]))},
                              "settings": {}, "classwise": {}, "protocol": None,
                              "details": {"E": table, "corruptions": names, "severities": [1, 2, 3, 4, 5]},
                              "num_examples": 360}
    if imagenet_x:
        factors = {f: {"error": float(rng.uniform(10, 60)), "error_ratio": float(rng.uniform(0.5, 2.0)),
                       "count": 10} for f in IMAGENET_X_FACTORS}
        out["imagenet_x"] = {"evaluator": "imagenet_x", "metrics": {"error": clean}, "settings": {},
                             "classwise": {}, "protocol": None, "details": {"factors": factors},
                             "num_examples": 100}
    checks = [{"name": f"check{i}", "passed": i >= masking_failed} for i in range(4)]
    out["masking"] = {"evaluator": "masking", "metrics": {}, "settings": {}, "classwise": {}, "protocol": "sound",
                      "details": {"checks": checks}, "num_examples": 32}
    return out


def _write(folder: Path, key: str, training: str, results: dict, reported: dict | None = None) -> dict:
    meta = {"key": key, "dataset": "digits", "architecture": "resnet8_tiny", "training": training,
            "num_classes": 10, "num_ops": 1 if training == "adv_plus" else 0, "delta": 0.03, "eps": 0.03}
    info = build_model_info(meta, results, reported=reported)
    path = folder / "model_info" / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info))
    return info


@pytest.fixture
def board(tmp_path: Path) -> Path:
    """Four labelaug models plus one plain RobustBench file; expected order (AA acc, then clean acc):
    plus (AA 55) > adv_b (AA 60 err, clean 30) > adv_a (AA 60 err, clean 35) > std_rb (AA 90) > std (no AA)."""
    _write(tmp_path, "std", "std", _results(10.0, None, 99.0, 95.0, 10, 0, corruptions=True, imagenet_x=True))
    _write(tmp_path, "adv_a", "adv", _results(35.0, 60.0, 58.0, 40.0, 10, 1, corruptions=True, imagenet_x=True))
    _write(tmp_path, "adv_b", "adv", _results(30.0, 60.0, 57.0, None, 10, 2))
    _write(tmp_path, "plus", "adv_plus",
           _results(31.2, 55.0, 50.0, 30.0, 10, 3, corruptions=True, imagenet_x=True, masking_failed=1),
           reported={"clean_error": 26.70, "mce": 66.43, "pgd_error": 32.70,
                     "classwise": {"clean": {"mean": 26.69, "sd": 16.76}, "pgd": {"mean": 32.70, "sd": 15.33}}})
    plain = {"link": "https://arxiv.org/abs/2007.08489", "name": "Do Adversarially Robust ImageNet Models Transfer "
             "Better?", "authors": "Hadi Salman et al.", "additional_data": False, "number_forward_passes": 1,
             "dataset": "digits", "venue": "NeurIPS 2020", "architecture": "ResNet-18", "eps": "4/255",
             "clean_acc": "52.92", "reported": "25.32", "autoattack_acc": "10.00"}
    (tmp_path / "model_info" / "std_rb.json").write_text(json.dumps(plain))
    return tmp_path


def _table_rows(markdown: str) -> list[list[str]]:
    """The table's rows; the header's titles without their units (``clean err (%)`` -> ``clean err``)."""
    lines = [ln for ln in markdown.splitlines() if ln.startswith("| ")]
    rows = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines]
    return [[h.removesuffix(" (%)") for h in rows[0]], *rows[1:]] if rows else rows


def test_model_info_fields_are_robustbench_modelinfo():
    from robustbench_labelaug.compat import import_robustbench

    import_robustbench()
    from robustbench.utils import ModelInfo

    assert tuple(f.name for f in dataclasses.fields(ModelInfo)) == MODEL_INFO_FIELDS


def test_robustbench_number_conventions():
    assert percent(64.0249) == "64.02" and percent(5) == "5.00" and percent(float("nan")) is None
    assert format_eps(4 / 255) == "4/255" and format_eps(0.03) == "0.03" and format_eps(0.5) == "0.5"
    assert parse_eps("4/255") == pytest.approx(4 / 255) and parse_eps("0.03") == 0.03


def test_build_model_info_keeps_paper_and_measured_apart():
    results = _results(31.2, 55.0, 50.0, 30.0, 10, 3)
    info = build_model_info({"key": "plus", "dataset": "imagenet", "architecture": "resnet50",
                             "training": "adv_plus", "num_classes": 10, "num_ops": 1, "delta": 0.03, "eps": 0.03},
                            results, reported={"clean_error": 26.70, "pgd_error": 32.70})
    validate_model_info(info)
    assert info["clean_acc"] == "68.80" and info["autoattack_acc"] == "45.00" and info["eps"] == "0.03"
    # RobustBench's 'reported' is the paper's robust accuracy (its PGD-40 here, said so in the footnote)
    assert info["reported"] == "67.30" and "PGD-40" in info["footnote"]
    block = info["labelaug"]
    assert block["reported"]["clean_error"] == 26.70 and block["measured"]["clean_error"] == 31.2
    assert block["measured"]["pgd_error"] == 50.0 and block["measured"]["pgd_paper_error"] == 30.0
    assert block["measured"]["protocols"] == {"autoattack": "AutoAttack standard", "pgd40_sound": "PGD-40 (sound)",
                                              "pgd40_paper": "PGD-40 (paper)"}
    assert block["results"] == results


def test_leaderboard_order_cells_and_html(board: Path, tmp_path: Path):
    out = render(board, html=tmp_path / "board.html", quiet=True)
    assert out["order"] == ["plus", "adv_b", "adv_a", "std_rb", "std"]
    markdown = (board / "leaderboard.md").read_text()
    assert markdown == out["markdown"]
    header, *rows = _table_rows(markdown)
    col = {name: i for i, name in enumerate(header)}
    assert [r[col["model"]] for r in rows] == out["order"]
    # rank (interval) (leaderboard/ranking.py): AA 55 / 60 / 60 on n=100 overlap; std_rb's n is unknown (no
    # interval); std (PGD 99 on 200) lies above every other's bound
    assert [r[col["rank"]] for r in rows] == ["1 (1–3)", "2 (1–3)", "3 (1–3)", "4", "5 (5–5)"]
    assert [r[col["ranked by"]] for r in rows] == ["AutoAttack"] * 4 + ["PGD (sound)"]
    for title in ("clean err", "AA err (n)", "PGD-40 err (sound)", "PGD-40 err (paper protocol)", "mCE (unnormalised)",
                  "class SD clean", "class SD PGD-40 (sound)", "class SD PGD-40 (paper protocol)",
                  "worst class clean", "worst class PGD-40 (sound)", "masking checks"):
        assert title in col, title
    assert "ReaL err" not in col  # nobody measured ReaL: no empty column
    plus, adv_b, std_rb, std = rows[0], rows[1], rows[3], rows[4]
    assert plus[col["clean err"]] == "26.70 (paper) / 31.20"
    assert plus[col["AA err (n)"]] == "55.00 (n=100)"  # the run's own n; std_rb's has none
    # the paper's PGD-40 sits beside the paper-protocol run; the sound run shows only the measured number
    assert plus[col["PGD-40 err (paper protocol)"]] == "32.70 (paper) / 30.00"
    assert plus[col["PGD-40 err (sound)"]] == "50.00"
    assert plus[col["class SD clean"]].startswith("16.76 (paper) / ")
    assert plus[col["class SD PGD-40 (paper protocol)"]].startswith("15.33 (paper) / ")
    assert "paper" not in plus[col["class SD PGD-40 (sound)"]]
    assert plus[col["masking checks"]] == "3/4 passed (failed: check0)"
    assert adv_b[col["masking checks"]] == "4/4 passed" and adv_b[col["PGD-40 err (paper protocol)"]] == ""
    assert std_rb[col["clean err"]] == "47.08" and std_rb[col["AA err (n)"]] == "90.00"
    assert std[col["AA err (n)"]] == "" and std[col["clean err"]] == "10.00"
    assert markdown.splitlines()[2].startswith("| rank | model |") and "| clean err (%) |" in markdown  # units
    page = (tmp_path / "board.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script src" not in page and "<link" not in page  # offline
    positions = [page.index(f'data-key="{k}"') for k in out["order"]]
    assert positions == sorted(positions)
    assert 'data-sort="31.2"' in page  # plus's measured clean error is what its cell sorts by


def test_leaderboard_sort_option(board: Path):
    assert render(board, sort="clean", quiet=True)["order"] == ["std", "adv_b", "plus", "adv_a", "std_rb"]


@pytest.mark.slow
def test_plots_written_and_not_blank(board: Path):
    from matplotlib.image import imread

    paths = render(board, plots=True, quiet=True)["paths"]
    names = {p.name for p in paths}
    assert {"classwise_errors.png", "corruption_errors.png", "imagenet_x_error.png",
            "imagenet_x_error_ratio.png"} <= names
    for p in paths:
        if p.suffix == ".png":
            data = p.read_bytes()
            assert data[:8] == PNG_MAGIC and len(data) > 10_000, p
            assert imread(p)[..., :3].std() > 0.05, p  # not a blank canvas


def test_classwise_plot_sorts_many_classes_by_reference(tmp_path: Path):
    """With K > 20 classes the panel draws lines over classes sorted by the std model's error."""
    from robustbench_labelaug.leaderboard.plots import plot_classwise

    k = 50
    infos = []
    for key, training, clean in (("a", "adv", 30.0), ("s", "std", 10.0)):
        results = {"clean": {"evaluator": "clean", "metrics": {"error": clean}, "settings": {},
                             "classwise": {"clean": _classwise(np.linspace(0, 100, k)[::-1].tolist())},
                             "protocol": None, "details": {}, "num_examples": 500}}
        infos.append((key, build_model_info({"key": key, "dataset": "x", "architecture": "r", "training": training,
                                             "num_classes": k, "num_ops": 0}, results)))
    path = plot_classwise(infos, tmp_path / "cw.png")
    assert path is not None and path.read_bytes()[:8] == PNG_MAGIC
    from matplotlib.image import imread

    assert imread(path)[..., :3].std() > 0.05


def test_empty_folder_and_bad_json_exit_2(tmp_path: Path, capsys):
    assert cli_main(["leaderboard", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no model_info JSON files" in err and len(err.splitlines()) == 1
    (tmp_path / "broken.json").write_text("{not json")
    assert cli_main(["leaderboard", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "broken.json is not valid JSON" in err and len(err.splitlines()) == 1
    (tmp_path / "broken.json").write_text(json.dumps({"name": "x", "clean_acc": 64.0}))
    assert cli_main(["leaderboard", str(tmp_path)]) == 2
    assert "lacks the field" in capsys.readouterr().err
    assert cli_main(["leaderboard", str(tmp_path / "missing")]) == 2


def test_validate_rejects_bad_types():
    good = {"name": "m", "dataset": "digits", "architecture": "r", "eps": "0.03", "clean_acc": "90.00",
            "autoattack_acc": None, "additional_data": False, "number_forward_passes": 1}
    validate_model_info(good)
    for field, value in (("clean_acc", 90.0), ("clean_acc", "120"), ("eps", "a/b"), ("additional_data", "no"),
                         ("number_forward_passes", 0), ("bogus", 1)):
        with pytest.raises(UserError):
            validate_model_info({**good, field: value})


def test_cli_leaderboard_prints_table(board: Path, capsys):
    assert cli_main(["leaderboard", str(board), "--sort", "name"]) == 0
    out = capsys.readouterr().out
    assert out.index("| adv_a ") < out.index("| adv_b ") < out.index("| plus ")


def _infos_from(folder: Path) -> list:
    from robustbench_labelaug.results.model_info import load_model_infos

    return load_model_infos(folder)


def test_classwise_figure_titles_mean_sd_and_class_names(tmp_path: Path):
    from robustbench_labelaug.data import get_dataset_spec
    from robustbench_labelaug.leaderboard.plots import classwise_array, classwise_figure

    info = _write(tmp_path, "plus", "adv_plus", _results(31.2, 55.0, 50.0, 30.0, 10, 3))
    infos = [("plus", info)]
    fig = classwise_figure(infos)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["class-wise error: clean, digits", "class-wise error: PGD-40 (sound), ε = 0.03, digits",
                          "class-wise error: PGD-40 (paper protocol), ε = 0.03, digits"]
    clean = classwise_array(info, "clean")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"plus: mean {clean.mean():.1f}, SD {clean.std():.1f}"]
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_ydata()[0] == pytest.approx(clean.mean())
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(i) for i in range(10)]  # digits: their names
    # CIFAR-10: named classes (from the dataset when the file has none)
    info_c = json.loads(json.dumps(info))
    info_c["dataset"] = "cifar10"
    info_c["labelaug"].pop("class_names")
    fig = classwise_figure([("c", info_c)])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == get_dataset_spec("cifar10").names_of_classes()
    assert fig.axes[0].get_title() == "class-wise error: clean, cifar10"


def test_classwise_figure_names_the_worst_classes_with_many_classes(tmp_path: Path):
    from robustbench_labelaug.leaderboard.plots import classwise_figure

    k = 1000
    errors = np.linspace(0, 99, k)
    results = {"clean": {"evaluator": "clean", "metrics": {"error": 50.0}, "settings": {},
                         "classwise": {"clean": _classwise(errors.tolist())}, "protocol": None, "details": {},
                         "num_examples": 5000}}
    info = build_model_info({"key": "r", "dataset": "imagenet", "architecture": "resnet50", "training": "std",
                             "num_classes": k, "num_ops": 0}, results)
    names = [t.get_text() for t in classwise_figure([("r", info)]).axes[0].texts]
    assert names == info["labelaug"]["class_names"][-3:]  # the three highest errors, by ImageNet name


def test_corruption_figure_has_ce_and_mce_panel(board: Path):
    from robustbench_labelaug.leaderboard.plots import corruptions_figure

    infos = [(k, i) for k, i in _infos_from(board) if k in ("std", "plus")]
    fig = corruptions_figure(infos)
    panel = fig.axes[-1]
    assert "mCE" in panel.get_title()
    assert [t.get_text() for t in panel.get_xticklabels()] == ["gaussian noise", "fog", "pixelate",
                                                               "mCE (unnormalised)"]
    heights = [p.get_height() for p in panel.patches]
    for j, (_, info) in enumerate(infos):
        table = info["labelaug"]["results"]["corruptions"]["details"]["E"]
        ce = [float(np.mean(table[n])) for n in ("gaussian_noise", "fog", "pixelate")]
        assert heights[4 * j: 4 * j + 4] == pytest.approx([*ce, float(np.mean(ce))])


def test_pgd_first_autoattack_is_named_as_the_union():
    """An AutoAttack run with pgd_first is labelled "PGD-40 + AutoAttack" in model_info, its footnote and the
    table header; a standalone run keeps RobustBench's plain "AA err (n)"."""
    from robustbench_labelaug.leaderboard.table import columns, row_values

    model = {"key": "plus", "dataset": "digits", "architecture": "resnet8_tiny", "training": "adv_plus",
             "num_classes": 10, "num_ops": 1, "delta": 0.03, "eps": 0.2}
    results = _results(5.0, 60.0, 50.0, None, 10, 1)
    plain = build_model_info(model, results)
    results["autoattack"]["settings"] = {**results["autoattack"]["settings"], "attack": "PGD-40 + AutoAttack "
                                         "(standard)", "pgd_first": "sound EarlyStopPGD-40 first (union)"}
    union = build_model_info(model, results)
    validate_model_info(union)
    assert union["labelaug"]["measured"]["protocols"]["autoattack"] == "PGD-40 + AutoAttack (standard)"
    assert "PGD-40 + AutoAttack (standard) on" in union["footnote"]
    assert "PGD-40 +" not in plain["footnote"]
    titles = {n: [c.title for c in columns([row_values(n, info)])] for n, info in (("plain", plain), ("union", union))}
    assert "AA err (n=100)" in titles["plain"] and "PGD-40 + AA err (n=100)" in titles["union"]


def test_robustbench_autoattack_acc_only_from_standalone_standard_autoattack_on_its_points():
    """model_info's RobustBench field autoattack_acc holds standalone standard AutoAttack on the first n points
    only; the PGD-40 + AutoAttack union, class-balanced points or another version leave it null (the footnote says
    why) and keep the number in labelaug.measured under its own label and protocol."""
    model = {"key": "plus", "dataset": "digits", "architecture": "resnet8_tiny", "training": "adv_plus",
             "num_classes": 10, "num_ops": 1, "delta": 0.03, "eps": 0.2}
    results = _results(5.0, 60.0, 50.0, None, 10, 1)
    settings = results["autoattack"]["settings"]
    plain = build_model_info(model, {**results, "autoattack": {**results["autoattack"],
                                                               "settings": {**settings, "selection": "robustbench"}}})
    assert plain["autoattack_acc"] == "40.00" and "left empty" not in plain["footnote"]
    for change, protocol in (({"attack": "PGD-40 + AutoAttack (standard)", "pgd_first": "union"},
                              "PGD-40 + AutoAttack (standard)"),
                             ({"selection": "class_balanced"}, "AutoAttack standard (class-balanced points)"),
                             ({"version": "rand"}, "AutoAttack rand")):
        other = build_model_info(model, {**results, "autoattack": {**results["autoattack"],
                                                                   "settings": {**settings, **change}}})
        validate_model_info(other)
        assert other["autoattack_acc"] is None, change
        assert f"autoattack_acc left empty: {protocol} is not RobustBench's" in other["footnote"]
        assert other["labelaug"]["measured"]["autoattack_error"] == 60.0
        assert other["labelaug"]["measured"]["protocols"]["autoattack"] == protocol


def test_a_new_evaluators_headline_is_a_column(tmp_path: Path, monkeypatch):
    """The table's columns are the headlines the evaluators declare: an evaluator registered here (not known to
    table.py) gets its column, its label as title (``err`` -> ``acc`` with ``metric="acc"``), in the summary line;
    the headlines are stored in the file, so it renders after the evaluator is gone; older files without stored
    headlines render their stored numbers (no evaluator is asked: reading never imports one)."""
    from robustbench_labelaug.evaluation import EVALUATORS
    from robustbench_labelaug.evaluation.base import Evaluator, Measured
    from robustbench_labelaug.leaderboard.table import summary_line

    class DummyEvaluator(Evaluator):
        name = "dummy"

        @classmethod
        def headline(cls, result):
            return [Measured("dummy_error", "dummy err", result["metrics"]["e"], protocol="dummy attack"),
                    Measured("dummy_n", "dummy n", result["num_examples"], unit="", show=False)]

        def predict(self, model, batches, split, ctx):
            raise NotImplementedError

        def score(self, arrays, dataset, ctx):
            raise NotImplementedError

    monkeypatch.setitem(EVALUATORS, "dummy", DummyEvaluator)

    def dummy(e: float) -> dict:
        return {"evaluator": "dummy", "metrics": {"e": e}, "settings": {}, "classwise": {}, "protocol": None,
                "details": {}, "num_examples": 7}

    infos = {key: _write(tmp_path, key, "adv", {**_results(20.0, None, 50.0, None, 10, i), "dummy_run": dummy(e)})
             for i, (key, e) in enumerate((("a", 12.5), ("b", 30.0)))}
    record = next(h for h in infos["a"]["labelaug"]["measured"]["headlines"] if h["key"] == "dummy_error")
    assert record == {"key": "dummy_error", "label": "dummy err", "value": 12.5, "unit": "%",
                      "protocol": "dummy attack", "show": True, "source": "dummy_run"}
    assert "dummy err 12.50" in summary_line("a", infos["a"])

    def cells(metric: str = "err") -> dict[str, dict[str, str]]:
        header, *rows = _table_rows(render(tmp_path, quiet=True, metric=metric)["markdown"])
        return {r[header.index("model")]: dict(zip(header, r)) for r in rows}

    by_model = cells()
    assert by_model["a"]["dummy err"] == "12.50" and by_model["b"]["dummy err"] == "30.00"
    assert "dummy n" not in by_model["a"]  # a count, not a headline number
    assert cells("acc")["a"]["dummy acc"] == "87.50"
    # an older file (no stored headlines): its stored numbers, labelled from their keys
    old = json.loads((tmp_path / "model_info" / "a.json").read_text())
    del old["labelaug"]["measured"]["headlines"]
    (tmp_path / "model_info" / "a.json").write_text(json.dumps(old))
    assert cells()["a"]["dummy err"] == "12.50"
    # both render without the evaluator that declared them
    monkeypatch.delitem(EVALUATORS, "dummy")
    by_model = cells()
    assert by_model["b"]["dummy err"] == "30.00" and by_model["a"]["dummy err"] == "12.50"


def test_column_titles_name_what_differs_between_rows():
    from robustbench_labelaug.leaderboard.table import _own_words, _title

    assert _title(["PGD-40 err (sound)", "PGD-10 err (sound)"]) == ("PGD err (sound)", True)
    assert _own_words("PGD-10 err (sound)", "PGD err (sound)") == "(PGD-10)"
    assert _title(["AA err (n=120)"], ["AA err"]) == ("AA err (n)", True)
    assert _title(["mCE (AlexNet=100)"], ["mCE (AlexNet=100)"]) == ("mCE (AlexNet=100)", False)
    assert _title(["clean err", "top-1 err"]) == ("clean err / top-1 err", True)


def test_a_column_that_only_restates_its_results_shown_number_is_left_out(tmp_path: Path):
    """The corruption error (not in the summary line) equals the unnormalised mCE of the same result when every
    corruption has all its severities: no second column for it; with a gap in the table they differ and both show."""
    full = _results(20.0, None, 50.0, None, 10, 0, corruptions=True)
    _write(tmp_path, "full", "adv", full)
    header = _table_rows(render(tmp_path, quiet=True)["markdown"])[0]
    assert "mCE (unnormalised)" in header and "corruption err" not in header
    gap = _results(20.0, None, 50.0, None, 10, 1, corruptions=True)
    gap["corruptions"]["details"]["E"]["fog"][4] = None  # a missing cell: the mean over cells differs from mCE
    _write(tmp_path, "gap", "adv", gap)
    header = _table_rows(render(tmp_path, quiet=True)["markdown"])[0]
    assert "mCE (unnormalised)" in header and "corruption err" in header
