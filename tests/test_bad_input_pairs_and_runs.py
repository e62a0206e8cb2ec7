"""Hostile and careless input, round three (issue 30, families 3, 4, 6, 8 and 9): comparisons that pair what is
not paired, models that answer differently each call, runs that do not do what they are labelled, tracebacks and
misleading messages. The table of tests/test_bad_input.py (exit 2, one line naming the problem, the watched folder
unchanged), then the cases whose right answer is a correct result."""

from __future__ import annotations

import json
import os
import textwrap
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from robustbench_labelaug.cli import main as cli_main

from .test_bad_input import (  # noqa: F401  (fixtures)
    FAST,
    Case,
    check_bad_input_case,
    copy_run,
    image_folder,
    run_dir,
    snapshot,
    tiny_data,
)
from .test_compare import A_WRONG, B_WRONG, Y, write_evaluation

SHAPED = Path(__file__).with_name("timm_train_shaped.py")

NET = textwrap.dedent('''
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self, k=10, drop=False):
            super().__init__()
            torch.manual_seed(0)
            self.conv = nn.Conv2d(3, 4, 3, stride=2)
            self.fc = nn.Linear(4 * 15 * 15, k)
            self.drop = nn.Dropout(0.5)
            self.keep_dropout = drop
        def train(self, mode=True):
            super().train(mode)
            self.drop.training = self.drop.training or self.keep_dropout   # dropout left on
            return self
        def forward(self, x):
            return self.fc(self.drop(torch.relu(self.conv(x)).flatten(1)))

    def build():
        return Net()

    def with_dropout():
        return Net(drop=True).eval()

    def exits():
        raise SystemExit(3)
''')


def _python_config(tmp: Path, factory: str, output: Path, **model) -> Path:
    (tmp / "net.py").write_text(NET)
    cfg = {"title": "t", "runtime": {"batch_size": 16, "device": "cpu", "output": str(output), "progress": False,
                                     "plots": False},
           "datasets": {"d": {"name": "digits", "split": "test"}},
           "models": [{"name": "m", "python": f"{tmp / 'net.py'}:{factory}", "dataset": "d", **model}],
           "evaluators": [{"name": "clean", "settings": {"n_examples": 10}}]}
    path = tmp / "eval.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


# -- family 3: compare ----------------------------------------------------------------------------------------------


def _compare(dataset_b=None, fingerprint_b="absent", index_b=None, *flags, fingerprint_a="absent", dataset_a=None):
    def setup(tmp, run):
        a = write_evaluation(tmp / "evals", "a", A_WRONG, dataset=dataset_a or {"name": "digits", "split": "test"},
                             data_fingerprint=fingerprint_a)
        b = write_evaluation(tmp / "evals", "b", B_WRONG, index=index_b,
                             dataset=dataset_b or {"name": "digits", "split": "test"}, data_fingerprint=fingerprint_b)
        return ["compare", str(a), str(b), "--n-boot", "200", *flags], tmp
    return setup


def _compare_writes(flag: str, value: str):
    def setup(tmp, run):
        (tmp / "dir").mkdir()
        argv = _compare()(tmp, run)[0]
        target = tmp / "dir" if value == "DIR" else tmp / value
        return [*argv, flag, str(target)], tmp
    return setup


FOLDER = {"name": "folder", "split": "val", "data_dir": "/data", "crop_pct": 0.875}

# -- family 8: tracebacks -------------------------------------------------------------------------------------------


def _zoo_file(tmp, run):
    (tmp / "zoo.txt").write_text("a file\n")
    return ["zoo", "export", "--checkpoint", str(run / "last.pth.tar"), "--name", "mine", "--zoo",
            str(tmp / "zoo.txt"), "--model-dir", str(tmp / "models")], tmp


def _long_experiment(tmp, run):
    (tmp / "out").mkdir()
    return ["train", "--epochs", "1", "--output", str(tmp / "out"), "--experiment", "x" * 5000, *FAST], tmp


