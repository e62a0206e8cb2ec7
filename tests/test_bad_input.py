"""Hostile and careless input (issue 9): one table of bad arguments, files and folders, each answered with exit
code 2, one line naming the problem, and no file changed; then the runs that must not be lost (lock, temp files,
summary rows, the NaN advice, recipe overrides) and the files that must not lie (modes, sidecar order)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from robustbench_labelaug.cli import main as cli_main
from robustbench_labelaug.errors import UserError

REPO = Path(__file__).resolve().parents[1]
FAST = ["--no-progress", "--log-interval", "0", "--seed", "0", "--lr", "0.05"]


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) with the sha256 of its content."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _jpeg_bytes(seed: int, size: int = 16) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def image_folder(root: Path, classes: int = 3, per_class: int = 2, splits=("train", "val")) -> Path:
    """``root/{train,val}/c<i>/<j>.jpg``: small real JPEGs."""
    for split in splits:
        for c in range(classes):
            folder = root / split / f"c{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for j in range(per_class):
                (folder / f"{j}.jpg").write_bytes(_jpeg_bytes(100 * c + j))
    return root


def _can_mount_read_only() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount --bind -o ro / / 2>/dev/null || "
                            "mount --bind -o ro /tmp /tmp"], capture_output=True)
    return probe.returncode == 0


def read_only_command(folder: Path, argv: list[str]) -> list[str]:
    """``argv`` run with ``folder`` read-only: a read-only bind mount in a user namespace when running as root
    (root ignores permission bits), else the folder's write bits removed (restored by the test)."""
    if os.geteuid() == 0:
        if not _can_mount_read_only():
            pytest.skip("running as root without user namespaces: cannot make a folder read-only")
        return ["unshare", "-rm", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(folder), *argv]
    for p in [folder, *folder.rglob("*")]:
        if p.is_dir():
            p.chmod(0o555)
    return argv


def rbla(*args: str) -> list[str]:
    return [sys.executable, "-m", "robustbench_labelaug", *args]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """3 classes x 4 train / 2 val JPEGs: an epoch takes a fraction of a second."""
    root = tmp_path_factory.mktemp("tiny")
    image_folder(root, classes=3, per_class=4, splits=("train",))
    image_folder(root, classes=3, per_class=2, splits=("val",))
    return root


def tiny_flags(data: Path) -> list[str]:
    return ["--dataset", "folder", "--data-dir", str(data), "--input-size", "32", "-b", "4"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_data) -> Path:
    """A finished 2-epoch std run (resnet8_tiny, K=3) on the tiny folder: last = epoch 1, checkpoint-0 = epoch 0."""
    from robustbench_labelaug.train import parse_args, train

    out = tmp_path_factory.mktemp("train")
    train(parse_args(["--adv-mode", "std", "--epochs", "2", "--output", str(out), "--experiment", "run",
                      *tiny_flags(tiny_data), *FAST]))
    return out / "run"


def tiny_eval_dataset(run_dir: Path) -> dict:
    data = yaml.safe_load((run_dir / "args.yaml").read_text())["data_dir"]
    return {"name": "folder", "data_dir": data, "split": "val", "input_size": 32}


def copy_run(run_dir: Path, dst: Path) -> Path:
    shutil.copytree(run_dir, dst)
    return dst


def eval_config(tmp: Path, checkpoint: Path, output: Path, dataset: dict | None = None) -> Path:
    cfg = {"title": "bad", "runtime": {"batch_size": 64, "device": "cpu", "output": str(output), "progress": False,
                                       "plots": False, "model_dir": str(tmp / "models")},
           "datasets": {"d": dataset or {"name": "digits", "split": "test"}},
           "models": [{"name": "mine", "checkpoint": str(checkpoint), "dataset": "d"}],
           "evaluators": [{"name": "clean"}]}
    path = tmp / "eval.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _study(**changes):
    """A study config (tests/test_study.py's tiny one) with ``changes``, run for real: refused before any work."""
    def setup(tmp, run):
        from tests.test_study import TINY

        cfg = {**json.loads(json.dumps(TINY)), "output": str(tmp / "study"), **changes}
        (tmp / "study.yaml").write_text(yaml.safe_dump(cfg))
        return ["study", "-c", str(tmp / "study.yaml"), "--jobs", "1"], tmp
    return setup


