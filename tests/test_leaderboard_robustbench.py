"""rbla leaderboard on RobustBench's own model_info files (tests/robustbench_model_info, its layout), mixed with
this project's; RobustBench's conventions for unknown values; mCE above 100; bad types in a labelaug block."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from robustbench_labelaug.cli import main as cli_main
from robustbench_labelaug.errors import UserError
from robustbench_labelaug.leaderboard.cli import render
from robustbench_labelaug.results.model_info import (
    MODEL_INFO_FIELDS,
    build_model_info,
    load_model_infos,
    validate_model_info,
)

RB_FILES = Path(__file__).parent / "robustbench_model_info"


def robustbench_order(folder: Path) -> list[str]:
    """RobustBench's leaderboard order (robustbench/leaderboard/template.py with utils.ACC_FIELDS): the first of
    ("external", "autoattack_acc") a file has, as a float, highest first; corruptions: corruptions_acc."""
    fields = ("corruptions_acc",) if folder.name == "corruptions" else ("external", "autoattack_acc")
    models = [(p.stem, json.loads(p.read_text())) for p in folder.glob("*.json")]
    return [name for name, m in sorted(models, key=lambda nm: float(next(nm[1][f] for f in fields if f in nm[1])),
                                       reverse=True)]


def _sections(markdown: str) -> dict[str, list[dict[str, str]]]:
    """'## group' -> rows as {column title: cell}."""
    out: dict[str, list[dict[str, str]]] = {}
    group, header = "", None
    for line in markdown.splitlines():
        if line.startswith("## "):
            group, header = line[3:], None
        elif line.startswith("| "):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if header is None:
                header = [c.removesuffix(" (%)") for c in cells]
                out[group] = []
            else:
                out[group].append(dict(zip(header, cells)))
    return out


@pytest.fixture
def rb_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model_info"
    shutil.copytree(RB_FILES, folder)
    return folder


def _ours(folder: Path, key: str, clean_error: float, aa_error: float, dataset: str = "imagenet",
          mce_normalized: float | None = None, num_classes: int = 1000) -> dict:
    results = {"clean": {"evaluator": "clean", "metrics": {"error": clean_error}, "settings": {}, "classwise": {},
                         "protocol": None, "details": {}, "num_examples": 500},
               "autoattack": {"evaluator": "autoattack", "metrics": {"robust_error": aa_error},
                              "settings": {"eps": 4 / 255, "version": "standard"}, "classwise": {},
                              "protocol": "sound", "details": {}, "num_examples": 500}}
    if mce_normalized is not None:
        results["corruptions"] = {"evaluator": "corruptions",
                                  "metrics": {"mce": 70.0, "mce_normalized": mce_normalized},
                                  "settings": {}, "classwise": {}, "protocol": None,
                                  "details": {"E": {"fog": [60.0, 65.0, 70.0, 75.0, 80.0]}}, "num_examples": 500}
    info = build_model_info({"key": key, "dataset": dataset, "architecture": "resnet50", "training": "adv_plus",
                             "num_classes": num_classes, "num_ops": 1, "delta": 0.03, "eps": 4 / 255}, results)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{key}.json").write_text(json.dumps(info))
    return info


def test_every_robustbench_file_loads_with_its_layout(rb_folder: Path):
    infos = dict(load_model_infos(rb_folder))
    assert len(infos) == 11
    # the same name in two threat-model folders: told apart by their paths
    assert {"imagenet/Linf/Standard_R50", "imagenet/corruptions/Standard_R50"} <= set(infos)
    assert "Xiao2020Enhancing" in infos and infos["Xiao2020Enhancing"]["unreliable"] is True


def test_order_and_columns_follow_robustbench(rb_folder: Path, tmp_path: Path):
    out = render(rb_folder, html=tmp_path / "board.html", metric="acc", quiet=True)
    sections = _sections(out["markdown"])
    assert list(sections) == ["cifar10, Linf", "cifar10, corruptions", "imagenet, Linf", "imagenet, corruptions"]
    for group, sub in (("cifar10, Linf", "cifar10/Linf"), ("imagenet, Linf", "imagenet/Linf"),
                       ("imagenet, corruptions", "imagenet/corruptions")):
        rows = sections[group]
        assert [r["model"].rsplit("/", 1)[-1] for r in rows] == robustbench_order(rb_folder / sub), group
        assert [r["rank"] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]
    cifar = {r["model"]: r for r in sections["cifar10, Linf"]}
    # 'external' (7.40) is the best known robust accuracy and what Xiao2020 is ranked by (AutoAttack: 18.50)
    xiao = cifar["Xiao2020Enhancing"]
    assert xiao["AA acc"] == "18.50" and xiao["best known robust acc"] == "7.40"
    assert xiao["AA potentially unreliable"] == "☑" and cifar["Carmon2019Unlabeled"]["AA potentially unreliable"] == ""
    assert cifar["Carmon2019Unlabeled"]["extra data"] == "☑" and xiao["extra data"] == "×"
    assert cifar["Carmon2019Unlabeled"]["best known robust acc"] == "59.53"  # no external: AutoAttack's
    assert xiao["paper"] == "[Enhancing Adversarial Defense by k-Winners-Take-All](https://arxiv.org/abs/1905.10510)"
    assert xiao["architecture"] == "DenseNet-121" and xiao["venue"] == "ICLR 2020" and xiao["clean acc"] == "79.28"
    imagenet = {r["model"]: r for r in sections["imagenet, Linf"]}
    assert imagenet["Bai2024MixedNUTS"]["AA potentially unreliable"] == "×"
    corruptions = {r["model"]: r for r in sections["imagenet, corruptions"]}
    assert corruptions["AlexNet"]["mCE (AlexNet=100)"] == "100.00"
    assert corruptions["imagenet/corruptions/Standard_R50"]["corruption acc"] == "39.48"
    # footnotes: plain text, HTML and MathJax removed
    assert "- Xiao2020Enhancing: Uses ell" not in out["markdown"]
    assert "- Xiao2020Enhancing: Uses Linf = 0.031 ≈ 7.9/255 instead of 8/255.; 7.40% robust" in out["markdown"]
    page = (tmp_path / "board.html").read_text()
    assert '<a href="https://arxiv.org/abs/2402.02263">MixedNUTS' in page and 'href="None"' not in page
    assert '<p class="note">It uses an ensemble of networks.' in page and "<br>7.40%" not in page


def test_metric_err_shows_errors(rb_folder: Path):
    rows = {r["model"]: r for r in _sections(render(rb_folder, quiet=True)["markdown"])["imagenet, Linf"]}
    mixed = rows["Bai2024MixedNUTS"]
    assert mixed["clean err"] == "18.52" and mixed["AA err"] == "41.38" and mixed["best known robust err"] == "41.50"
    with pytest.raises(SystemExit):
        cli_main(["leaderboard", str(rb_folder), "--metric", "ratio"])


def test_robustbench_and_our_entries_in_one_board(rb_folder: Path, tmp_path: Path):
    board = tmp_path / "board"  # RobustBench's imagenet/ folder next to a folder of ours
    _ours(board / "ours", "resnet50_adv_plus", clean_error=35.0, aa_error=60.0)
    shutil.copytree(rb_folder / "imagenet", board / "imagenet")
    order = render(board, quiet=True)["order"]
    linf = [k for k in order if "corruptions" not in k and k != "AlexNet"]
    # ours: AutoAttack accuracy 40.00, between MixedNUTS (external 58.50) and Salman2020Do_R50 (34.96)
    assert linf == ["Bai2024MixedNUTS", "resnet50_adv_plus", "Salman2020Do_R50", "Salman2020Do_R18",
                    "imagenet/Linf/Standard_R50"]
    sections = _sections((board / "leaderboard.md").read_text())
    ours = next(r for r in sections["imagenet, Linf"] if r["model"] == "resnet50_adv_plus")
    assert ours["training"] == "adv_plus" and ours["venue"] == "N/A" and ours["extra data"] == "×"


def test_unknown_text_uses_robustbench_conventions_not_null(tmp_path: Path):
    info = _ours(tmp_path, "m", clean_error=10.0, aa_error=50.0)
    validate_model_info(info)
    assert (info["link"], info["venue"], info["reported"], info["authors"]) == ("", "N/A", "", "")
    assert all(info[f] is not None for f in ("link", "name", "authors", "venue", "reported"))
    assert set(MODEL_INFO_FIELDS) <= set(info)
    # a known paper keeps its values
    results = {"clean": {"evaluator": "clean", "metrics": {"error": 10.0}, "settings": {}, "classwise": {},
                         "protocol": None, "details": {}, "num_examples": 10}}
    paper = {"title": "T", "url": "https://example.org/p", "authors": "A. B.", "venue": "ICLR 2099"}
    known = build_model_info({"key": "k", "dataset": "digits", "architecture": "r", "paper": paper}, results,
                             reported={"pgd_error": 30.0})
    assert (known["link"], known["venue"], known["reported"], known["authors"]) == (
        "https://example.org/p", "ICLR 2099", "70.00", "A. B.")


def test_mce_above_100_validates_and_renders(tmp_path: Path):
    info = _ours(tmp_path / "model_info", "worse_than_alexnet", clean_error=40.0, aa_error=90.0,
                 mce_normalized=123.45)
    assert info["corruptions_mce"] == "123.45"
    validate_model_info(info)  # before: "'corruptions_mce' must be a percent string" after a whole evaluation
    rows = _sections(render(tmp_path, quiet=True)["markdown"])[""]
    assert rows[0]["mCE (AlexNet=100)"] == "123.45"
    # only our models, all with venue "N/A" and no extra data: RobustBench's descriptive columns are left out
    assert not {"venue", "extra data", "paper"} & set(rows[0]) and rows[0]["rank"] == "1 (1–1)"
    with pytest.raises(UserError, match="corruptions_mce"):
        validate_model_info({**info, "corruptions_mce": "-1"})
    with pytest.raises(UserError, match="clean_acc"):
        validate_model_info({**info, "clean_acc": "100.5"})  # accuracies stay within [0, 100]


@pytest.mark.parametrize("where, value", [(("measured", "clean_error"), "31.2"),
                                          (("measured", "classwise"), [1, 2]),
                                          (("measured", "masking_passed"), "4"),
                                          (("reported", "clean_error"), "26.70"),
                                          (("num_classes",), "1000")])
def test_wrong_type_in_labelaug_block_is_one_line_exit_2(tmp_path: Path, capsys, where, value):
    info = _ours(tmp_path / "model_info", "m", clean_error=10.0, aa_error=50.0)
    block = info["labelaug"]
    for key in where[:-1]:
        block = block[key]
    block[where[-1]] = value
    (tmp_path / "model_info" / "m.json").write_text(json.dumps(info))
    assert cli_main(["leaderboard", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "labelaug." + ".".join(where) in err and "Traceback" not in err


def test_class_names_written_when_known(tmp_path: Path):
    from robustbench_labelaug.data import get_dataset_spec

    cifar10 = get_dataset_spec("cifar10").names_of_classes()  # the registry's, the one definition
    assert _ours(tmp_path, "c", 10.0, 50.0, dataset="cifar10", num_classes=10)["labelaug"]["class_names"] == cifar10
    names = _ours(tmp_path, "i", 10.0, 50.0)["labelaug"]["class_names"]
    assert len(names) == 1000 and names[0] == "tench" and names[1] == "goldfish"
    assert _ours(tmp_path, "u", 10.0, 50.0, dataset="folder")["labelaug"]["class_names"] is None
