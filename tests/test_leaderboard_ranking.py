"""The leaderboard's ranking (leaderboard/ranking.py): the strongest attack each model has, ties on the next robust
measure, rank intervals from the Wilson intervals of the ranking numbers."""

from __future__ import annotations

import pytest

from robustbench_labelaug.leaderboard.ranking import rank_intervals, ranking_measure
from robustbench_labelaug.leaderboard.table import build_table, to_markdown
from robustbench_labelaug.results.model_info import build_model_info
from robustbench_labelaug.scoring.intervals import wilson_interval


def _info(key: str, clean: float, pgd: float | None = None, aa: float | None = None, n: int = 360) -> dict:
    results = {"clean": {"evaluator": "clean", "metrics": {"error": clean}, "settings": {}, "classwise": {},
                         "protocol": None, "details": {}, "num_examples": n}}
    if pgd is not None:
        results["pgd40_sound"] = {"evaluator": "pgd", "metrics": {"robust_error": pgd},
                                  "settings": {"eps": 0.2, "steps": 40, "protocol": "sound"}, "classwise": {},
                                  "protocol": "sound", "details": {}, "num_examples": n}
    if aa is not None:
        results["autoattack"] = {"evaluator": "autoattack", "metrics": {"robust_error": aa},
                                 "settings": {"eps": 0.2, "version": "standard"}, "classwise": {},
                                 "protocol": "sound", "details": {}, "num_examples": n}
    return build_model_info({"key": key, "dataset": "digits", "architecture": "resnet8_tiny", "training": "adv",
                             "num_classes": 10, "num_ops": 0, "eps": 0.2}, results)


def _order(*infos: dict) -> list[str]:
    return build_table([(i["labelaug"]["model"], i) for i in infos]).keys


def test_a_model_without_autoattack_ranks_by_its_pgd_error_never_by_clean_error():
    """The issue's case: 100 % PGD error with a low clean error used to rank above 77.8 % AutoAttack error."""
    broken = _info("broken", clean=1.0, pgd=100.0)  # no AutoAttack run
    robust = _info("robust", clean=8.0, pgd=70.0, aa=77.8)
    assert _order(broken, robust) == ["robust", "broken"]
    table = build_table([("broken", broken), ("robust", robust)])
    by = table.header.index("ranked by")
    assert [row[by] for row in table.rows] == ["AutoAttack", "PGD (sound)"]
    hover = table.hovers[0][by], table.hovers[1][by]
    assert hover == ("AutoAttack standard", "PGD-40 (sound)")  # the headlines' protocols, on the page's hover
    # a PGD-only model with a lower PGD error than another's AutoAttack error ranks above it (its own measure)
    assert _order(_info("pgd_only", clean=1.0, pgd=40.0), robust) == ["pgd_only", "robust"]


def test_ties_break_on_the_next_robust_measure_not_on_clean_error():
    a = _info("a", clean=20.0, pgd=55.0, aa=60.0)  # worse clean error, better PGD
    b = _info("b", clean=5.0, pgd=58.0, aa=60.0)
    assert _order(b, a) == ["a", "b"]
    # a tie on PGD between a model with AutoAttack and one without: the model measured by AutoAttack first
    assert _order(_info("p", clean=1.0, pgd=50.0), _info("q", clean=9.0, pgd=60.0, aa=50.0)) == ["q", "p"]
    # no robust number at all: last, by clean error
    assert _order(_info("c2", clean=9.0), _info("c1", clean=3.0), a) == ["a", "c1", "c2"]


def test_rank_interval_follows_the_wilson_bounds_of_the_ranking_number():
    infos = [_info("m1", 5.0, aa=40.0, n=50), _info("m2", 5.0, aa=45.0, n=50), _info("m3", 5.0, aa=80.0, n=50),
             _info("m4", 5.0, pgd=99.0, n=1000)]
    table = build_table([(i["labelaug"]["model"], i) for i in infos])
    ci = {k: wilson_interval(e * n / 100, n) for k, e, n in (("m1", 40, 50), ("m2", 45, 50), ("m3", 80, 50), ("m4", 99, 1000))}
    assert ci["m1"][1] > ci["m2"][0] and ci["m2"][1] < ci["m3"][0] and ci["m3"][1] < ci["m4"][0]  # the premise
    rank = table.header.index("rank")
    assert [r[rank] for r in table.rows] == ["1 (1–2)", "2 (1–2)", "3 (3–3)", "4 (4–4)"]
    # the definition, spelled out for m2: 1 + models certainly better, N - models certainly worse
    others = [k for k in ci if k != "m2"]
    a = 1 + sum(ci[k][1] < ci["m2"][0] for k in others)
    b = len(ci) - sum(ci[k][0] > ci["m2"][1] for k in others)
    assert (a, b) == (1, 2)
    # larger n narrows the intervals: 40 vs 45 % are told apart on 2 000 examples each
    big = [_info("m1", 5.0, aa=40.0, n=2000), _info("m2", 5.0, aa=45.0, n=2000)]
    table = build_table([(i["labelaug"]["model"], i) for i in big])
    assert [r[rank] for r in table.rows] == ["1 (1–1)", "2 (2–2)"]


def test_the_header_states_the_ranking_rule():
    info = _info("m", 5.0, pgd=50.0)
    text = to_markdown(build_table([("m", info)]), [("m", info)])
    assert "Ranked by the strongest attack each model has" in text and "else AutoAttack, else PGD (sound)" in text
    assert "never by clean error" in text and "rank (a–b)" in text


def test_unknown_n_gives_no_interval_but_bounds_the_others():
    rows = [{"model": "x", "headlines": {}, "external": 30.0}, {"model": "y", "headlines": {}, "external": 31.0}]
    assert ranking_measure(rows[0])[0].name == "best known"
    assert rank_intervals(rows) == [None, None]


@pytest.mark.parametrize("sort", ["clean", "name"])
def test_other_sorts_show_plain_ranks(sort):
    infos = [_info("m1", 5.0, aa=40.0, n=50), _info("m2", 1.0, aa=45.0, n=50)]
    table = build_table([(i["labelaug"]["model"], i) for i in infos], sort=sort)
    assert [r[table.header.index("rank")] for r in table.rows] == ["1", "2"]