# ---------------------------------------------------------------------------------------------------------------
# the table: each case prepares its files in tmp and returns (argv, folder that must stay unchanged)
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    setup: Callable[[Path, Path], tuple]   # (tmp, run_dir) -> (argv, watched folder)
    expect: str                            # text the one error line must contain
    how: str = "cli"                       # cli: in-process rbla; readonly: subprocess with the folder read-only;
                                           # api: setup returns (callable, watched) that must raise UserError


def _train_flag(*flags: str):
    def setup(tmp, run):
        (tmp / "out").mkdir()
        return ["train", "--epochs", "1", "--output", str(tmp / "out"), "--experiment", "x", *FAST, *flags], tmp / "out"
    return setup


def _resume(checkpoint: str, *flags: str):
    def setup(tmp, run):
        copy = copy_run(run, tmp / "run")
        return ["train", "--resume", str(copy / checkpoint), *flags], copy
    return setup


def _initial_checkpoint_other_head(tmp, run):
    """The std run's weights (K=3, M=0) as the starting point of an adv_plus run (K=3, M=1)."""
    (tmp / "out").mkdir()
    data = yaml.safe_load((run / "args.yaml").read_text())["data_dir"]
    return ["train", "--epochs", "1", "--output", str(tmp / "out"), "--experiment", "x", *tiny_flags(Path(data)),
            "--adv-mode", "adv_plus", "--initial-checkpoint", str(run / "last.pth.tar"), *FAST], tmp / "out"


def _bad_checkpoint(content: bytes | None):
    def setup(tmp, run):
        path = tmp / "ckpt" / "last.pth.tar"
        path.parent.mkdir()
        if content is None:  # a pickled object that would run code on load
            torch.save({"state_dict": {}, "payload": Image.new("RGB", (1, 1))}, path)
        else:
            path.write_bytes(content)
        return ["train", "--resume", str(path), *FAST], tmp / "ckpt"
    return setup


