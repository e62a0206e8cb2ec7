"""Hostile and careless input, round two (issue 22): the table of tests/test_bad_input.py (exit 2, one line naming
the problem, watched folder unchanged) for the new cases, then the cases whose right answer is a correct result
(recompute on changed data, convert image modes, strip ``module.``) or nothing lost."""

from __future__ import annotations

import errno
import io
import json
import os
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from robustbench_labelaug.cli import main as cli_main
from robustbench_labelaug.errors import UserError

from .test_bad_input import (
    FAST,
    Case,
    check_bad_input_case,
    eval_config,
    image_folder,
    tiny_data,  # noqa: F401  (fixture)
    tiny_eval_dataset,
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_data) -> Path:  # noqa: F811
    """A finished 1-epoch std run (resnet8_tiny, K=3, 32 px) on the tiny folder (records class names and size)."""
    from robustbench_labelaug.train import parse_args, train

    out = tmp_path_factory.mktemp("train2")
    train(parse_args(["--adv-mode", "std", "--epochs", "1", "--output", str(out), "--experiment", "run",
                      "--dataset", "folder", "--data-dir", str(tiny_data), "--input-size", "32", "-b", "4", *FAST]))
    return out / "run"


def _evaluate(tmp, run, dataset=None, checkpoint=None, output=None, **runtime):
    cfg = eval_config(tmp, checkpoint or run / "last.pth.tar", output or tmp / "eval",
                      dataset or tiny_eval_dataset(run))
    if runtime:
        raw = yaml.safe_load(cfg.read_text())
        raw["runtime"].update(runtime)
        cfg.write_text(yaml.safe_dump(raw))
    return cfg


def _cli(*argv):
    return list(argv)


# -- the setups: (tmp, run) -> (argv | callable, watched folder) ----------------------------------------------------


def _yaml_duplicate(where: str):
    def setup(tmp, run):
        cfg = _evaluate(tmp, run)
        text = cfg.read_text()
        if where == "top":
            text += "runtime:\n  batch_size: 7\n"
        else:  # a second key inside a nested mapping
            text = text.replace("  batch_size: 64\n", "  batch_size: 64\n  batch_size: 8\n")
        cfg.write_text(text)
        return ["evaluate", "-c", str(cfg)], tmp
    return setup


def _yaml_alias_bomb(tmp, run):
    cfg = _evaluate(tmp, run)
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]'] + [
        f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    text = cfg.read_text().replace("- name: clean", "- name: clean\n  settings:\n    " + "\n    ".join(lines))
    cfg.write_text(text)
    return ["evaluate", "-c", str(cfg)], tmp


def _yaml_tab(tmp, run):
    cfg = _evaluate(tmp, run)
    cfg.write_text(cfg.read_text().replace("  batch_size", "\tbatch_size"))
    return ["evaluate", "-c", str(cfg)], tmp


def _train_yaml_duplicate(tmp, run):
    (tmp / "flags.yaml").write_text("epochs: 1\nlr: 0.1\nepochs: 3\n")
    return ["train", "-c", str(tmp / "flags.yaml"), "--output", str(tmp / "out"), *FAST], tmp


def _zoo_entry_duplicate(tmp, run):
    from robustbench_labelaug.zoo.entries import load_entry_file

    (tmp / "entry.yaml").write_text("name: x\ndataset: digits\ndataset: cifar10\n")
    return (lambda: load_entry_file(tmp / "entry.yaml")), tmp


def _env_empty(tmp, run, monkeypatch=None):
    os.environ["RBLA_TEST_EMPTY_VAR"] = ""
    cfg = _evaluate(tmp, run, dataset={"name": "folder", "data_dir": "${RBLA_TEST_EMPTY_VAR}/data", "split": "val",
                                       "input_size": 32})
    return ["evaluate", "-c", str(cfg)], tmp


def _nan_weight(tmp, run):
    state = torch.load(run / "last.pth.tar", weights_only=False)
    key = next(k for k, v in state["state_dict"].items() if k.startswith("net.") and v.is_floating_point())
    state["state_dict"][key] = state["state_dict"][key].clone()
    state["state_dict"][key].view(-1)[0] = float("nan")
    (tmp / "ckpt").mkdir()
    torch.save(state, tmp / "ckpt" / "nan.pth.tar")
    cfg = _evaluate(tmp, run, checkpoint=tmp / "ckpt" / "nan.pth.tar")
    return ["evaluate", "-c", str(cfg), "--no-progress"], tmp


