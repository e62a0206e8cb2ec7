"""Hostile input, round three (issue 30, families 1, 2, 5 and 7): the table of tests/test_bad_input.py (exit 2,
one line naming the problem, the watched folder unchanged: no file written, replaced or left behind anywhere in
it, no marker file of a payload) for data files that run code, names that escape their folder and writes that can
be lost; then the effects themselves: concurrent exports, a kill while a figure is written, raw HTML in Markdown."""

from __future__ import annotations

import io
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from robustbench_labelaug.errors import UserError

from .fixtures_cifar import write_cifar10
from .test_bad_input import (
    FAST,
    REPO,
    Case,
    check_bad_input_case,
    eval_config,
    run_dir,  # noqa: F401  (fixture)
    snapshot,
    tiny_data,  # noqa: F401  (fixture)
    tiny_eval_dataset,
)

# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------


class _Payload:
    """Pickles as a call of ``os.system`` that writes ``marker``: what a replaced data file could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _deflated(state: dict, path: Path) -> Path:
    """``torch.save(state)`` with its zip entries deflated: a small file that inflates to the tensors' size."""
    buf = io.BytesIO()
    torch.save(state, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info.filename), compress_type=zipfile.ZIP_DEFLATED)
    return path


def _bomb(run: Path, path: Path) -> Path:
    """The run's first checkpoint (a complete, loadable one) plus 128 MiB of zeros, deflated to ~0.2 MB."""
    state = torch.load(run / "checkpoint-0.pth.tar", weights_only=False)
    state["padding"] = torch.zeros(32 << 20)
    return _deflated(state, path)


NET = textwrap.dedent('''
    import os
    import sys

    from torch import nn


    def build():
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 10))


    def raises():
        raise RuntimeError("no weights here")


    def exits():
        sys.exit(3)


    def hard_exit():
        os._exit(4)
''')


def _python_config(tmp: Path, factory: str, output: Path | None = None, **dataset) -> Path:
    """``tmp/cfg/eval.yaml`` evaluating ``python: net.py:<factory>`` (net.py beside the config) on digits, or on
    ``dataset``; the output ``tmp/out`` unless given."""
    (tmp / "cfg").mkdir(exist_ok=True)
    (tmp / "cfg" / "net.py").write_text(NET)
    cfg = {"runtime": {"device": "cpu", "output": str(output or tmp / "out"), "progress": False, "plots": False},
           "datasets": {"d": dataset or {"name": "digits", "split": "test"}},
           "models": [{"name": "mine", "python": f"net.py:{factory}", "dataset": "d"}],
           "evaluators": [{"name": "clean", "settings": {"n_examples": 20}}]}
    (tmp / "cfg" / "eval.yaml").write_text(yaml.safe_dump(cfg))
    return tmp / "cfg" / "eval.yaml"


# ---------------------------------------------------------------------------------------------------------------
# family 1: data files that run code
# ---------------------------------------------------------------------------------------------------------------


def _cifar_payload(batch: str):
    def setup(tmp, run):
        data = tmp / "data"
        images = write_cifar10(data, n_test=10)
        good = ({"data": images["images"].transpose(0, 3, 1, 2).reshape(10, -1), "labels": list(range(10))}
                if batch == "test_batch" else {"label_names": [f"c{i}" for i in range(10)], "num_vis": 3072})
        with open(data / "cifar-10-batches-py" / batch, "wb") as f:  # still a valid file: the payload rides along
            pickle.dump({**good, "batch_label": _Payload(tmp / "marker")}, f)
        cfg = _python_config(tmp, "build", name="cifar10", data_dir=str(data), split="test")
        return ["evaluate", "-c", str(cfg), "--no-progress"], tmp
    return setup


def _bomb_command(command: str):
    def setup(tmp, run):
        bomb = _bomb(run, tmp / "ckpt" / "bomb.pth.tar")
        if command == "export":
            return ["zoo", "export", "--checkpoint", str(bomb), "--name", "bomb_model", "--model-dir",
                    str(tmp / "models"), "--zoo", str(tmp / "zoo")], tmp
        if command == "resume":
            return ["train", "--resume", str(bomb), *FAST], tmp
        cfg = eval_config(tmp, bomb, tmp / "eval", tiny_eval_dataset(run))
        return ["evaluate", "-c", str(cfg), "--no-progress"], tmp
    return setup