def _train_config(text: str):
    def setup(tmp, run):
        (tmp / "flags.yaml").write_text(text)
        return ["train", "-c", str(tmp / "flags.yaml"), "--output", str(tmp / "out"), *FAST], tmp
    return setup


def _timm(variant: str, *flags: str, classes: int = 3):
    def setup(tmp, run):
        from .fixtures_imagenet import make_timm_layout

        source = SHAPED.read_text()
        if variant == "latin1":
            script = tmp / "train.py"
            script.write_bytes(source.replace('"""', '"""Café ', 1).encode("latin-1"))
        else:
            if variant == "no-data-dir":
                source = source.replace('parser.add_argument("--data-dir", required=True)',
                                        'parser.add_argument("--data-dir", default=None)')
            elif variant == "cuda-default":
                source = source.replace('parser.add_argument("--device", default="cpu")',
                                        'parser.add_argument("--device", default="cuda")')
            elif variant == "persistent":  # calls create_loader as timm's train.py does: persistent workers
                source += "\n\ndef _eval_loader(dataset):\n    return create_loader(dataset, num_workers=0)\n"
            script = tmp / "train.py"
            script.write_text(source)
        data = make_timm_layout(tmp / "data", classes)
        data_flags = [] if variant == "no-data-dir" else ["--data-dir", str(data)]
        (tmp / "out").mkdir()
        return ["timm-train", str(script), *data_flags, "--model", "resnet8_tiny", "--num-classes", "3",
                "--input-size", "3", "32", "32", "-b", "8", "--epochs", "1", "--output", str(tmp / "out"),
                "--adv-mode", "adv", "--adv-steps", "1", *flags], tmp / "out"
    return setup


# -- family 4 and 6: models and runs --------------------------------------------------------------------------------


def _dropout_model(tmp, run):
    return ["evaluate", "-c", str(_python_config(tmp, "with_dropout", tmp / "eval")), "--no-progress"], tmp


def _factory_exits(tmp, run):
    return ["evaluate", "-c", str(_python_config(tmp, "exits", tmp / "eval")), "--no-progress"], tmp


def _num_ops_vs_head(tmp, run):
    return ["evaluate", "-c", str(_python_config(tmp, "build", tmp / "eval", num_ops=1)), "--no-progress"], tmp


def _relabel(tmp, run):
    cfg = _eval_on(tmp, run, {"name": "folder", "data_dir": yaml.safe_load((run / "args.yaml").read_text())["data_dir"],
                              "split": "val", "input_size": 32})
    raw = yaml.safe_load(cfg.read_text())
    raw["models"][0]["training"] = "adv_plus"
    cfg.write_text(yaml.safe_dump(raw))
    return ["evaluate", "-c", str(cfg), "--no-progress"], tmp


def _resume_workers(tmp, run):
    copy = copy_run(run, tmp / "run")
    return ["train", "--resume", str(copy / "checkpoint-0.pth.tar"), "--workers", "1", *FAST], copy


def _code_changed_with_results(tmp, run):
    cfg = _python_config(tmp, "build", tmp / "eval")
    assert cli_main(["evaluate", "-c", str(cfg), "--no-progress"]) == 0
    (tmp / "net.py").write_text(NET.replace("stride=2", "stride=2, bias=True"))
    return ["evaluate", "-c", str(cfg), "--no-progress"], tmp


# -- family 9: messages ---------------------------------------------------------------------------------------------


def _damaged_class(tmp, run):
    data = image_folder(tmp / "data", classes=3, per_class=2, splits=("val",))
    for f in (data / "val" / "c1").iterdir():
        f.write_bytes(f.read_bytes()[:50])
    cfg = _eval_on(tmp, run, {"name": "folder", "data_dir": str(data), "split": "val", "input_size": 32,
                              "bad_images": "skip"})
    return ["evaluate", "-c", str(cfg), "--no-progress"], tmp