def _other_classes(tmp, run):
    data = tmp / "data"
    image_folder(data, classes=3, per_class=1, splits=("val",))
    os.rename(data / "val" / "c0", data / "val" / "zebra")
    cfg = _evaluate(tmp, run, dataset={"name": "folder", "data_dir": str(data), "split": "val", "input_size": 32})
    return ["evaluate", "-c", str(cfg), "--no-progress"], tmp


def _default_size(tmp, run):
    data = yaml.safe_load((run / "args.yaml").read_text())["data_dir"]
    cfg = _evaluate(tmp, run, dataset={"name": "folder", "data_dir": data, "split": "val"})  # no input_size
    return ["evaluate", "-c", str(cfg), "--no-progress"], tmp


def _input_size(value):
    def setup(tmp, run):
        cfg = _evaluate(tmp, run, dataset={**tiny_eval_dataset(run), "input_size": value})
        return ["evaluate", "-c", str(cfg), "--no-progress"], tmp
    return setup


def _train_input_size(tmp, run):
    (tmp / "out").mkdir()
    return ["train", "--input-size", "0", "--epochs", "1", "--output", str(tmp / "out"), *FAST], tmp / "out"


def _experiment_escape(tmp, run):
    (tmp / "out").mkdir()
    return ["train", "--epochs", "1", "--output", str(tmp / "out"), "--experiment", "../../escape", *FAST], tmp


def _output_is_file(command):
    def setup(tmp, run):
        (tmp / "taken").write_text("a file, not a folder\n")
        if command == "evaluate":
            return ["evaluate", "-c", str(_evaluate(tmp, run)), "--output", str(tmp / "taken"), "--no-progress"], tmp
        if command == "runtime.output":
            return ["evaluate", "-c", str(_evaluate(tmp, run, output=tmp / "taken")), "--no-progress"], tmp
        if command == "demo":
            return ["demo", "--output", str(tmp / "taken"), "--fast", "--model-dir", str(tmp / "m"), "--no-progress"], tmp
        return ["train", "--epochs", "1", "--output", str(tmp / "taken"), *FAST], tmp
    return setup


def _html_folder(tmp, run):
    from robustbench_labelaug.runner import evaluate_config, load_config

    evaluate_config(load_config(_evaluate(tmp, run, output=tmp / "lb")), leaderboard=False, progress=False)
    (tmp / "page").mkdir()
    return ["leaderboard", str(tmp / "lb"), "--html", str(tmp / "page")], tmp


def _device(value):
    def setup(tmp, run):
        return ["evaluate", "-c", str(_evaluate(tmp, run)), "--device", value, "--no-progress"], tmp
    return setup


def _junk_json(tmp, run):
    from robustbench_labelaug.runner import evaluate_config, load_config

    evaluate_config(load_config(_evaluate(tmp, run, output=tmp / "lb")), leaderboard=False, progress=False)
    (tmp / "lb" / "model_info" / "notes.json").write_bytes(bytes(range(256)) * 4)
    return ["leaderboard", str(tmp / "lb")], tmp


def _nan_headline(tmp, run):
    from robustbench_labelaug.runner import evaluate_config, load_config

    evaluate_config(load_config(_evaluate(tmp, run, output=tmp / "lb")), leaderboard=False, progress=False)
    path = tmp / "lb" / "model_info" / "mine.json"
    info = json.loads(path.read_text())
    for h in info["labelaug"]["measured"]["headlines"]:
        h["value"] = float("nan")
    path.write_text(json.dumps(info))
    return ["leaderboard", str(tmp / "lb"), "--sort", "clean"], tmp


def _wrong_kind(what):
    def setup(tmp, run):
        (tmp / "folder").mkdir()
        if what == "config":
            return ["evaluate", "-c", str(tmp / "folder")], tmp
        if what == "checkpoint":
            return ["evaluate", "-c", str(_evaluate(tmp, run, checkpoint=tmp / "folder")), "--no-progress"], tmp
        if what == "resume":
            return ["train", "--resume", str(tmp / "folder"), *FAST], tmp
        (tmp / "file").write_text("x")
        cfg = _evaluate(tmp, run, dataset={"name": "folder", "data_dir": str(tmp / "file"), "split": "val",
                                           "input_size": 32})
        return ["evaluate", "-c", str(cfg), "--no-progress"], tmp
    return setup


