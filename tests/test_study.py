"""rbla study (issue 28, item 3): a tiny study end to end (digits, 1 epoch, few examples, in-process), resumed; its
aggregates recomputed from its own model_info files; its verdicts from stats' functions on outcome tables rebuilt
from the per-example files; a changed cell refused; bad configs one line and exit 2; the packaged digits study."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from robustbench_labelaug import UserError
from tests.conftest import run_cli_inprocess

KNOBS = {"adv_steps": 1, "epochs": 1}
TINY = {
    "title": "tiny study",
    "dataset": "digits",
    "eps": 0.1,
    "eps_max": 0.2,
    "reference": "adv",
    "runtime": {"batch_size": 128, "device": "cpu", "seed": 0},
    "measures": [
        {"name": "clean"},
        {"id": "pgd3", "name": "pgd", "settings": {"protocol": "sound", "steps": 3, "n_examples": 50}},
        {"id": "curve", "name": "robustness_curve",
         "settings": {"steps": 10, "points": 5, "autoattack": False, "refine_steps": 4, "n_examples": 50}},
    ],
    "arms": [
        {"name": "adv", "method": "digits_adv", "seeds": 2, "knobs": KNOBS},
        {"name": "trades", "method": "digits_trades", "seeds": 2, "knobs": {"trades_beta": [1, 6], **KNOBS}},
    ],
    "endpoints": {"n_boot": 300, "seed": 4, "primary": [{"measure": "pgd3", "statistic": "worst"},
                                                        {"measure": "pgd3", "statistic": "sd", "direction": "decrease"},
                                                        {"measure": "clean", "statistic": "mean"}],
                  "secondary": [{"measure": "curve", "statistic": "worst"}]},
    "tradeoff": {"measure": "pgd3", "curve": "curve"},
    "power": [{"arm": "trades", "value": 6, "measure": "pgd3", "statistic": "sd", "relative_effect": -0.0279,
               "source": "the paper's claim"}],
}


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """The tiny study run once (2 arms x 2 seeds, trades sweeping beta over 1 and 6: 6 trainings), then again."""
    from robustbench_labelaug.study import load_study_config, run_study

    root = tmp_path_factory.mktemp("study")
    config = write_config(root / "tiny.yaml", {**TINY, "output": str(root / "out")})
    study = load_study_config(config)
    first = run_study(study, jobs=1, progress=False)
    checkpoints = {p: p.stat().st_mtime_ns for p in (root / "out" / "train").rglob("last.pth.tar")}
    second = run_study(load_study_config(config), jobs=1, progress=False)
    return {"root": root, "config": config, "study": study, "first": first, "second": second,
            "checkpoints": checkpoints, "data": json.loads((root / "out" / "study.json").read_text())}


@pytest.mark.slow
def test_a_tiny_study_runs_end_to_end_and_a_second_run_trains_nothing(tiny_study):
    out = tiny_study["root"] / "out"
    first, second = tiny_study["first"], tiny_study["second"]
    assert len(first["trained"]) == 6 and len(first["evaluated"]) == 6 * 3  # 3 measures, one task each
    assert second["trained"] == [] and second["evaluated"] == []
    assert {p: p.stat().st_mtime_ns for p in (out / "train").rglob("last.pth.tar")} == tiny_study["checkpoints"]
    for name in ("study.json", "verdicts.md", "tradeoff.png", "timings.json"):
        assert (out / name).stat().st_size > 0, name
    data = tiny_study["data"]
    assert list(data["arms"]) == ["adv", "trades[trades_beta=1]", "trades[trades_beta=6]"]
    cells = data["arms"]["trades[trades_beta=6]"]["eps"]["0.1"]["cells"]
    assert [c["seed"] for c in cells] == [0, 1]
    assert cells[1]["training"] == "digits_trades.trades_beta-6.adv_steps-1.epochs-1.eps-0.1.seed-1"
    # each cell trained what the config says: its zoo recipe, the seed index added, the knobs, the study eps
    args = yaml.safe_load((out / "train" / cells[1]["training"] / "args.yaml").read_text())
    assert (args["trades_beta"], args["adv_steps"], args["epochs"], args["adv_eps"], args["seed"]) == (6, 1, 1, 0.1, 1)
    assert (out / "cells" / f"{cells[1]['training']}.json").is_file()
    # the verdict table: three primary endpoints x two trades points, Holm over the six
    assert len(data["endpoints"]["primary"]) == 6 and len(data["endpoints"]["secondary"]) == 2
    md = (out / "verdicts.md").read_text()
    assert "Holm's correction over the 6 primary comparisons" in md and "## Matched robustness" in md
    assert data["matched"]["trades"]["sweep"] == ["trades[trades_beta=1]", "trades[trades_beta=6]"]
    power = data["power"][0]
    assert power["arm"] == "trades[trades_beta=6]" and power["n_seeds"] == [2, 2]
    ref_sd = data["arms"]["adv"]["eps"]["0.1"]["aggregates"]["pgd3"]["sd"]["estimate"]
    assert power["effect"] == pytest.approx(-0.0279 * ref_sd)  # the paper's relative effect of Adv's class SD


@pytest.mark.slow
def test_study_aggregates_equal_a_recomputation_from_its_model_info_files(tiny_study):
    """Each point's class mean error, class SD and worst class (per model, averaged over seeds) equal those of the
    cells' own model_info files (the runner's class-wise summaries, written by another code path)."""
    out, data = tiny_study["root"] / "out", tiny_study["data"]
    checked = 0
    for arm in data["arms"].values():
        for block in arm["eps"].values():
            infos = [json.loads((out / c["model_info"]).read_text()) for c in block["cells"]]
            for measure, meta in data["measures"].items():
                summaries = []
                for info in infos:
                    classwise = info["labelaug"]["measured"]["classwise"]
                    found = [b["summary"] for b in classwise.values() if b.get("source") == meta["result_id"]]
                    assert len(found) == 1, (measure, list(classwise))
                    summaries.append(found[0])
                agg = block["aggregates"][measure]
                for stat, key in (("mean", "mean"), ("sd", "sd"), ("worst", "worst_error")):
                    assert agg[stat]["estimate"] == pytest.approx(np.mean([s[key] for s in summaries]), abs=1e-9)
                    assert agg["per_seed"][stat] == pytest.approx([s[key] for s in summaries], abs=1e-9)
                checked += 1
    assert checked == 3 * 3


def _outcome_table(out: Path, data: dict, measure: str):
    """The measure's outcome table rebuilt from the cells' stored part files (read with numpy, not the study's
    reader): arm = point name, seed = seed index; for a curve, the example's share above its radius."""
    import pandas as pd

    from robustbench_labelaug.stats import ArmOutcomes, outcome_table

    meta = data["measures"][measure]
    arms = {}
    tables = []
    for name, arm in data["arms"].items():
        rows = []
        for cell in arm["eps"]["0.1"]["cells"]:
            part = out / "eval" / cell["training"] / "cache" / meta["result_id"] / meta["evaluator"] / "all.npz"
            with np.load(part) as npz:
                arrays = {k: npz[k] for k in npz.files}
            order = np.argsort(arrays["index"])
            if "radius" in arrays:
                rows.append(1 - np.minimum(arrays["radius"][order], data["eps_max"]) / data["eps_max"])
            else:
                tables.append(outcome_table(name, cell["seed"], arrays["index"], arrays["y_true"],
                                            arrays["y_pred"] == arrays["y_true"]))
            index, y = arrays["index"][order], arrays["y_true"][order]
        if rows:
            arms[name] = ArmOutcomes(name, np.arange(len(rows)), index, y, np.stack(rows))
    return arms if arms else pd.concat(tables, ignore_index=True)


