"""Property test (issue 30, family 2): random path-component strings (separators, dots, NUL and other control
characters, white space, Unicode in NFC and NFD, any length) fed to the one name check,
``fileio.check_component``, and to every door that turns a user-given name into a path: an evaluation config's
model name, evaluator id and dataset id, ``rbla train --experiment``, ``rbla zoo export --name/--dataset``,
``benchmark(model_name=..., evaluators=[(.., {"id": ..})])`` and a study config's arm names, measure ids and knob
values. Each either accepts the name, and the path it builds
stays one component inside its folder, or refuses it with one line (UserError); nothing is ever written outside
the folder."""

from __future__ import annotations

import argparse
import os
import tempfile
import unicodedata
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robustbench_labelaug.errors import UserError
from robustbench_labelaug.fileio import MAX_COMPONENT_CHARS, check_component

TRICKY = [".", "..", "...", "../x", "x/..", "a/b", "a\\b", "/abs", "\\abs", "a\x00b", "\x00", "a\nb", " a", "a ",
          "\t", "~", "~root", "-rf", ".hidden", "a.", "é", unicodedata.normalize("NFD", "é"), "\u202egnp.exe",
          "CON", "nul", "a" * MAX_COMPONENT_CHARS, "a" * (MAX_COMPONENT_CHARS + 1), "é" * 130, "$HOME", "${X}",
          "*", "?", "a:b", "<script>", "\ufeffx", "\u2028", "x\u0085y", "日本語", "🙂" * 40]
PIECES = st.sampled_from(["", ".", "..", "/", "\\", "\x00", "\n", " ", "a", "b9", "-", "_", "é",
                          unicodedata.normalize("NFD", "é"), "\u0301", "日", "🙂", "~", "$", ":"])
NAMES = st.one_of(
    st.sampled_from(TRICKY),
    st.lists(PIECES, min_size=1, max_size=8).map("".join),                   # dots, separators, NUL, marks
    st.text(max_size=12),                                                    # any Unicode (no lone surrogates)
    st.text(alphabet="ab./", min_size=1, max_size=6),
    st.integers(MAX_COMPONENT_CHARS - 2, 4 * MAX_COMPONENT_CHARS).map(lambda n: "x" * n),
)
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
DOOR = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
SLOW = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


def assert_inside(folder: Path, name: str) -> None:
    """``folder / name`` is one component below ``folder`` and stays there once resolved."""
    target = folder / name
    assert target.parent == folder and target.name == name, name
    assert os.path.realpath(target).startswith(os.path.realpath(folder) + os.sep), name


def assert_one_line(exc: UserError) -> None:
    text = str(exc)
    assert text and "\n" not in text and "\r" not in text, text


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def written_outside(base: Path, folder: Path, before: set[Path]) -> list[Path]:
    """Files created under ``base`` since ``before`` that are not inside ``folder``."""
    inside = os.path.realpath(folder) + os.sep
    return [p for p in files_under(base) - before if not os.path.realpath(p).startswith(inside)]


@FAST
@given(NAMES)
def test_the_one_check_accepts_only_one_component_names(name):
    try:
        accepted = check_component(name, "model name")
    except UserError as exc:
        assert_one_line(exc)
        assert str(exc).startswith("model name ")
        return
    assert accepted == name
    assert_inside(Path("/srv/out"), name)
    assert 0 < len(name) <= MAX_COMPONENT_CHARS and unicodedata.normalize("NFC", name) == name
    assert not any(ord(c) < 32 for c in name) and name.strip() == name