def _missing_data_dir(tmp, run):
    cfg = _evaluate(tmp, run, dataset={"name": "folder", "data_dir": str(tmp / "nowhere"), "split": "val",
                                       "input_size": 32})
    return ["evaluate", "-c", str(cfg), "--no-progress"], tmp


def _bad_image_evaluate(tmp, run):
    data = image_folder(tmp / "data", classes=3, per_class=1, splits=("val",))
    good = (data / "val" / "c1" / "0.jpg").read_bytes()
    (data / "val" / "c1" / "0.jpg").write_bytes(good[:60])
    cfg = _evaluate(tmp, run, dataset={"name": "folder", "data_dir": str(data), "split": "val", "input_size": 32})
    return ["evaluate", "-c", str(cfg), "--no-progress"], data


def _cifar_missing(tmp, run):
    folder = tmp / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in ("test_batch", "batches.meta"):
        (folder / name).write_bytes(b"x")
    return ["train", "--dataset", "cifar10", "--data-dir", str(tmp / "cifar"), "--epochs", "1", "--output",
            str(tmp / "out"), *FAST], tmp


def _resume_export(suffix):
    def setup(tmp, run):
        from robustbench_labelaug.zoo.export import export_checkpoint, write_timm_checkpoint

        exported = export_checkpoint(run / "last.pth.tar", "mine", tmp / "models", dataset="folder")
        path = exported.path
        if suffix == ".timm.pth":
            path = write_timm_checkpoint(exported.path)
        return ["train", "--resume", str(path), *FAST], tmp
    return setup


def _symlink_loop(tmp, run):
    data = image_folder(tmp / "data", classes=3, per_class=1, splits=("val",))
    os.symlink("..", data / "val" / "c0" / "again")
    cfg = _evaluate(tmp, run, dataset={"name": "folder", "data_dir": str(data), "split": "val", "input_size": 32})
    return ["evaluate", "-c", str(cfg), "--no-progress"], tmp


def _image_mode_refused(tmp, run):
    from robustbench_labelaug.data.folder import read_image_checked

    Image.fromarray(np.full((16, 16), 300.0, dtype=np.float32), mode="F").save(tmp / "x.tif")
    return (lambda: read_image_checked(tmp / "x.tif")), tmp


def _locked_evaluate(tmp, run):
    from robustbench_labelaug.fileio import _process_start

    (tmp / "eval").mkdir()
    sleeper = subprocess.Popen(["sleep", "120"])
    _locked_evaluate.sleeper = sleeper
    (tmp / "eval" / "rbla.lock").write_text(f'{{"pid": {sleeper.pid}, "host": "{socket.gethostname()}", '
                                            f'"start": "{_process_start(sleeper.pid)}", "token": "other"}}')
    return ["evaluate", "-c", str(_evaluate(tmp, run)), "--no-progress"], tmp


def _enospc(tmp, run):
    """A full disk while evaluate writes its first file (simulated at the write): one line naming the file."""
    import robustbench_labelaug.fileio as fileio

    real = os.fdopen

    class Full(io.RawIOBase):
        def __init__(self, fd, *a, **k):
            self.f = real(fd, *a, **k)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def fileno(self):
            return self.f.fileno()

    _enospc.patch = (fileio.os, "fdopen", real)
    fileio.os.fdopen = Full
    return ["evaluate", "-c", str(_evaluate(tmp, run)), "--no-progress"], tmp


# -- the hook, at the door ---------------------------------------------------------------------------------------


def _hook(mode="adv_plus", k=3, m=1, model_m=None, protocol=None):
    from robustbench_labelaug import create_classifier
    from robustbench_labelaug.hook import AdvLabelAug

    net = create_classifier("resnet8_tiny", k, m if model_m is None else model_m)
    return AdvLabelAug(net, k, mode=mode, steps=1, num_ops=m, protocol=protocol)


def _hook_call(x, y, mode="adv_plus", **kw):
    def setup(tmp, run):
        hook = _hook(mode, **kw)
        return (lambda: hook(x() if callable(x) else x, y() if callable(y) else y)), tmp
    return setup


X = torch.rand(2, 3, 32, 32)
Y = torch.tensor([0, 2])