def _folder_train(damage: str, *flags: str):
    def setup(tmp, run):
        data = image_folder(tmp / "data")
        if damage == "zero-byte":
            (data / "train" / "c1" / "0.jpg").write_bytes(b"")
        elif damage == "truncated":
            good = (data / "train" / "c1" / "0.jpg").read_bytes()
            (data / "train" / "c1" / "0.jpg").write_bytes(good[: len(good) // 2])
        elif damage == "empty-class":
            (data / "train" / "c3").mkdir()
        (tmp / "out").mkdir()
        return ["train", "--dataset", "folder", "--data-dir", str(data), "--input-size", "32", "--adv-mode", "std",
                "--epochs", "1", "-b", "2", "--output", str(tmp / "out"), "--experiment", "x", *FAST, *flags], tmp
    return setup


def _folder_evaluate(tmp, run):
    data = image_folder(tmp / "data", classes=3, per_class=1, splits=("val",))
    good = (data / "val" / "c2" / "0.jpg").read_bytes()
    (data / "val" / "c2" / "0.jpg").write_bytes(good[: len(good) // 2])
    cfg = eval_config(tmp, run / "last.pth.tar", tmp / "eval",
                      {"name": "folder", "data_dir": str(data), "split": "val", "input_size": 32})
    return ["evaluate", "-c", str(cfg), "--no-progress"], data


def _evaluate_checkpoint_text(tmp, run):
    (tmp / "ckpt").mkdir()
    (tmp / "ckpt" / "model.pth.tar").write_text("model weights, honest\n")
    cfg = eval_config(tmp, tmp / "ckpt" / "model.pth.tar", tmp / "eval", tiny_eval_dataset(run))
    return ["evaluate", "-c", str(cfg), "--no-progress"], tmp


def _evaluate_address_closed(tmp, run):
    """--address where no Ray head listens: one line at once (Ray itself would retry for minutes)."""
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = eval_config(tmp, run / "last.pth.tar", tmp / "eval", tiny_eval_dataset(run))
    return ["evaluate", "-c", str(cfg), "--address", f"127.0.0.1:{port}", "--no-progress"], tmp


def _read_only_train(tmp, run):
    (tmp / "ro").mkdir()
    return rbla("train", "--epochs", "1", "--output", str(tmp / "ro"), "--experiment", "x", *FAST), tmp / "ro"


def _read_only_resume(tmp, run):
    copy = copy_run(run, tmp / "ro" / "run")
    return rbla("train", "--resume", str(copy / "checkpoint-0.pth.tar"), "--no-progress"), tmp / "ro"


def _read_only_evaluate(tmp, run):
    (tmp / "ro").mkdir()
    cfg = eval_config(tmp, run / "last.pth.tar", tmp / "ro" / "eval", tiny_eval_dataset(run))
    return rbla("evaluate", "-c", str(cfg), "--no-progress"), tmp / "ro"


def _read_only_leaderboard(tmp, run):
    from robustbench_labelaug.runner import evaluate_config, load_config

    cfg = eval_config(tmp, run / "last.pth.tar", tmp / "ro", tiny_eval_dataset(run))
    evaluate_config(load_config(cfg), leaderboard=False, progress=False)
    return rbla("leaderboard", str(tmp / "ro")), tmp / "ro"


def _locked_run(tmp, run):
    copy = copy_run(run, tmp / "run")
    from robustbench_labelaug.fileio import _process_start

    sleeper = subprocess.Popen(["sleep", "120"])
    _locked_run.sleeper = sleeper
    (copy / "rbla.lock").write_text(f'{{"pid": {sleeper.pid}, "host": "{socket.gethostname()}", '
                                    f'"start": "{_process_start(sleeper.pid)}", "token": "other"}}')
    return ["train", "--resume", str(copy / "checkpoint-0.pth.tar"), *FAST], copy


def _nan_pixels(tmp, run):
    from robustbench_labelaug import create_classifier
    from robustbench_labelaug.hook import AdvLabelAug

    hook = AdvLabelAug(create_classifier("resnet8_tiny", 10, 1), 10, mode="adv_plus", steps=1)
    x = torch.rand(2, 3, 32, 32)
    x[1, 0, 3, 3] = float("nan")
    return (lambda: hook(x, torch.tensor([1, 2]))), tmp


CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")

CASES = [
    Case("momentum-negative", _train_flag("--momentum", "-1"), "Invalid momentum value"),
    Case("opt-unknown", _train_flag("--opt", "foo"), "--opt foo"),
    Case("sched-unknown", _train_flag("--sched", "foo"), "unknown --sched 'foo'"),
    Case("workers-negative", _train_flag("--workers", "-1"), "--workers must be >= 0"),
    Case("lr-nan", _train_flag("--lr", "nan"), "--lr must be a finite number, got nan"),
    Case("weight-decay-inf", _train_flag("--weight-decay", "inf"), "--weight-decay must be a finite number"),
    pytest.param(Case("device-cuda", _train_flag("--device", "cuda"), "CUDA is not available"), marks=CUDA),
    Case("device-bogus", _train_flag("--device", "gpu0"), "is not a torch device"),
    Case("checkpoint-text", _bad_checkpoint(b"hello, I am a text file\n" * 20), "is not a torch checkpoint"),
    Case("checkpoint-random", _bad_checkpoint(np.random.default_rng(0).bytes(4096)), "is not a torch checkpoint"),
    Case("checkpoint-empty", _bad_checkpoint(b""), "is not a torch checkpoint (an empty file)"),
    Case("checkpoint-pickled-object", _bad_checkpoint(None), "holds objects that weights-only loading refuses"),
    Case("resume-conflicting-eps", _resume("checkpoint-0.pth.tar", "--adv-eps", "0.2"),
         "--adv-eps 0.2 (checkpoint: 0.03) would change the run's recipe"),
    Case("resume-conflicting-mode", _resume("checkpoint-0.pth.tar", "--adv-mode", "adv_plus"),
         "--adv-mode adv_plus (checkpoint: std)"),
    Case("resume-finished-run", _resume("last.pth.tar", "--epochs", "2"), "is a finished run: all 2 epochs"),
    Case("resume-locked-run", _locked_run, "is writing this training run"),
    Case("image-zero-byte", _folder_train("zero-byte"), "0.jpg cannot be read (empty file)"),
    Case("image-truncated-train", _folder_train("truncated", "--workers", "1"), "0.jpg cannot be read ("),
    Case("image-truncated-evaluate", _folder_evaluate, "c2/0.jpg cannot be read ("),
    Case("empty-class-folder", _folder_train("empty-class"), "train/c3 holds no images"),
    Case("nan-pixels", _nan_pixels, "holds NaN or infinite values", how="api"),
    # issue 28: protocols, CFA's begin epoch, FRL's hot start
    Case("la-protocol-authors-with-adv-prob", _train_flag("--adv-prob", "0.5"),
         "--adv-prob belongs to the adversarial protocol"),
    Case("la-protocol-for-trades", _train_flag("--adv-mode", "trades", "--la-protocol", "authors"),
         "--la-protocol authors applies to --adv-mode adv and adv_plus only"),
    Case("cfa-begin-not-below-epochs", _train_flag("--adv-mode", "adv", "--fair", "cfa", "--cfa-begin", "1"),
         "would never calibrate"),
    Case("initial-checkpoint-missing", _train_flag("--initial-checkpoint", "no/such/last.pth.tar"),
         "--initial-checkpoint no/such/last.pth.tar does not exist"),
    Case("initial-checkpoint-other-head", _initial_checkpoint_other_head, "has K=3, M=0 (K+M=3) but this run builds"),
    Case("evaluate-checkpoint-text", _evaluate_checkpoint_text, "is not a torch checkpoint"),
    Case("evaluate-address-closed", _evaluate_address_closed, "no Ray cluster answers at 127.0.0.1:"),
    # issue 28: rbla study configs (the full table of bad configs: tests/test_study.py)
    Case("study-knob-reserved", _study(arms=[{"name": "adv", "method": "digits_adv", "knobs": {"seed": 3}},
                                             {"name": "b", "method": "digits_trades"}]),
         "knob 'seed' is set by the study"),
    Case("study-eps-in-measure", _study(measures=[{"name": "pgd", "settings": {"eps": 0.3}}]),
         "the study sets each cell's eps"),
    pytest.param(Case("read-only-train", _read_only_train, "(read-only file system)", how="readonly"),
                 marks=pytest.mark.slow),
    pytest.param(Case("read-only-resume", _read_only_resume, "(read-only file system)", how="readonly"),
                 marks=pytest.mark.slow),
    pytest.param(Case("read-only-evaluate", _read_only_evaluate, "(read-only file system)", how="readonly"),
                 marks=pytest.mark.slow),
    pytest.param(Case("read-only-leaderboard", _read_only_leaderboard, "(read-only file system)", how="readonly"),
                 marks=pytest.mark.slow),
]


def check_bad_input_case(case: Case, tmp_path, run_dir, capsys, cleanup=lambda: None) -> None:
    """Run one bad-input case (through the API, the CLI, or a subprocess on a read-only tree) and check: exit 2,
    one line containing ``case.expect``, no traceback, and the watched files unchanged. ``cleanup`` runs after
    the case whatever happened (background processes, patches, variables)."""
    prepared, watched = case.setup(tmp_path, run_dir)
    before = snapshot(watched)
    try:
        if case.how == "api":
            with pytest.raises(UserError) as info:
                prepared()
            rc, err = 2, f"error: {info.value}\n"
        elif case.how == "readonly":
            argv = read_only_command(watched, prepared)
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                                  env={**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(REPO)})
            rc, err = proc.returncode, proc.stderr
        else:
            capsys.readouterr()
            rc = cli_main(prepared)
            err = capsys.readouterr().err
    finally:
        cleanup()
        if case.how == "readonly" and os.geteuid() != 0:
            for p in [watched, *watched.rglob("*")]:
                if p.is_dir():
                    p.chmod(0o755)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert rc == 2, (rc, err[-3000:])
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    assert case.expect in lines[0], lines[0]
    assert snapshot(watched) == before


def _stop_sleeper() -> None:
    if getattr(_locked_run, "sleeper", None) is not None:
        _locked_run.sleeper.kill()
        _locked_run.sleeper.wait()
        _locked_run.sleeper = None


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(case: Case, tmp_path, run_dir, capsys):
    check_bad_input_case(case, tmp_path, run_dir, capsys, cleanup=_stop_sleeper)


# ---------------------------------------------------------------------------------------------------------------
# runs that must not be lost
# ---------------------------------------------------------------------------------------------------------------


def test_stale_lock_and_temp_files_of_a_killed_run_are_taken_over(tmp_path, run_dir, capsys):
    from robustbench_labelaug.train import parse_args, read_checkpoint, train

    run = copy_run(run_dir, tmp_path / "run")
    dead = subprocess.Popen(["true"])
    dead.wait()
    (run / "rbla.lock").write_text(f'{{"pid": {dead.pid}, "host": "{socket.gethostname()}", "start": null}}')
    leftovers = [run / ".last.pth.tar.abc123.tmp", run / ".checkpoint-1.pth.tar.0f0f.tmp", run / ".args.yaml.x.tmp"]
    for p in leftovers:
        p.write_bytes(b"half a file")
    unrelated = run / ".notes.txt.tmp"
    unrelated.write_text("not ours")
    (run / "last.pth.tar").unlink()
    shutil.copy(run / "checkpoint-0.pth.tar", run / "last.pth.tar")  # killed before epoch 1's checkpoint
    train(parse_args(["--resume", str(run / "last.pth.tar")]))
    out = capsys.readouterr().out
    assert f"took over the stale lock {run / 'rbla.lock'} of process {dead.pid}" in out
    assert not any(p.exists() for p in leftovers) and unrelated.exists()
    assert not (run / "rbla.lock").exists()
    assert read_checkpoint(run / "last.pth.tar")["epoch"] == 1


def test_an_empty_lock_is_stale_only_when_old(tmp_path):
    from robustbench_labelaug.fileio import RunLock

    (tmp_path / "rbla.lock").write_text("")  # its writer died between creating and filling it
    with pytest.raises(UserError, match="unreadable lock"):
        RunLock(tmp_path).acquire()
    os.utime(tmp_path / "rbla.lock", (1, 1))
    messages = []
    lock = RunLock(tmp_path).acquire(on_stale=messages.append)
    assert lock.held and len(messages) == 1 and str(os.getpid()) in (tmp_path / "rbla.lock").read_text()
    lock.release()
    assert not (tmp_path / "rbla.lock").exists()


def test_summary_rows_are_not_repeated_after_a_kill_between_append_and_checkpoint(tmp_path, run_dir):
    from robustbench_labelaug.train import parse_args, train

    run = copy_run(run_dir, tmp_path / "run")
    summary = (run / "summary.csv").read_text()
    assert [r.split(",")[0] for r in summary.splitlines()[1:]] == ["0", "1"]
    (run / "last.pth.tar").unlink()
    shutil.copy(run / "checkpoint-0.pth.tar", run / "last.pth.tar")  # epoch 1's row is in, its checkpoint not
    train(parse_args(["--resume", str(run / "last.pth.tar")]))
    rows = (run / "summary.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1"], rows
    assert rows[1] == summary.splitlines()[1]


def test_resume_takes_the_recipe_from_the_checkpoint_and_records_an_override(tmp_path, run_dir):
    from robustbench_labelaug.train import parse_args, read_checkpoint, train

    run = copy_run(run_dir, tmp_path / "run")
    saved = yaml.safe_load((run / "args.yaml").read_text())
    args = parse_args(["--resume", str(run / "checkpoint-0.pth.tar")])
    assert (args.adv_mode, args.seed, args.epochs, args.dataset) == ("adv_plus", 42, 10, "digits")  # defaults ...
    train(args)
    written = yaml.safe_load((run / "args.yaml").read_text())
    for key in ("adv_mode", "adv_eps", "seed", "epochs", "lr", "dataset", "data_dir", "no_progress"):  # ... never
        # reach the resumed run
        assert written[key] == saved[key], key
    assert written["recipe_overrides"] == []

    args = parse_args(["--resume", str(run / "last.pth.tar"), "--epochs", "3", "--override-recipe"])
    train(args)
    state = read_checkpoint(run / "last.pth.tar")
    assert state["epoch"] == 2 and state["args"]["epochs"] == 3
    assert state["args"]["recipe_overrides"] == [{"epoch": 2, "epochs": [2, 3]}]
    assert yaml.safe_load((run / "args.yaml").read_text())["recipe_overrides"] == [{"epoch": 2, "epochs": [2, 3]}]


def test_the_nan_advice_works_when_followed_word_for_word(tmp_path, tiny_data, monkeypatch):
    """Divergence that depends on the learning rate: the advice in the message must lower the lr the run uses."""
    from robustbench_labelaug.train import parse_args, read_checkpoint, train
    from robustbench_labelaug.train import run as run_module
    from robustbench_labelaug.train.engine import NonFiniteLoss

    real = run_module.train_one_epoch
    seen_lr = []

    def diverges_above_lr_02(epoch, model, loader, optimizer, *args, **kwargs):
        seen_lr.append(optimizer.param_groups[0]["lr"])
        if epoch == 1 and optimizer.param_groups[0]["lr"] > 0.02:
            raise NonFiniteLoss("loss became nan at epoch 1, step 0")
        return real(epoch, model, loader, optimizer, *args, **kwargs)

    monkeypatch.setattr(run_module, "train_one_epoch", diverges_above_lr_02)
    args = parse_args(["--adv-mode", "std", "--epochs", "2", "--sched", "step", "--lr", "0.1", "--output",
                       str(tmp_path), "--experiment", "nan", "--no-progress", "--log-interval", "0",
                       *tiny_flags(tiny_data)])
    with pytest.raises(UserError) as info:
        train(args)
    message = str(info.value)
    assert "\n" not in message
    advice = message.split("continue it with a lower learning rate: ", 1)[1]
    words = shlex.split(advice)
    assert words[:2] == ["rbla", "train"]
    train(parse_args(words[2:]))
    state = read_checkpoint(tmp_path / "nan" / "last.pth.tar")
    assert state["epoch"] == 1 and seen_lr[-1] == pytest.approx(0.01)
    assert state["args"]["recipe_overrides"] == [{"epoch": 1, "lr": [0.1, 0.01]}]


def test_skipped_images_are_counted_on_the_dataset(tmp_path):
    from robustbench_labelaug.data import create_dataset

    data = image_folder(tmp_path / "data", classes=3, per_class=3, splits=("val",))
    (data / "val" / "c0" / "1.jpg").write_bytes(b"")
    good = (data / "val" / "c2" / "2.jpg").read_bytes()
    (data / "val" / "c2" / "2.jpg").write_bytes(good[:40])
    ds = create_dataset("folder", data, "val", input_size=32, bad_images="skip")
    assert ds.num_skipped == 2 and ds.skipped_files == ["c0/1.jpg", "c2/2.jpg"]
    assert len(ds) == 7 and sorted(ds.targets) == [0, 0, 1, 1, 1, 2, 2]
    assert all(torch.isfinite(ds[i][0]).all() for i in range(len(ds)))
    with pytest.raises(UserError, match="1.jpg cannot be read"):
        create_dataset("folder", data, "val", input_size=32)


# ---------------------------------------------------------------------------------------------------------------
# files that must not lie
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_atomic_files_respect_the_umask(tmp_path, umask):
    from robustbench_labelaug.fileio import atomic_torch_save, atomic_write_json
    from robustbench_labelaug.train.checkpoint import _link_or_copy

    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "a.json", {"x": 1})
        atomic_torch_save({"x": torch.zeros(1)}, tmp_path / "b.pt")
        plain = tmp_path / "plain"
        plain.write_text("x")
    finally:
        os.umask(old)
    want = plain.stat().st_mode & 0o777
    assert want == 0o666 & ~umask
    for name in ("a.json", "b.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == want, name
    _link_or_copy(str(tmp_path / "b.pt"), str(tmp_path / "c.pt"))
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == want


def test_link_or_copy_uses_a_unique_temp_and_copies_when_links_fail(tmp_path, monkeypatch):
    from robustbench_labelaug.train import checkpoint as ck

    src = tmp_path / "last.pth.tar"
    src.write_bytes(b"weights")
    (tmp_path / "checkpoint-3.pth.tar.tmp").write_text("someone else's file")  # the old fixed temp name
    fsynced = []
    monkeypatch.setattr(ck.os, "link", lambda a, b: (_ for _ in ()).throw(OSError("no hard links here")))
    real_fsync = os.fsync
    monkeypatch.setattr(ck.os, "fsync", lambda fd: (fsynced.append(fd), real_fsync(fd))[1])
    ck._link_or_copy(str(src), str(tmp_path / "checkpoint-3.pth.tar"))
    assert (tmp_path / "checkpoint-3.pth.tar").read_bytes() == b"weights"
    assert (tmp_path / "checkpoint-3.pth.tar.tmp").read_text() == "someone else's file"
    assert fsynced, "the copy was not fsynced"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-3.pth.tar", "checkpoint-3.pth.tar.tmp",
                                                         "last.pth.tar"]


def test_zoo_export_never_leaves_a_checkpoint_that_loads_unchecked(tmp_path, run_dir, monkeypatch):
    from robustbench_labelaug.zoo import export as export_module
    from robustbench_labelaug.zoo.loading import read_sidecar, verify_sha256

    real = export_module.atomic_write_bytes

    def killed_at_write(n):
        calls = []

        def write(path, data):
            calls.append(path)
            if len(calls) == n:
                raise KeyboardInterrupt  # the process dies before this write
            real(path, data)
        return write

    # no user zoo (as in a source checkout): this is about the checkpoint and its sidecar, and the 3-class run
    # exported as 'digits' would make no valid user entry
    monkeypatch.setattr(export_module, "export_zoo_dir", lambda zoo=None: None)
    models = tmp_path / "models"
    first = export_module.export_checkpoint(run_dir / "checkpoint-0.pth.tar", "mine", models, dataset="digits")
    for n in (1, 2):  # a kill before the first or the second write of a replacing export
        monkeypatch.setattr(export_module, "atomic_write_bytes", killed_at_write(n))
        with pytest.raises(KeyboardInterrupt):
            export_module.export_checkpoint(run_dir / "last.pth.tar", "mine", models, dataset="digits",
                                            overwrite=True)
        side = read_sidecar(first.path)
        assert side is not None, "checkpoint left without a sidecar"
        if side != first.sha256:  # the new sidecar is in place but the old weights are: refused, never unchecked
            with pytest.raises(UserError, match="has sha256"):
                verify_sha256(first.path, side, "sidecar")
    monkeypatch.setattr(export_module, "atomic_write_bytes", killed_at_write(2))
    with pytest.raises(KeyboardInterrupt):  # a fresh export killed between its writes: no checkpoint at all
        export_module.export_checkpoint(run_dir / "last.pth.tar", "other", models, dataset="digits")
    assert not (models / "digits" / "Linf" / "other.pt").exists()