def _nfd_names(tmp, run):
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    state = torch.load(run / "last.pth.tar", weights_only=False)
    state["class_names"] = ["c1", "c2", nfc]
    (tmp / "ckpt").mkdir()
    torch.save(state, tmp / "ckpt" / "nfc.pth.tar")
    data = image_folder(tmp / "data", classes=3, per_class=1, splits=("val",))
    os.rename(data / "val" / "c0", data / "val" / nfd)
    cfg = _eval_on(tmp, run, {"name": "folder", "data_dir": str(data), "split": "val", "input_size": 32},
                   checkpoint=tmp / "ckpt" / "nfc.pth.tar")
    return ["evaluate", "-c", str(cfg), "--no-progress"], tmp


def _eval_on(tmp, run, dataset, checkpoint=None) -> Path:
    cfg = {"title": "t", "runtime": {"batch_size": 16, "device": "cpu", "output": str(tmp / "eval"),
                                     "progress": False, "plots": False},
           "datasets": {"d": dataset},
           "models": [{"name": "mine", "checkpoint": str(checkpoint or run / "last.pth.tar"), "dataset": "d"}],
           "evaluators": [{"name": "clean"}]}
    (tmp / "eval.yaml").write_text(yaml.safe_dump(cfg))
    return tmp / "eval.yaml"


NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")

CASES = [
    # 3: comparisons that pair what is not paired
    Case("compare-other-data-fingerprint", _compare(FOLDER, "f2", None, fingerprint_a="f1", dataset_a=FOLDER),
         "ran on different data (data fingerprint: f1 vs f2: the files of the dataset differ"),
    Case("compare-names-the-dataset-first", _compare({"name": "folder", "split": "val", "crop_pct": 1.0}),
         "ran on different data (dataset: 'digits' vs 'folder')"),
    Case("compare-other-crop", _compare({**FOLDER, "crop_pct": 1.0}, "f1", None, fingerprint_a="f1",
                                        dataset_a=FOLDER), "ran on different data (crop_pct: 0.875 vs 1.0)"),
    Case("compare-other-examples", _compare(None, "absent", np.arange(len(Y)) + 1), "were evaluated on different "
         "examples (120 vs 120; e.g. index 0 is in one only)"),
    Case("compare-evaluator-not-shared", _compare(None, "absent", None, "--evaluators", "autoattack"),
         "--evaluators names ['autoattack'], which the two evaluations do not share"),
    # 8: tracebacks
    Case("compare-seed-negative", _compare(None, "absent", None, "--seed", "-1"),
         "--seed -1 must be an integer from 0 to 2**32 - 1"),
    Case("compare-plot-unknown-format", _compare_writes("--plot", "x.xyz"), "'.xyz' is not a format it can write"),
    Case("compare-markdown-folder", _compare_writes("--markdown", "DIR"), "dir is a folder: pass the file to write"),
    Case("zoo-export-zoo-is-file", _zoo_file, "zoo.txt is a file, not a folder: pass a folder"),
    Case("experiment-5000-chars", _long_experiment, "is 5000 characters long (at most"),
    Case("train-config-epochs-list", _train_config("epochs: [1, 2]\n"), "epochs: [1, 2] is not one value (what "
         "--epochs takes)"),
    Case("timm-latin1-script", _timm("latin1"), "train.py is not readable Python text"),
    Case("timm-no-data-dir", _timm("no-data-dir"), "was given no data folder: pass --data-dir DIR"),
    pytest.param(Case("timm-cuda-on-cpu", _timm("cuda-default"), "has no CUDA device: pass --device cpu"),
                 marks=NO_CUDA),
    Case("timm-workers-0", _timm("persistent", "-j", "0"), "-j 0: timm's train.py keeps its loader workers alive"),
    Case("python-factory-exits", _factory_exits, "exits() failed (SystemExit: 3)"),
    # 4: models that answer differently each call
    Case("evaluate-dropout-left-on", _dropout_model, "module 'drop' (Dropout) is in training mode"),
    # 6: runs that do not do what they are labelled
    Case("num-ops-vs-head-width", _num_ops_vs_head, "declared with K=10 classes and M=1 extra logits (K+M = 11) "
         "but outputs 10 logits: set num_ops: 0"),
    pytest.param(Case("timm-num-classes-vs-folders", _timm("plain", "--num-classes", "5"),
                      "--num-classes 5 but the training folder of")),
    Case("config-relabels-a-checkpoint", _relabel, "the config says training: 'adv_plus' but checkpoint"),
    Case("resume-other-workers", _resume_workers, "--workers 1 (checkpoint: 0; the data-loader workers draw"),
    # 9: messages that misled
    Case("evaluate-code-changed", _code_changed_with_results, "holds 2 result file(s) of model 'm' as it was before "
         "its code changed"),
    Case("all-images-of-a-class-damaged", _damaged_class, "every image of class folder"),
    Case("class-names-nfc-vs-nfd", _nfd_names, "is written in two Unicode normalisations (NFC vs NFD"),
    Case("compare-plot-without-suffix", _compare_writes("--plot", "figure"), "'(no suffix)' is not a format it can "
         "write: end the name with one of .png"),
    Case("compare-plot-folder", _compare_writes("--plot", "DIR"), "dir is a folder: pass the file to write"),
    Case("train-config-adv-mode-choices", _train_config("adv_mode: madry\n"), "is not one of std, adv, adv_plus, "
         "trades"),
]