CASES = [
    # silent wrong results that are now refused
    Case("yaml-duplicate-top-level", _yaml_duplicate("top"), "the key 'runtime' appears twice in one mapping (lines"),
    Case("yaml-duplicate-nested", _yaml_duplicate("nested"), "the key 'batch_size' appears twice in one mapping"),
    Case("yaml-duplicate-train-flags", _train_yaml_duplicate, "the key 'epochs' appears twice in one mapping (lines 1 "
         "and 3)"),
    Case("yaml-duplicate-zoo-entry", _zoo_entry_duplicate, "the key 'dataset' appears twice", how="api"),
    Case("non-finite-weight", _nan_weight, "has NaN or infinite values in parameter net."),
    Case("other-class-names", _other_classes, "was trained on the classes [c0, c1, c2] but dataset 'd' has [c1, c2, "
         "zebra]"),
    Case("nan-headline", _nan_headline, "must be a finite number, got nan"),
    Case("std-float-labels", _hook_call(X, torch.tensor([1.7, 2.2]), mode="std", m=0), "labels are float32",
         how="api"),
    Case("default-input-size", _default_size, "was trained at input size 32 (its checkpoint records it) but dataset "
         "'d' would evaluate at its default 224: set input_size: 32"),
    Case("one-channel-images", lambda tmp, run: (lambda: _one_channel_run(), tmp), "the images have 1 channel(s)",
         how="api"),
    Case("symlink-loop", _symlink_loop, "a folder that contains it (a loop): remove the link"),
    Case("image-mode-unreadable-range", _image_mode_refused, "is a float image with values in [300, 300]",
         how="api"),
    # resource exhaustion
    Case("yaml-alias-bomb", _yaml_alias_bomb, "values through its aliases (*name)"),
    Case("experiment-escapes-output", _experiment_escape, "would put the run outside --output"),
    # tracebacks that are one line now
    Case("evaluate-output-is-file", _output_is_file("evaluate"), "taken is a file, not a folder"),
    Case("runtime-output-is-file", _output_is_file("runtime.output"), "taken is a file, not a folder"),
    Case("train-output-is-file", _output_is_file("train"), "taken is a file, not a folder"),
    Case("demo-output-is-file", _output_is_file("demo"), "taken is a file, not a folder"),
    Case("leaderboard-html-is-folder", _html_folder, "is a folder: pass the HTML file to write"),
    Case("evaluate-device-tpu", _device("tpu"), "--device 'tpu' is not known: use auto, cpu, cuda or cuda:N"),
    Case("evaluate-device-cuda7x", _device("cuda:7x"), "--device 'cuda:7x' is not known"),
    Case("leaderboard-binary-json", _junk_json, "notes.json is not a JSON text file"),
    Case("input-size-0", _input_size(0), "input_size must be an integer from 8 to 4096 (pixels per side), got 0"),
    Case("input-size-absurd", _input_size(10**6), "input_size must be an integer from 8 to 4096"),
    Case("train-input-size-0", _train_input_size, "--input-size must be an integer from 8 to 4096"),
    Case("enospc-evaluate", _enospc, "no space left on the device writing "),
    Case("hook-label-out-of-range", _hook_call(X, torch.tensor([0, 5])), "labels must lie in [0, 3) (K=3), got 5",
         how="api"),
    Case("hook-label-negative", _hook_call(X, torch.tensor([-1, 0])), "got -1", how="api"),
    Case("hook-label-bool", _hook_call(X, torch.tensor([True, False])), "labels are bool", how="api"),
    Case("hook-label-float-adv", _hook_call(X, torch.tensor([0.0, 1.0])), "labels are float32", how="api"),
    Case("hook-label-count", _hook_call(X, torch.tensor([0, 1, 2])), "got 2 images but 3 labels", how="api"),
    Case("hook-empty-batch", _hook_call(torch.rand(0, 3, 32, 32), torch.zeros(0, dtype=torch.long)),
         "empty batch (0 images)", how="api"),
    Case("hook-uint8-images", _hook_call(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), Y), "images are uint8",
         how="api"),
    Case("hook-not-a-tensor", _hook_call([[0.0]], Y), "input must be a torch tensor, got list", how="api"),
    Case("hook-num-ops-vs-head", _hook_call(X, Y, m=5, model_m=1), "needs K+M=8", how="api"),
    Case("hook-std-wide-head", _hook_call(X, Y, mode="std", m=0, model_m=2), "the model outputs 5 logits but mode "
         "'std'", how="api"),
    # messages that misled
    Case("yaml-tab", _yaml_tab, "column 1: found character '\\t' that cannot start any "
         "token (YAML indents with spaces, not tabs)"),
    Case("env-var-empty", _env_empty, "uses the environment variable RBLA_TEST_EMPTY_VAR, which is set but empty"),
    Case("evaluate-data-dir-advice", _missing_data_dir, "or data_dir under the dataset in an rbla evaluate config"),
    Case("evaluate-bad-image-advice", _bad_image_evaluate, "bad_images: skip under the dataset in an rbla evaluate "
         "config"),
    Case("config-is-folder", _wrong_kind("config"), "folder is a folder: pass -c with a YAML file"),
    Case("checkpoint-is-folder", _wrong_kind("checkpoint"), "folder is a folder, not a file"),
    Case("resume-is-folder", _wrong_kind("resume"), "folder is a folder, not a file"),
    Case("data-dir-is-file", _wrong_kind("data"), "file is a file, not a folder"),
    Case("cifar-missing-train-batches", _cifar_missing, "torchvision's integrity check needs data_batch_1"),
    Case("resume-zoo-export", _resume_export(".pt"), "is an exported model (rbla zoo export)"),
    Case("resume-timm-export", _resume_export(".timm.pth"), "is a timm export"),
    Case("evaluate-locked-output", _locked_evaluate, "is writing this evaluation output"),
]