@pytest.mark.slow
def test_verdicts_equal_stats_functions_on_the_same_draws(tiny_study):
    from robustbench_labelaug.stats import bootstrap_draws, difference, endpoint_verdicts, equivalence_bound
    from robustbench_labelaug.stats.paired import holm

    out, data = tiny_study["root"] / "out", tiny_study["data"]
    ep = TINY["endpoints"]
    for family in ("primary", "secondary"):
        expected, directions = {}, {}
        for endpoint in ep[family]:
            table = _outcome_table(out, data, endpoint["measure"])
            draws = bootstrap_draws(table, n_boot=ep["n_boot"], seed=ep["seed"], num_classes=10)
            method = "percentile" if endpoint["statistic"] == "mean" else "bc"
            for point in ("trades[trades_beta=1]", "trades[trades_beta=6]"):
                name = f"{endpoint['measure']} {endpoint['statistic']}: {point} - adv"
                expected[name] = difference(draws, "adv", point, 0.95, method)[endpoint["statistic"]]
                directions[name] = endpoint.get("direction", "two-sided")
        verdicts = endpoint_verdicts(expected, 0.05, directions)
        got = data["endpoints"][family]
        assert list(got) == list(verdicts)
        for name, v in verdicts.items():
            for key in ("diff", "ci", "p", "p_holm", "equivalence_bound"):
                assert got[name][key] == pytest.approx(v[key], abs=1e-12), (name, key)
            if not v["significant"]:
                assert got[name]["equivalence_bound"] == pytest.approx(
                    equivalence_bound(v["ci"], directions[name]))
        # Holm by hand: the k-th smallest p times (m - k + 1), made monotone, capped at 1
        p = np.array([expected[n]["p"] for n in expected])
        order = np.argsort(p, kind="stable")
        by_hand = np.minimum(1, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
        np.testing.assert_allclose([got[n]["p_holm"] for n in np.array(list(expected))[order]], by_hand)
        np.testing.assert_allclose([got[n]["p_holm"] for n in expected], holm(p))


@pytest.mark.slow
def test_a_changed_config_for_an_existing_cell_is_refused_in_one_line(tiny_study, tmp_path):
    out = tiny_study["root"] / "out"
    before = {p: p.read_bytes() for p in out.glob("*.json")}
    changed = json.loads(json.dumps({**TINY, "output": str(out)}))
    changed["measures"][1]["settings"]["steps"] = 4  # the cells' evaluation is another one now
    r = run_cli_inprocess("study", "-c", str(write_config(tmp_path / "changed.yaml", changed)), "--jobs", "1")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "was evaluated otherwise (measures.pgd3.settings.steps: 3 then, 4 now)" in r.stderr
    # a training recorded otherwise (a record of an older config): refused before anything runs
    record = out / "cells" / "digits_adv.adv_steps-1.epochs-1.eps-0.1.seed-0.json"
    saved = record.read_text()
    try:
        old = json.loads(saved)
        old["training"]["args"]["lr"] = 0.5
        record.write_text(json.dumps(old))
        r = run_cli_inprocess("study", "-c", str(tiny_study["config"]), "--jobs", "1")
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "study cell 'digits_adv.adv_steps-1.epochs-1.eps-0.1.seed-0' was trained otherwise (args.lr: 0.5 " \
               "then, 0.05 now)" in r.stderr
    finally:
        record.write_text(saved)
    assert {p: p.read_bytes() for p in out.glob("*.json")} == before


# -- bad configs: one line, exit 2, nothing written (no training needed: each fails before any work) -------------


def _bad(**changes) -> dict:
    config = json.loads(json.dumps(TINY))
    for key, value in changes.items():
        config[key] = value
    return config


SWEEP = TINY["arms"][1]["knobs"]


def _arm(**changes) -> list:
    return [TINY["arms"][0], {**TINY["arms"][1], **changes}]


BAD = [
    ("unknown-top-key", _bad(arm=[]), "unknown key(s) ['arm'] in the top level"),
    ("eps-not-a-number", _bad(eps="0.1"), "'eps' must be a number"),
    ("eps-max-below-eps", _bad(eps_max=0.05), "eps_max 0.05 is below the study's largest eps 0.1"),
    ("unknown-dataset", _bad(dataset="mnist"), "unknown dataset 'mnist'"),
    ("reference-not-an-arm", _bad(reference="std"), "reference 'std' is not an arm"),
    ("arm-name-path", _bad(arms=[TINY["arms"][0], {**TINY["arms"][1], "name": "../x"}]), "holds a path separator"),
    ("arm-name-twice", _bad(arms=[TINY["arms"][0], {**TINY["arms"][1], "name": "adv"}]), "appear twice"),
    ("unknown-method", _bad(arms=_arm(method="digits_nope")), "method:"),
    ("knob-not-a-flag", _bad(arms=_arm(knobs={**SWEEP, "trades_betta": 3})),
     "knob 'trades_betta' is not an rbla train flag"),
    ("knob-bad-value", _bad(arms=_arm(knobs={"trades_beta": [6, "high"]})), "do not parse as rbla train flags"),
    ("knob-reserved", _bad(arms=_arm(knobs={**SWEEP, "adv_eps": 0.3})), "knob 'adv_eps' is set by the study"),
    ("two-sweeps", _bad(arms=_arm(knobs={"trades_beta": [1, 6], "lr": [0.1, 0.01]})), "one knob sweep per arm"),
    ("swept-reference", _bad(reference="trades"), "the reference arm sweeps 'trades_beta'"),
    ("measure-sets-eps", _bad(measures=[{"name": "pgd", "settings": {"eps": 0.3}}]),
     "sets eps in 'settings': the study sets each cell's eps"),
    ("measure-unknown", _bad(measures=[{"name": "pgd_fast"}]), "unknown evaluator 'pgd_fast'"),
    ("measure-bad-setting", _bad(measures=[TINY["measures"][0], {"id": "pgd3", "name": "pgd", "settings": {"steps": 0}},
                                           TINY["measures"][2]]),
     "('pgd3') at eps 0.1"),
    ("endpoint-unknown-measure", _bad(endpoints={"primary": [{"measure": "autoattack", "statistic": "worst"}]}),
     "measure 'autoattack' is not one of the measures"),
    ("endpoint-bad-statistic", _bad(endpoints={"primary": [{"measure": "pgd3", "statistic": "median"}]}),
     "'median' is not known: use one of mean, sd, worst"),
    ("endpoints-empty", _bad(endpoints={"primary": []}), "endpoints.primary is empty"),
    ("correction-other", _bad(endpoints={**TINY["endpoints"], "correction": "bonferroni"}),
     "'bonferroni' is not known: use one of holm"),
    ("power-without-effect", _bad(power=[{"arm": "trades", "value": 6, "measure": "pgd3"}]),
     "give either 'effect' (percentage points) or 'relative_effect'"),
    ("power-swept-arm-without-value", _bad(power=[{"arm": "trades", "measure": "pgd3", "effect": 1.0}]),
     "name its point with 'value'"),
    ("curve-not-a-curve", _bad(tradeoff={"measure": "pgd3", "curve": "clean"}), "is a clean evaluator, not a robustness"),
]


@pytest.mark.parametrize("config, expect", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_study_configs_are_one_line_exit_2_and_write_nothing(config, expect, tmp_path):
    path = write_config(tmp_path / "bad.yaml", {**config, "output": str(tmp_path / "out")})
    r = run_cli_inprocess("study", "-c", str(path), "--jobs", "1")
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert expect in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


def test_a_missing_config_names_the_packaged_studies(tmp_path):
    from robustbench_labelaug.study.config import packaged_study_configs

    names = list(packaged_study_configs())
    assert "digits" in names
    r = run_cli_inprocess("study", "-c", str(tmp_path / "nowhere.yaml"))
    assert r.returncode == 2 and f"one of the packaged studies ({', '.join(names)})" in r.stderr


# -- the packaged digits study -------------------------------------------------------------------------------------


def test_the_packaged_digits_study_plans_the_issue_s_arms_seeds_and_eps_scan():
    from robustbench_labelaug.study import load_study_config, make_plan

    study = load_study_config("digits")
    plan = make_plan(study)
    seeds = {p.name: len(plan.cells_of(p, study.cfg.eps)) for p in plan.points}
    assert seeds == {"adv": 10, "adv_plus": 10, "adv_mix": 5, "adv_plus_dummy": 5, "trades[trades_beta=1]": 5,
                     "trades[trades_beta=3]": 5, "trades[trades_beta=6]": 5, "trades_cfa": 5, "frl": 5}
    assert len(study.eps_values()) >= 3
    for arm in ("adv", "adv_plus"):  # the eps scan: Adv and Adv+ at >= 3 eps
        assert sum(bool(plan.cells_of(plan.points_of(arm)[0], e)) for e in study.eps_values()) >= 3
    # FRL fine-tunes the Adv training of its own eps and seed: the Adv arm's cell, trained once
    frl = [plan.trainings[c.training] for c in plan.cells if c.point.arm == "frl"]
    assert [t.hot_start for t in frl] == [f"digits_adv.eps-{study.cfg.eps:g}.seed-{i}" for i in range(5)]
    assert len(plan.trainings) == len(plan.cells) == 73
    measures = {m.id: m for m in study.measures}
    assert measures["autoattack"].settings.get("n_examples") is None  # the whole test set
    assert not measures["autoattack"].settings.get("pgd_first")       # standalone
    assert study.cfg.power[0].relative_effect == pytest.approx(-0.0279)
    assert len(make_plan(study, fast=True).cells) < len(plan.cells)
    help_text = " ".join(run_cli_inprocess("study", "--help").stdout.split())
    assert "packaged one by name: digits" in help_text


def test_a_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    r = run_cli_inprocess("study", "-c", "digits", "--dry-run", "--output", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert "73 trainings, 73 cells" in r.stdout and "eps 0.05: adv x3, adv_plus x3" in r.stdout
    assert not (tmp_path / "out").exists()


def test_knob_values_name_training_folders_safely():
    from robustbench_labelaug.study.config import knob_text
    from robustbench_labelaug.study.plan import training_name

    assert training_name("digits_trades_cfa", (("cfa_parts", "ccm,ccr"), ("trades_beta", 3.0)), 0.1, 2) == \
        "digits_trades_cfa.cfa_parts-ccm+ccr.trades_beta-3.eps-0.1.seed-2"
    for bad in ("../x", "a b", "x/y"):
        with pytest.raises(UserError):
            knob_text(bad)


def test_the_core_cut_s_cells_are_the_full_study_s_cells(tmp_path):
    """study_configs/digits_core.yaml says its cells are digits.yaml's: every training it plans is one the full study
    plans with the same rbla train arguments (TRADES without a knob is the beta-6 point of the full study's sweep,
    under another folder name), and every measure it keeps is evaluated with the same settings, so its numbers are
    the full design's with fewer arms and seeds."""
    from robustbench_labelaug.study import load_study_config, make_plan
    from robustbench_labelaug.study.cells import evaluation_record, training_args, training_record

    def records(plan):
        out = {}
        for name, t in plan.trainings.items():
            rec = training_record(training_args(t, tmp_path, fast_epochs=None), t)
            out[name] = (rec["method"], rec["eps"], rec["seed_index"], rec["hot_start"], repr(rec["args"]))
        return out

    full, core = load_study_config("digits"), load_study_config("digits_core")
    assert core.cfg.eps == full.cfg.eps and core.cfg.reference == full.cfg.reference
    full_records, core_records = records(make_plan(full)), records(make_plan(core))
    unmatched = {name for name, rec in core_records.items() if rec not in set(full_records.values())}
    assert unmatched == set() and len(core_records) == 10
    assert {n for n in core_records if n not in full_records} == {"digits_trades.eps-0.1.seed-0",
                                                                  "digits_trades.eps-0.1.seed-1"}
    core_eval, full_eval = evaluation_record(core, core.cfg.eps, False), evaluation_record(full, full.cfg.eps, False)
    assert set(core_eval["measures"]) < set(full_eval["measures"])
    assert all(full_eval["measures"][m] == s for m, s in core_eval["measures"].items())
    assert (core_eval["dataset"], core_eval["seed"]) == (full_eval["dataset"], full_eval["seed"])
    assert core.cfg.endpoints.primary == full.cfg.endpoints.primary and core.cfg.power == full.cfg.power