def _cleanup() -> None:
    import logging

    root = logging.getLogger()
    for handler in list(root.handlers):  # the timm script's root handler on a closed capture
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_pairs_and_runs_exit_2_with_one_line_and_change_nothing(case: Case, tmp_path, run_dir, capsys):  # noqa: F811
    check_bad_input_case(case, tmp_path, run_dir, capsys, cleanup=_cleanup)


def test_the_adv_mode_check_lists_trades_for_a_programmatic_run():
    from argparse import Namespace

    from robustbench_labelaug import UserError
    from robustbench_labelaug.train.args import adv_settings

    args = Namespace(adv_mode="madry", label_aug=False, adv_eps=0.03, adv_steps=10, adv_alpha=None, la_delta=0.5,
                     la_ops=1, adv_prob=1.0, adv_attack_mode="eval")
    with pytest.raises(UserError, match="trades"):
        adv_settings(args)


# ---------------------------------------------------------------------------------------------------------------
# the right answer is a correct result
# ---------------------------------------------------------------------------------------------------------------


def test_a_failed_run_whose_code_was_fixed_evaluates(tmp_path):
    """A run refused before its first result leaves no model folder; one that died there (killed, or aborted by
    the factory) left only its markers: the fixed model is evaluated, never 'holds results of another checkpoint'."""
    cfg = _python_config(tmp_path, "build", tmp_path / "eval")
    (tmp_path / "net.py").write_text(NET + "\nraise RuntimeError('not yet')\n")
    assert cli_main(["evaluate", "-c", str(cfg), "--no-progress"]) == 2
    assert not (tmp_path / "eval" / "m").exists()
    (tmp_path / "net.py").write_text(NET)
    assert cli_main(["evaluate", "-c", str(cfg), "--no-progress"]) == 0
    for computed in [*(tmp_path / "eval" / "m").rglob("*.npz"), *(tmp_path / "eval" / "m" / "results").iterdir()]:
        computed.unlink()  # as a run that died before its first result leaves the folder: markers only
    (tmp_path / "net.py").write_text(NET.replace("stride=2", "stride=2, bias=True"))  # the code, fixed
    assert cli_main(["evaluate", "-c", str(cfg), "--no-progress"]) == 0
    marker = json.loads((tmp_path / "eval" / "m" / "model.json").read_text())
    assert (tmp_path / "eval" / "m" / "results" / "clean.json").is_file()
    from robustbench_labelaug.fileio import file_sha256

    assert marker["fingerprint"]["code_sha256"] == file_sha256(tmp_path / "net.py")