def _one_channel_run():
    from robustbench_labelaug import create_classifier
    from robustbench_labelaug.evaluation import EvalContext, create_evaluator

    class Gray(torch.utils.data.Dataset):
        targets = [0, 1, 2]

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return torch.rand(1, 32, 32), i

    model = create_classifier("resnet8_tiny", 3, 0).eval()
    create_evaluator("clean").run(model, Gray(), EvalContext(num_classes=3, progress=False))


def _cleanup() -> None:
    os.environ.pop("RBLA_TEST_EMPTY_VAR", None)
    for setup in (_locked_evaluate, _enospc):
        if getattr(setup, "sleeper", None) is not None:
            setup.sleeper.kill()
            setup.sleeper.wait()
            setup.sleeper = None
        if getattr(setup, "patch", None) is not None:
            obj, name, value = setup.patch
            setattr(obj, name, value)
            setup.patch = None


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_data_and_cache_input_exits_2_with_one_line_and_changes_nothing(case: Case, tmp_path, run_dir, capsys):
    check_bad_input_case(case, tmp_path, run_dir, capsys, cleanup=_cleanup)


# ---------------------------------------------------------------------------------------------------------------
# the right answer is a correct result
# ---------------------------------------------------------------------------------------------------------------


def _clean_n(out: Path) -> tuple[int, list]:
    stored = json.loads((out / "mine" / "results" / "clean.json").read_text())
    return stored["result"]["num_examples"], stored["result"]["classwise"]["clean"]["error"]