def _factory(name: str):
    def setup(tmp, run):
        return ["evaluate", "-c", str(_python_config(tmp, name)), "--no-progress"], tmp
    return setup


def _factory_subprocess(name: str):
    def setup(tmp, run):
        return [sys.executable, "-m", "robustbench_labelaug", "evaluate", "-c", str(_python_config(tmp, name)),
                "--no-progress"], tmp
    return setup


# ---------------------------------------------------------------------------------------------------------------
# family 2: names that escape their folder
# ---------------------------------------------------------------------------------------------------------------


def _config_name(where: str, name: str):
    """A config whose model name / evaluator id / dataset id is ``name``; output ``tmp/a/out`` (watched: tmp)."""
    def setup(tmp, run):
        cfg = yaml.safe_load(eval_config(tmp, run / "last.pth.tar", tmp / "a" / "out", tiny_eval_dataset(run))
                             .read_text())
        if where == "model":
            cfg["models"][0]["name"] = name
        elif where == "evaluator":
            cfg["evaluators"][0]["id"] = name
        else:
            cfg["datasets"] = {name: cfg["datasets"]["d"]}
            cfg["models"][0]["dataset"] = name
        (tmp / "eval.yaml").write_text(yaml.safe_dump(cfg))
        return ["evaluate", "-c", str(tmp / "eval.yaml"), "--no-progress"], tmp
    return setup


def _experiment(name: str):
    def setup(tmp, run):
        (tmp / "a" / "out").mkdir(parents=True)
        return ["train", "--epochs", "1", "--output", str(tmp / "a" / "out"), "--experiment", name, *FAST], tmp
    return setup


def _export_dataset(dataset: str):
    def setup(tmp, run):
        return ["zoo", "export", "--checkpoint", str(run / "last.pth.tar"), "--name", "mine", "--dataset", dataset,
                "--model-dir", str(tmp / "a" / "models"), "--zoo", str(tmp / "a" / "zoo")], tmp
    return setup


def _benchmark(**kwargs):
    def setup(tmp, run):
        from robustbench_labelaug import benchmark

        model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 10))
        kwargs.setdefault("evaluators", ["clean"])
        return (lambda: benchmark(model, dataset="digits", n_examples=20, to_disk=True, output=tmp / "a" / "out",
                                  **kwargs)), tmp
    return setup


# ---------------------------------------------------------------------------------------------------------------
# family 5: writes that can be lost or raced
# ---------------------------------------------------------------------------------------------------------------


def digits_checkpoints(folder: Path) -> list[Path]:
    """Two rbla train checkpoints of a digits model (digits_adv_plus's recipe) with different weights."""
    from .test_user_zoo import run_checkpoint

    first = run_checkpoint(folder / "one")
    state = torch.load(first, weights_only=False)
    key = next(k for k, v in state["state_dict"].items() if v.is_floating_point() and k.startswith("net."))
    state["state_dict"][key] = state["state_dict"][key] + 1.0
    (folder / "two").mkdir()
    torch.save(state, folder / "two" / "last.pth.tar")
    return [first, folder / "two" / "last.pth.tar"]


def _export_elsewhere(tmp, run):
    """A first export as 'mine' (user zoo tmp/zoo, models tmp/m1); the case exports other weights to the same name
    from another --model-dir, without --overwrite."""
    from robustbench_labelaug.zoo.export import export_checkpoint

    one, two = digits_checkpoints(tmp / "runs")
    export_checkpoint(one, "mine", tmp / "m1", zoo=tmp / "zoo")
    return ["zoo", "export", "--checkpoint", str(two), "--name", "mine", "--model-dir", str(tmp / "m2"), "--zoo",
            str(tmp / "zoo")], tmp