@pytest.mark.slow
@DOOR
@given(NAMES, st.sampled_from(["model", "evaluator", "dataset"]))
def test_config_names(name, where):
    """An evaluation config's model name, evaluator id or dataset id (read, validated, nothing built)."""
    from robustbench_labelaug.runner.config import load_config

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        cfg = {"runtime": {"device": "cpu", "output": str(base / "out")},
               "datasets": {"d": {"name": "digits", "split": "test"}},
               "models": [{"name": "m", "checkpoint": str(base / "m.pth.tar"), "dataset": "d"}],
               "evaluators": [{"name": "clean"}]}
        if where == "model":
            cfg["models"][0]["name"] = name
        elif where == "evaluator":
            cfg["evaluators"][0]["id"] = name
        else:
            cfg["datasets"] = {name: cfg["datasets"]["d"]}
            cfg["models"][0]["dataset"] = name
        (base / "eval.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        before = files_under(base)
        try:
            loaded = load_config(base / "eval.yaml")
        except UserError as exc:
            assert_one_line(exc)
            return
        finally:
            assert files_under(base) == before  # reading a config writes nothing
        for used in ([m.key for m in loaded.models] + [e.id for e in loaded.evaluators] + list(loaded.datasets)):
            assert_inside(base / "out", used)
            assert_inside(base / "out" / "m" / "results", f"{used}.json")


@pytest.mark.slow
@DOOR
@given(NAMES, st.sampled_from(["arm", "measure", "knob"]))
def test_study_names(name, where):
    """A study config's arm name, measure id and knob value (a knob value names training folders): read,
    validated and planned, nothing trained; what is accepted names folders inside the study's train/ and eval/."""
    from robustbench_labelaug.study import load_study_config, make_plan

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        cfg = {"dataset": "digits", "eps": 0.1, "eps_max": 0.2, "reference": "adv", "output": str(base / "out"),
               "measures": [{"name": "clean"}],
               "arms": [{"name": "adv", "method": "digits_adv", "seeds": 1},
                        {"name": "b", "method": "digits_adv_plus", "seeds": 1}],
               "endpoints": {"primary": [{"measure": "clean", "statistic": "worst"}]}}
        if where == "arm":
            cfg["arms"][1]["name"] = name
        elif where == "measure":
            cfg["measures"][0]["id"] = name
            cfg["endpoints"]["primary"][0]["measure"] = name
        else:
            cfg["arms"][1]["knobs"] = {"la_protocol": name}
        (base / "study.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        before = files_under(base)
        try:
            plan = make_plan(load_study_config(base / "study.yaml"))
        except UserError as exc:
            assert_one_line(exc)
            return
        finally:
            assert files_under(base) == before  # reading and planning a study writes nothing
        for training in plan.trainings:
            assert_inside(base / "out" / "train", training)
            assert_inside(base / "out" / "eval", training)
        for measure in (m["id"] if isinstance(m, dict) and "id" in m else "clean" for m in cfg["measures"]):
            assert_inside(base / "out" / "eval" / "x" / "results", f"{measure}.json")


@DOOR
@given(NAMES)
def test_train_experiment(name):
    from robustbench_labelaug.train.run import resolve_output_dir

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        args = argparse.Namespace(resume=None, experiment=name, output=str(out), model="resnet8_tiny",
                                  adv_mode="std")
        try:
            run = resolve_output_dir(args)
        except UserError as exc:
            assert_one_line(exc)
            return
        parts = run.relative_to(out).parts  # 'group/run' nests: each folder one safe name, all inside --output
        assert parts and all(check_component(p, "part") == p for p in parts)
        assert os.path.realpath(run).startswith(os.path.realpath(out) + os.sep)
        assert not name or run == out / name


@pytest.fixture(scope="module")
def digits_checkpoint(tmp_path_factory) -> Path:
    from .test_user_zoo import run_checkpoint

    return run_checkpoint(tmp_path_factory.mktemp("ckpt") / "run")


@SLOW
@given(name=NAMES, where=st.sampled_from(["name", "dataset"]))
def test_zoo_export_name_and_dataset(digits_checkpoint, name, where):
    """``rbla zoo export --name`` / ``--dataset``: whatever is accepted lands in --model-dir and --zoo."""
    from robustbench_labelaug.zoo.entries import load_entries
    from robustbench_labelaug.zoo.export import export_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "out").mkdir()
        before = files_under(base)
        kwargs = {"name": name} if where == "name" else {"name": "mine", "dataset": name}
        try:
            export_checkpoint(digits_checkpoint, model_dir=base / "out" / "models", zoo=base / "out" / "zoo",
                              **kwargs)
        except UserError as exc:
            assert_one_line(exc)
        finally:
            load_entries.cache_clear()
        assert written_outside(base, base / "out", before) == []


@SLOW
@given(name=NAMES, where=st.sampled_from(["model_name", "id"]))
def test_benchmark_model_name_and_result_id(name, where):
    import torch

    from robustbench_labelaug import benchmark

    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 10))
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "out").mkdir()
        before = files_under(base)
        evaluators = [("clean", {"n_examples": 10, **({"id": name} if where == "id" else {})})]
        try:
            report = benchmark(model, dataset="digits", evaluators=evaluators, to_disk=True, output=base / "out",
                               **({"model_name": name} if where == "model_name" else {}))
        except UserError as exc:
            assert_one_line(exc)
        else:
            assert_inside(base / "out", report.model_name)
        assert written_outside(base, base / "out", before) == []