def test_changed_data_is_recomputed_with_one_line(tmp_path, run_dir, capsys):
    data = image_folder(tmp_path / "data", classes=3, per_class=2, splits=("val",))
    cfg = _evaluate(tmp_path, run_dir, dataset={"name": "folder", "data_dir": str(data), "split": "val",
                                                "input_size": 32})
    assert cli_main(["evaluate", "-c", str(cfg), "--no-progress"]) == 0
    assert _clean_n(tmp_path / "eval")[0] == 6
    capsys.readouterr()
    assert cli_main(["evaluate", "-c", str(cfg), "--no-progress"]) == 0  # unchanged data: reused, no line
    assert "recomputing" not in capsys.readouterr().out
    for c in range(3):
        (data / "val" / f"c{c}" / "9.jpg").write_bytes((data / "val" / "c0" / "0.jpg").read_bytes())
    assert cli_main(["evaluate", "-c", str(cfg), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "the data of dataset 'd' changed since" in out and "recomputing it" in out
    n, _ = _clean_n(tmp_path / "eval")
    fresh = _evaluate(tmp_path / "x", run_dir, dataset={"name": "folder", "data_dir": str(data), "split": "val",
                                                        "input_size": 32}) if (tmp_path / "x").mkdir() is None else 0
    assert cli_main(["evaluate", "-c", str(fresh), "--no-progress"]) == 0
    assert (n, _clean_n(tmp_path / "eval")[1]) == _clean_n(tmp_path / "x" / "eval") and n == 9


def test_old_results_without_a_data_fingerprint_are_recomputed(tmp_path, run_dir, capsys):
    cfg = _evaluate(tmp_path, run_dir)
    assert cli_main(["evaluate", "-c", str(cfg), "--no-progress"]) == 0
    path = tmp_path / "eval" / "mine" / "results" / "clean.json"
    stored = json.loads(path.read_text())
    del stored["data_fingerprint"]  # as written before issue 22
    path.write_text(json.dumps(stored))
    capsys.readouterr()
    assert cli_main(["evaluate", "-c", str(cfg), "--no-progress"]) == 0
    assert "predates data fingerprints): recomputing it" in capsys.readouterr().out
    assert "data_fingerprint" in json.loads(path.read_text())


def test_content_fingerprint_sees_a_same_size_same_time_edit(tmp_path):
    from robustbench_labelaug.data.fingerprint import folder_fingerprint

    (tmp_path / "a.bin").write_bytes(b"12345678")
    st = os.stat(tmp_path / "a.bin")
    stat_fp, content_fp = folder_fingerprint(tmp_path), folder_fingerprint(tmp_path, content=True)
    (tmp_path / "a.bin").write_bytes(b"87654321")
    os.utime(tmp_path / "a.bin", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert folder_fingerprint(tmp_path) == stat_fp  # same size and time: only the content hash tells
    assert folder_fingerprint(tmp_path, content=True) != content_fp


def test_array_file_headers_are_in_the_fingerprint(tmp_path):
    from robustbench_labelaug.data.fingerprint import folder_fingerprint

    np.save(tmp_path / "x.npy", np.zeros((4, 2), dtype=np.uint8))
    st = os.stat(tmp_path / "x.npy")
    before = folder_fingerprint(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((2, 4), dtype=np.uint8))  # same size, another shape
    os.utime(tmp_path / "x.npy", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert folder_fingerprint(tmp_path) != before


@pytest.mark.parametrize("content", ["null", "[]", "{\"fingerprint\": 1", "\x00\x01binary"])
def test_a_damaged_result_json_is_recomputed(tmp_path, run_dir, capsys, content):
    cfg = _evaluate(tmp_path, run_dir)
    assert cli_main(["evaluate", "-c", str(cfg), "--no-progress"]) == 0
    path = tmp_path / "eval" / "mine" / "results" / "clean.json"
    good = json.loads(path.read_text())["result"]["metrics"]
    path.write_text(content)
    capsys.readouterr()
    assert cli_main(["evaluate", "-c", str(cfg), "--no-progress"]) == 0
    assert f"{path} is damaged (not a result object): recomputing it" in capsys.readouterr().out
    assert json.loads(path.read_text())["result"]["metrics"] == good


@pytest.mark.parametrize("damage", ["truncated", "inconsistent"])
def test_a_damaged_cache_npz_is_recomputed(tmp_path, run_dir, capsys, damage):
    cfg = _evaluate(tmp_path, run_dir)
    assert cli_main(["evaluate", "-c", str(cfg), "--no-progress"]) == 0
    good = json.loads((tmp_path / "eval" / "mine" / "results" / "clean.json").read_text())["result"]["metrics"]
    (tmp_path / "eval" / "mine" / "results" / "clean.json").unlink()
    npz = next((tmp_path / "eval" / "mine" / "cache").rglob("*.npz"))
    if damage == "truncated":
        npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    else:
        with np.load(npz) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["y_pred"] = arrays["y_pred"][:-1]
        np.savez(npz.with_suffix(""), **arrays)
    capsys.readouterr()
    assert cli_main(["evaluate", "-c", str(cfg), "--no-progress"]) == 0
    assert f"cache file {npz} is damaged" in capsys.readouterr().out
    assert json.loads((tmp_path / "eval" / "mine" / "results" / "clean.json").read_text())["result"]["metrics"] \
        == good


def test_dataparallel_prefixes_are_stripped(tmp_path, run_dir):
    state = torch.load(run_dir / "last.pth.tar", weights_only=False)
    state["state_dict"] = {f"module.{k}": v for k, v in state["state_dict"].items()}
    torch.save(state, tmp_path / "dp.pth.tar")
    plain = _evaluate(tmp_path / "a", run_dir) if (tmp_path / "a").mkdir() is None else None
    dp = _evaluate(tmp_path, run_dir, checkpoint=tmp_path / "dp.pth.tar")
    assert cli_main(["evaluate", "-c", str(plain), "--no-progress"]) == 0
    assert cli_main(["evaluate", "-c", str(dp), "--no-progress"]) == 0
    assert _clean_n(tmp_path / "a" / "eval") == _clean_n(tmp_path / "eval")


def test_class_names_are_recorded_in_checkpoints_and_exports(tmp_path, run_dir):
    from robustbench_labelaug.zoo.export import export_checkpoint, write_timm_checkpoint

    assert torch.load(run_dir / "last.pth.tar", weights_only=False)["class_names"] == ["c0", "c1", "c2"]
    exported = export_checkpoint(run_dir / "last.pth.tar", "mine", tmp_path / "models", dataset="folder")
    assert torch.load(exported.path, weights_only=True)["class_names"] == ["c0", "c1", "c2"]
    from robustbench_labelaug.runner.guards import recorded_class_names

    assert recorded_class_names(exported.path) == ["c0", "c1", "c2"]  # what a zoo model is compared by
    timm_path = write_timm_checkpoint(exported.path)
    assert torch.load(timm_path, weights_only=True)["class_names"] == ["c0", "c1", "c2"]


def test_symlinks_to_one_file_count_it_once(tmp_path):
    from robustbench_labelaug.data import create_dataset

    data = image_folder(tmp_path / "data", classes=3, per_class=2, splits=("val",))
    os.symlink(data / "val" / "c0" / "0.jpg", data / "val" / "c0" / "2.jpg")
    os.symlink(data / "val" / "c1", data / "val" / "c2" / "more")  # a link to a sibling folder, not a loop
    ds = create_dataset("folder", data, "val", input_size=32)
    assert len(ds) == 6 and sorted(ds.targets) == [0, 0, 1, 1, 2, 2]


# the modes PIL can write, with the format that stores each, and the gray/RGB value a pixel of 200 must become
def _mode_images():
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    base = Image.fromarray(rgb)
    gray = Image.fromarray(np.full((4, 4), 200, dtype=np.uint8))
    out = [("1", "PNG", base.convert("1"), None), ("L", "PNG", gray, (200, 200, 200)),
           ("P", "PNG", base.convert("P"), (204, 102, 51)),  # the web palette's nearest colour ("RGB", "PNG", base, (200, 100, 50)),
           ("RGBA", "PNG", base.convert("RGBA"), (200, 100, 50)), ("LA", "PNG", gray.convert("LA"), (200,) * 3),
           ("CMYK", "TIFF", base.convert("CMYK"), (200, 100, 50)), ("CMYK", "JPEG", base.convert("CMYK"), None),
           ("YCbCr", "TIFF", base.convert("YCbCr"), (200, 100, 50)), ("LAB", "TIFF", base.convert("LAB"), None),
           ("PA", "TIFF", base.convert("PA"), (204, 102, 51)), ("RGBX", "TIFF", base.convert("RGBX"), (200, 100, 50)),
           ("I", "TIFF", gray.convert("I"), (200, 200, 200)), ("F", "TIFF", gray.convert("F"), (200, 200, 200)),
           ("F01", "TIFF", Image.fromarray(np.full((4, 4), 200 / 255, dtype=np.float32), mode="F"), (200,) * 3)]
    sixteen = np.full((4, 4), 200 * 257, dtype=np.uint16)
    out += [("I;16", "PNG", Image.fromarray(sixteen), (200,) * 3),
            ("I;16", "TIFF", Image.fromarray(sixteen), (200,) * 3),
            ("I;16B", "TIFF", Image.frombytes("I;16B", (4, 4), sixteen.astype(">u2").tobytes()), (200,) * 3)]
    return out


@pytest.mark.parametrize("mode,fmt,image,want", _mode_images(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_pil_mode_becomes_correct_rgb(tmp_path, mode, fmt, image, want):
    from robustbench_labelaug.data.folder import read_image_checked

    path = tmp_path / f"x.{fmt.lower()}"
    image.save(path, fmt)
    out = np.asarray(read_image_checked(path)).astype(int)
    assert out.shape == (4, 4, 3)
    if want is None:  # 1-bit, lossy or device-dependent colour: in range and not saturated
        assert 0 <= out.min() <= out.max() <= 255 and len(np.unique(out)) <= 8
    else:
        assert np.abs(out - np.array(want)).max() <= 3, (mode, fmt, out[0, 0])


def test_a_16bit_png_is_not_white(tmp_path):
    from robustbench_labelaug.data import create_dataset

    data = tmp_path / "data"
    for c in range(2):
        (data / "val" / f"c{c}").mkdir(parents=True)
        Image.fromarray(np.full((8, 8), 1000 * (c + 1), dtype=np.uint16)).save(data / "val" / f"c{c}" / "0.png")
    ds = create_dataset("folder", data, "val", input_size=8)
    x = ds[0][0]
    assert abs(float(x.mean()) - 1000 / 65535) < 0.01  # an all-white image would be 1.0


def test_yaml_aliases_stay_shared_and_fast(tmp_path):
    from robustbench_labelaug.runner.config import expand_env
    from robustbench_labelaug.yamlio import MAX_VALUES, expanded_size, parse_yaml

    text = "base: &b {eps: 0.03, steps: 10}\nuse:\n  - *b\n  - *b\nmerged:\n  <<: *b\n  steps: 20\n"
    data = parse_yaml(text, "t")
    assert data["merged"] == {"eps": 0.03, "steps": 20}
    expanded = expand_env(data, "t")
    assert expanded["use"][0] is expanded["use"][1]  # one object, not copies
    shared = [[1] * 10] * 10
    assert expanded_size(shared) == 1 + 10 * 11
    assert expanded_size([[list(range(1000))] * 1000] * 1000) > MAX_VALUES


def test_hook_takes_numpy_float64_and_int32_labels(tmp_path):
    hook = _hook("adv_plus", protocol="adversarial")  # every row attacked: rows come back one for one
    x64 = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    x, soft = hook(x64, torch.tensor([0, 2], dtype=torch.int32))
    assert x.dtype == torch.float32 and soft.shape == (2, 4)
    x, soft = hook(np.random.rand(2, 3, 32, 32).astype(np.float32), np.array([1, 2]))
    assert isinstance(x, torch.Tensor) and soft.argmax(1).tolist() == [1, 2]


def test_enospc_in_the_cli_names_the_file(tmp_path, capsys, monkeypatch):
    from robustbench_labelaug import cli

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "x.json"))

    class Module:
        HELP = "x"

        @staticmethod
        def add_arguments(parser):
            pass

        main = staticmethod(full)

    monkeypatch.setattr(cli.importlib, "import_module", lambda name: Module)
    assert cli.main(["leaderboard"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"no space left on the device writing {tmp_path / 'out' / 'x.json'}" in err


def test_two_evaluates_into_one_output_take_the_lock(tmp_path, run_dir):
    cfg = _evaluate(tmp_path, run_dir)
    assert cli_main(["evaluate", "-c", str(cfg), "--no-progress"]) == 0
    assert not (tmp_path / "eval" / "rbla.lock").exists()  # released after the run


@pytest.mark.slow
def test_leaderboard_html_still_writes_a_file(tmp_path, run_dir):
    from robustbench_labelaug.runner import evaluate_config, load_config

    evaluate_config(load_config(_evaluate(tmp_path, run_dir, output=tmp_path / "lb")), leaderboard=False,
                    progress=False)
    assert cli_main(["leaderboard", str(tmp_path / "lb"), "--html", str(tmp_path / "page.html")]) == 0
    assert (tmp_path / "page.html").read_text().lstrip().lower().startswith("<!doctype html")


def test_escape_check_allows_nested_experiment_names(tmp_path):
    from argparse import Namespace

    from robustbench_labelaug.train.run import resolve_output_dir

    args = Namespace(resume="", experiment="group/run1", output=str(tmp_path), model="m", adv_mode="std")
    assert resolve_output_dir(args) == tmp_path / "group" / "run1"
    for bad in ("..", "../x", "/abs/path", "a/../../b"):
        with pytest.raises(UserError, match="outside --output"):
            resolve_output_dir(Namespace(**{**vars(args), "experiment": bad}))