def _compare_locked(tmp, run):
    """Two evaluation folders; the --markdown folder's write lock held by a live process."""
    import socket

    from robustbench_labelaug.fileio import WRITE_LOCK, _process_start

    from .test_compare import A_WRONG, B_WRONG, write_evaluation

    a, b = write_evaluation(tmp, "a", A_WRONG), write_evaluation(tmp, "b", B_WRONG)
    (tmp / "report").mkdir()
    (tmp / "report" / "old.md").write_text("the previous report\n")
    sleeper = subprocess.Popen(["sleep", "120"])
    _compare_locked.sleeper = sleeper
    (tmp / "report" / WRITE_LOCK).write_text(f'{{"pid": {sleeper.pid}, "host": "{socket.gethostname()}", '
                                             f'"start": "{_process_start(sleeper.pid)}", "token": "other"}}')
    return ["compare", str(a), str(b), "--n-boot", "200", "--markdown", str(tmp / "report" / "old.md")], tmp


def _stop_sleeper() -> None:
    sleeper = getattr(_compare_locked, "sleeper", None)
    if sleeper is not None:
        sleeper.kill()
        sleeper.wait()
        _compare_locked.sleeper = None


CASES = [
    # family 1: data files that run code (the marker file would appear in the watched folder)
    Case("cifar-test-batch-payload", _cifar_payload("test_batch"), "holds posix.system, which is not data"),
    Case("cifar-meta-payload", _cifar_payload("batches.meta"), "batches.meta holds posix.system"),
    Case("checkpoint-deflated-export", _bomb_command("export"), "would inflate to 12"),
    Case("checkpoint-deflated-resume", _bomb_command("resume"), "would inflate to 12"),
    Case("checkpoint-deflated-evaluate", _bomb_command("evaluate"), "would inflate to 12"),
    Case("python-factory-raises", _factory("raises"), "net.py:raises() failed (RuntimeError: no weights here)"),
    Case("python-factory-sys-exit", _factory("exits"), "net.py:exits() failed (SystemExit: 3)"),
    pytest.param(Case("python-factory-os-exit", _factory_subprocess("hard_exit"), "hard_exit() failed (os._exit(4) would have ended",
                      how="subprocess"), marks=pytest.mark.slow),
    # family 2: names that escape their folder (output tmp/a/out: '..' would write into tmp/a)
    Case("config-model-dotdot", _config_name("model", ".."), "model name '..' is made of dots alone"),
    Case("config-model-dot", _config_name("model", "."), "model name '.' is made of dots alone"),
    Case("config-evaluator-dotdot", _config_name("evaluator", ".."), "evaluator id '..' is made of dots alone"),
    Case("config-dataset-dotdot", _config_name("dataset", ".."), "dataset id '..' is made of dots alone"),
    Case("config-model-nul", _config_name("model", "a\x00b"), "holds a control character"),
    Case("train-experiment-dot-part", _experiment("a/./b"), "--experiment '.' is made of dots alone"),
    Case("train-experiment-dot", _experiment("."), "would put the run outside --output"),
    Case("train-experiment-5000", _experiment("x" * 5000), "is 5000 characters long (at most 120)"),
    Case("export-dataset-dotdot", _export_dataset(".."), "--dataset '..' is made of dots alone"),
    Case("benchmark-model-name-dotdot", _benchmark(model_name=".."), "model_name '..' is made of dots alone",
         how="api"),
    Case("benchmark-evaluator-id", _benchmark(evaluators=[("clean", {"id": "../x"})]),
         "evaluator id '../x' holds a path separator", how="api"),
    # family 5: writes that can be lost or raced
    Case("export-same-name-other-model-dir", _export_elsewhere, "already exists with other contents: pass "
         "--overwrite"),
    Case("compare-output-locked", _compare_locked, "is writing this compare output"),
]


def check_case(case: Case, tmp_path: Path, run: Path, capsys) -> None:
    """:func:`check_bad_input_case`, and ``how="subprocess"``: the setup's argv run as a new process (for a
    factory that would end the process it runs in); the same checks."""
    if case.how != "subprocess":
        check_bad_input_case(case, tmp_path, run, capsys, cleanup=_stop_sleeper)
        return
    argv, watched = case.setup(tmp_path, run)
    before = snapshot(watched)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(REPO)})
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert case.expect in lines[0], lines[0]
    assert snapshot(watched) == before


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(case: Case, tmp_path, run_dir, capsys):  # noqa: F811
    check_case(case, tmp_path, run_dir, capsys)
    assert not (tmp_path / "marker").exists()


# ---------------------------------------------------------------------------------------------------------------
# family 1: the right answers (relative python: paths, real CIFAR pickles)
# ---------------------------------------------------------------------------------------------------------------