def test_a_cifar_folder_without_training_batches_evaluates_its_test_split(tmp_path):
    """torchvision's integrity check asks for data_batch_* even for the test split ("Dataset not found ...
    download=True"); the test split needs only test_batch and batches.meta."""
    import pickle

    from robustbench_labelaug.data.cifar import CifarDataset

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (10, 3072), dtype=np.uint8)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": data, "labels": list(range(10))}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    with pytest.warns(UserWarning, match="md5 differs"):
        ds = CifarDataset("cifar10", tmp_path, "test")
    assert len(ds) == 10 and [ds[i][1] for i in range(10)] == list(range(10))
    assert torch.equal((ds[3][0] * 255).round().to(torch.uint8).reshape(-1),
                       torch.from_numpy(data[3].reshape(3, 32, 32)).permute(1, 2, 0).permute(2, 0, 1).reshape(-1))


def test_the_leaderboard_after_evaluate_finds_a_dot_named_model(tmp_path, capsys):
    cfg = yaml.safe_load(_python_config(tmp_path, "build", tmp_path / "eval").read_text())
    cfg["models"][0]["name"] = ".mine"
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump(cfg))
    assert cli_main(["evaluate", "-c", str(tmp_path / "eval.yaml"), "--no-progress"]) == 0
    assert "run rbla evaluate" not in capsys.readouterr().err
    assert ".mine" in (tmp_path / "eval" / "leaderboard.md").read_text()


def test_compare_plot_writes_the_name_it_prints(tmp_path, capsys):
    a = write_evaluation(tmp_path, "a", A_WRONG)
    b = write_evaluation(tmp_path, "b", B_WRONG)
    assert cli_main(["compare", str(a), str(b), "--n-boot", "200", "--plot", str(tmp_path / "fig.pdf")]) == 0
    assert f"wrote {tmp_path / 'fig.pdf'}" in capsys.readouterr().out
    assert (tmp_path / "fig.pdf").read_bytes().startswith(b"%PDF")


def test_checkpoint_hist_is_honoured_after_a_resume(tmp_path, tiny_data):  # noqa: F811
    from robustbench_labelaug.train import parse_args, train

    flags = ["--dataset", "folder", "--data-dir", str(tiny_data), "--input-size", "32", "-b", "4", "--adv-mode",
             "std", *FAST]
    train(parse_args(["--epochs", "2", "--checkpoint-hist", "2", "--output", str(tmp_path), "--experiment", "r",
                      *flags]))
    run = tmp_path / "r"
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-0.pth.tar", "checkpoint-1.pth.tar"]
    train(parse_args(["--resume", str(run / "last.pth.tar"), "--epochs", "4", "--override-recipe"]))
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2.pth.tar", "checkpoint-3.pth.tar"]


def test_resume_keeps_the_recorded_workers(tmp_path, run_dir):  # noqa: F811
    from robustbench_labelaug.train import parse_args, read_checkpoint, train

    run = copy_run(run_dir, tmp_path / "run")
    before = snapshot(run)
    train(parse_args(["--resume", str(run / "checkpoint-0.pth.tar"), "--workers", "1", "--override-recipe",
                      "--no-progress"]))
    assert snapshot(run) != before
    assert read_checkpoint(run / "last.pth.tar")["args"]["recipe_overrides"][-1]["workers"] == [0, 1]


def test_timm_script_with_a_coding_line_is_read_in_its_encoding(tmp_path):
    from robustbench_labelaug.timm_train.script import read_script

    (tmp_path / "t.py").write_bytes("# -*- coding: latin-1 -*-\nNAME = 'Café'\n".encode("latin-1"))
    assert "Café" in read_script(tmp_path / "t.py")


def test_persistent_loader_detection():
    from robustbench_labelaug.timm_train.script import creates_persistent_loaders

    assert creates_persistent_loaders("loader = create_loader(ds, num_workers=args.workers)")
    assert creates_persistent_loaders("loader = timm.data.create_loader(ds, batch_size=8)")
    assert not creates_persistent_loaders("create_loader(ds, persistent_workers=False)")
    assert not creates_persistent_loaders("create_loader(ds, **common)")  # cannot tell: not refused
    assert not creates_persistent_loaders("x = 1")