def test_python_path_is_relative_to_the_config_folder(tmp_path, monkeypatch):
    """The config and its net.py in tmp/cfg, run from another working directory: the file is found."""
    from robustbench_labelaug.runner import evaluate_config, load_config

    cfg = _python_config(tmp_path, "build")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    written = evaluate_config(load_config(cfg), leaderboard=False, progress=False)
    assert written[0].is_file() and not (tmp_path / "out" / "rbla.lock").exists()


def test_evaluate_help_says_a_config_is_code(capsys):
    from robustbench_labelaug.cli import main

    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert "A config is code, like a Python file" in " ".join(capsys.readouterr().out.split())


# ---------------------------------------------------------------------------------------------------------------
# family 5: concurrent exports, a kill while a figure is written
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_concurrent_exports_to_one_name_one_wins_each_time(tmp_path):
    """20 rounds of two exports of different weights to one name, started together: exactly one succeeds, the
    other is refused in one line, and the files (checkpoint, sidecar, user zoo entry) are the winner's."""
    from robustbench_labelaug.fileio import file_sha256
    from robustbench_labelaug.zoo.export import export_checkpoint

    sources = digits_checkpoints(tmp_path / "runs")
    for round_ in range(20):
        models, zoo = tmp_path / f"m{round_}", tmp_path / f"zoo{round_}"
        start, outcomes = threading.Barrier(2), [None, None]

        def export(i: int, start=start, outcomes=outcomes, models=models, zoo=zoo) -> None:
            start.wait()
            try:
                outcomes[i] = export_checkpoint(sources[i], "mine", models, zoo=zoo)
            except UserError as exc:
                outcomes[i] = exc

        threads = [threading.Thread(target=export, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [o for o in outcomes if not isinstance(o, UserError)]
        lost = [o for o in outcomes if isinstance(o, UserError)]
        assert len(won) == 1 and len(lost) == 1, outcomes
        assert "\n" not in str(lost[0]) and ("already exists" in str(lost[0]) or "is writing" in str(lost[0]))
        winner = outcomes.index(won[0])
        assert file_sha256(won[0].path) == won[0].sha256
        assert (won[0].path.parent / f"{won[0].path.name}.sha256").read_text().split()[0] == won[0].sha256
        assert str(sources[winner]) in (zoo / "mine.yaml").read_text()
        assert not list(models.rglob("*.lock")) and not list(zoo.glob(".*.lock"))


KILL_DURING_SAVEFIG = textwrap.dedent('''
    import os, signal, sys
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    real = Figure.savefig

    def savefig_then_die(self, fname, *args, **kwargs):  # half a figure written, then SIGKILL
        real(self, fname, *args, **kwargs)
        fname.flush() if hasattr(fname, "flush") else None
        target = fname if isinstance(fname, (str, os.PathLike)) else fname.name
        os.truncate(target, os.path.getsize(target) // 2)
        os.kill(os.getpid(), signal.SIGKILL)

    Figure.savefig = savefig_then_die
    from robustbench_labelaug.cli import main
    sys.exit(main(sys.argv[1:]))
''')


@pytest.mark.slow
def test_a_kill_while_compare_draws_keeps_the_previous_figure(tmp_path):
    from .test_compare import A_WRONG, B_WRONG, write_evaluation

    a, b = write_evaluation(tmp_path, "a", A_WRONG), write_evaluation(tmp_path, "b", B_WRONG)
    png = tmp_path / "figs" / "diff.png"
    png.parent.mkdir()
    png.write_bytes(b"\x89PNG\r\n\x1a\n the previous, complete figure")
    before = png.read_bytes()
    proc = subprocess.run([sys.executable, "-c", KILL_DURING_SAVEFIG, "compare", str(a), str(b), "--n-boot", "200",
                           "--plot", str(png)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(REPO)})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert png.read_bytes() == before  # the truncated figure went to a temp file, never onto diff.png
    from robustbench_labelaug.cli import main

    assert main(["compare", str(a), str(b), "--n-boot", "200", "--plot", str(png)]) == 0  # the next run cleans up
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.read_bytes() != before
    assert sorted(p.name for p in png.parent.iterdir()) == ["diff.png"]


# ---------------------------------------------------------------------------------------------------------------
# family 7: text formats carry raw HTML
# ---------------------------------------------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


def _rendered(markdown_text: str) -> str:
    """The Markdown as MkDocs renders it (Python-Markdown with tables)."""
    markdown = pytest.importorskip("markdown")
    return markdown.markdown(markdown_text, extensions=["tables"])


def _no_raw_tags(html: str) -> None:
    for tag in ("<script", "<img", "<a href=\"javascript"):
        assert tag not in html.lower(), html[:2000]


def test_leaderboard_markdown_escapes_names_and_text(tmp_path):
    import json

    from robustbench_labelaug.leaderboard.cli import render

    from .test_leaderboard import _results, _write

    _write(tmp_path, "safe", "adv", _results(30.0, 60.0, 57.0, None, 10, 2))
    info = json.loads((tmp_path / "model_info" / "safe.json").read_text())
    info.update({"name": f"paper {SCRIPT} | cell", "link": "https://example.org/a) [x](javascript:alert(1)",
                 "architecture": IMG, "venue": "line\nbreak | pipe"})
    info["labelaug"]["class_names"] = [SCRIPT, IMG] + [f"c{i}" for i in range(8)]
    (tmp_path / "model_info" / f"{SCRIPT[:8]}x.json").write_text(json.dumps({**info, "labelaug": {
        **info["labelaug"], "model": f"{IMG}model"}}))
    text = render(tmp_path, quiet=True, title=f"board {SCRIPT}")["markdown"]
    assert "<script" not in text and "<img" not in text
    for line in text.splitlines():
        if line.startswith("|"):  # every table row keeps its column count: no cell was split by a '|' or a newline
            assert line.replace("\\|", "").count("|") == text.splitlines()[2].count("|"), line
    _no_raw_tags(_rendered(text))


def test_compare_markdown_escapes_model_and_class_names(tmp_path):
    import json

    from robustbench_labelaug.compare.core import compare

    from .test_compare import A_WRONG, B_WRONG, K, write_evaluation

    a, b = write_evaluation(tmp_path, "a", A_WRONG), write_evaluation(tmp_path, "b", B_WRONG)
    names = [SCRIPT, IMG, "a|b", "line\nbreak", "[x](javascript:alert(1))"][:K]
    for folder, model in ((a, f"{SCRIPT}A"), (b, IMG)):
        (folder / "model.json").write_text(json.dumps({"model": model, "meta": {"class_names": names}}))
    text = compare(a, b, n_boot=200).markdown()
    assert "<script" not in text and "<img" not in text
    html = _rendered(text)
    _no_raw_tags(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown as text, as the HTML page shows it


def test_md_text_is_one_escaped_line():
    from robustbench_labelaug.mdtext import md_link, md_text

    assert md_text("digits_adv_plus") == "digits_adv_plus"
    assert md_text(f"{SCRIPT}|x\ny") == "&lt;script&gt;alert(1)&lt;/script&gt;\\|x y"
    assert md_text("[a](b) *c* `d` \\") == "\\[a\\](b) \\*c\\* \\`d\\` \\\\"
    assert md_link("paper", "javascript:alert(1)") == "paper"
    assert md_link("paper", "https://x.org/a) <b>") == "[paper](https://x.org/a%29%20%3Cb%3E)"


def test_cifar_batches_read_as_torchvision_reads_them(tmp_path):
    """The restricted reader gives torchvision's own arrays, labels and class names on the fixture files."""
    from torchvision.datasets import CIFAR10

    from robustbench_labelaug.data.cifar import CifarDataset

    write_cifar10(tmp_path)
    for split, train in (("train", True), ("test", False)):
        ours = CifarDataset("cifar10", tmp_path, split, check_md5=False)
        cls = type("Lenient", (CIFAR10,), {"_check_integrity": lambda self: True,
                                           "meta": {**CIFAR10.meta, "md5": None}})
        theirs = cls(str(tmp_path), train=train)
        assert np.array_equal(ours.base.data, theirs.data) and ours.targets == list(theirs.targets)
        assert ours.base.classes == theirs.classes


def test_md_code_keeps_a_code_span_closed():
    from robustbench_labelaug.mdtext import md_code

    assert md_code("pgd40_sound") == "`pgd40_sound`"
    assert md_code("a`b|c\nd") == "`a'b\\|c d`"
