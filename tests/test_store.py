"""The evaluation store (store.py): the one owner of the evaluation folder's layout and of the decision whether a
stored result is reused, recomputed (damaged, other data: one line) or refused (other settings, other weights:
one UserError); the names that become paths are checked; files of the layout as earlier versions wrote them are
still read. And the two doors into the one evaluate loop, ``benchmark(..., to_disk=True)`` and ``rbla evaluate``,
write the same files."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from robustbench_labelaug import UserError
from robustbench_labelaug.store import (
    EvaluationFolder,
    EvaluationStore,
    PartCache,
    ResultSpec,
    digest,
    locate_evaluation,
    read_part,
    settings_fingerprint,
)

DATASET = {"name": "digits", "split": "test", "input_size": 32}


def spec(rid="clean", steps=2, data_fp=None) -> ResultSpec:
    return ResultSpec(rid, "pgd", {"steps": steps, "eps": 0.2}, "digits", DATASET, 10, 0, data_fp)


def result(value=12.5) -> dict:
    return {"evaluator": "pgd", "metrics": {"robust_error": value}, "settings": {"steps": 2}, "classwise": {},
            "details": {}, "protocol": "sound", "num_examples": 8}


def logged(store_or_folder) -> list[str]:
    lines: list[str] = []
    store_or_folder.log = lines.append
    return lines


@pytest.fixture
def folder(tmp_path) -> EvaluationFolder:
    f = EvaluationStore(tmp_path).folder("mine")
    f.mark_model({"sha256": "a" * 64}, {"num_classes": 10})
    return f


def test_fingerprints_are_those_earlier_versions_wrote(folder):
    """Existing caches stay readable: the result fingerprint and the part files' settings digest are computed
    as before (sha256 of the sorted JSON, 16 hex digits), here by an independent reimplementation."""
    s = spec()
    blob = json.dumps({"dataset": DATASET, "evaluator": "pgd", "num_classes": 10, "seed": 0,
                       "settings": {"eps": 0.2, "steps": 2}}, sort_keys=True)
    assert s.fingerprint == hashlib.sha256(blob.encode()).hexdigest()[:16]
    settings = {"eps": 0.2, "steps": 2, "seed": 0}
    blob = json.dumps({"evaluator": "pgd", **settings}, sort_keys=True)
    assert settings_fingerprint("pgd", settings) == hashlib.sha256(blob.encode()).hexdigest()[:16]
    assert digest({"b": (1, 2), "a": np.int64(3)}) == digest({"a": 3, "b": [1, 2]})
    # a result and a part written by hand in the documented layout (docs/your-model.md) are read
    (folder.path / "results").mkdir()
    (folder.path / "results" / "clean.json").write_text(json.dumps(
        {"fingerprint": s.fingerprint, "id": "clean", "dataset": "digits", "result": result()}))
    assert folder.reusable_result(s) == result()
    part = folder.path / "cache" / "clean" / "pgd" / "gaussian_noise__3.npz"
    part.parent.mkdir(parents=True)
    np.savez(part, __fingerprint__=np.array(settings_fingerprint("pgd", settings)), index=np.arange(3))
    cache = PartCache(folder.cache_dir("clean"), "pgd", settings_fingerprint("pgd", settings))
    assert cache.path("gaussian_noise/3") == part and cache.load("gaussian_noise/3")["index"].tolist() == [0, 1, 2]


def test_a_stored_result_is_reused_only_for_its_settings_and_data(folder):
    lines = logged(folder)
    s = spec(data_fp="d1")
    assert folder.reusable_result(s) is None and not lines  # nothing stored yet: computed, nothing said
    cache = folder.open_parts(s)
    assert json.loads((cache / "fingerprint.json").read_text())["data_fingerprint"] == "d1"
    PartCache(cache, "pgd", "x").save("all", {"index": np.arange(4)})
    folder.write_result(s, result())
    stored = json.loads(folder.result_path("clean").read_text())
    assert stored == {"fingerprint": s.fingerprint, "id": "clean", "dataset": "digits", "data_fingerprint": "d1",
                      "result": result()}
    assert folder.reusable_result(s) == result() and not lines
    # other settings: refused with one line, nothing removed
    with pytest.raises(UserError, match="was computed with other settings or data than 'clean' has now") as err:
        folder.reusable_result(spec(steps=3, data_fp="d1"))
    assert "\n" not in str(err.value) and (cache / "pgd" / "all.npz").is_file()
    # other data (the files changed on disk): recomputed with one line, its stale parts removed
    assert folder.reusable_result(spec(data_fp="d2")) is None
    assert lines == [f"the data of dataset 'digits' changed since {folder.result_path('clean')} was computed (or it "
                     "predates data fingerprints): recomputing it"]
    assert not cache.exists()


@pytest.mark.parametrize("content", ["null", "[]", '{"fingerprint": 1', "\x00\x01binary", '{"result": 3}'])
def test_a_damaged_result_is_recomputed_with_one_line(folder, content):
    lines = logged(folder)
    folder.result_path("clean").parent.mkdir(parents=True)
    folder.result_path("clean").write_text(content)
    assert folder.reusable_result(spec()) is None
    assert lines == [f"{folder.result_path('clean')} is damaged (not a result object): recomputing it"]


def test_part_cache_markers_other_settings_refused_other_data_and_damage_recomputed(folder):
    lines = logged(folder)
    cache = folder.open_parts(spec(data_fp="d1"))
    PartCache(cache, "pgd", "x").save("all", {"index": np.arange(4)})
    with pytest.raises(UserError, match="holds parts computed with other settings or data than 'clean'"):
        folder.open_parts(spec(steps=5, data_fp="d1"))
    assert (cache / "pgd" / "all.npz").is_file() and not lines
    folder.open_parts(spec(data_fp="d2"))  # other data: the parts go, the marker is rewritten
    assert lines == [f"{cache} holds parts of other data of dataset 'digits': recomputing them"]
    assert not (cache / "pgd").exists()
    assert json.loads((cache / "fingerprint.json").read_text())["data_fingerprint"] == "d2"
    PartCache(cache, "pgd", "x").save("all", {"index": np.arange(4)})
    (cache / "fingerprint.json").write_text("{")  # damaged marker: its parts cannot be trusted
    folder.open_parts(spec(data_fp="d2"))
    assert lines[-1] == f"{cache / 'fingerprint.json'} is damaged: recomputing the parts in {cache}"
    assert not (cache / "pgd").exists() and (cache / "fingerprint.json").is_file()


@pytest.mark.parametrize("damage", ["truncated", "inconsistent"])
def test_a_damaged_part_is_recomputed_and_other_settings_refused(tmp_path, damage):
    lines: list[str] = []
    cache = PartCache(tmp_path, "clean", "f1", log=lines.append)
    arrays = {"index": np.arange(5), "y_true": np.arange(5) % 2, "y_pred": np.zeros(5, dtype=np.int64)}
    cache.save("all", arrays)
    back = cache.load("all")
    assert set(back) == set(arrays) and all(np.array_equal(back[k], arrays[k]) for k in arrays)
    with pytest.raises(UserError, match=r"all.npz was written by a clean run with other settings: use another"):
        PartCache(tmp_path, "clean", "f2").load("all")
    path = cache.path("all")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        np.savez(path.with_suffix(""), __fingerprint__=np.array("f1"), index=np.arange(5), y_pred=np.arange(4))
    assert cache.load("all") is None
    assert len(lines) == 1 and lines[0].startswith(f"cache file {path} is damaged (") and "recomputing it" in lines[0]
    with pytest.raises(UserError, match="is damaged .*: re-run the evaluation that wrote it"):
        read_part(path, log=None)  # a reader that cannot recompute it (rbla compare)
    assert PartCache(None, "clean", "f1").load("all") is None  # no folder: nothing kept, nothing read


def test_other_weights_under_one_name_are_refused_and_nothing_is_written(folder):
    marker = json.loads(folder.marker.read_text())
    assert marker == {"model": "mine", "fingerprint": {"sha256": "a" * 64}, "meta": {"num_classes": 10}}
    folder.mark_model({"sha256": "a" * 64}, {"num_classes": 11})  # the same weights: the marker stays
    assert json.loads(folder.marker.read_text()) == marker
    folder.check_model({"sha256": "b" * 64})  # no results yet (a run that died before its first): not refused
    folder.write_result(spec(), result())
    with pytest.raises(UserError, match=r"holds 1 result file\(s\) of model 'mine' as it was before its "
                                        r"checkpoint's weights changed: give this model another name, use another"):
        folder.check_model({"sha256": "b" * 64})
    folder.result_path("clean").unlink()
    folder.mark_model({"sha256": "b" * 64}, {"num_classes": 10})  # the folder takes the new model
    assert json.loads(folder.marker.read_text())["fingerprint"] == {"sha256": "b" * 64}
    folder.marker.write_text("[]")
    with pytest.raises(UserError, match=r"model.json is damaged \(not a JSON object\): delete .*mine to recompute"):
        folder.mark_model({"sha256": "a" * 64}, {})


@pytest.mark.parametrize("name", ["../escape", "a/b", "", "..", " pad", "x\x00y"])
def test_names_that_become_paths_are_checked(tmp_path, name):
    store = EvaluationStore(tmp_path)
    with pytest.raises(UserError, match="model name"):
        store.folder(name)
    with pytest.raises(UserError, match="evaluator id"):
        spec(rid=name)
    with pytest.raises(UserError, match="model name"):
        store.model_info_path(name)
    assert list(tmp_path.iterdir()) == []


def test_a_reader_rank_writes_nothing(tmp_path):
    store = EvaluationStore(tmp_path, writer=False)
    f = store.folder("mine")
    f.mark_model({"sha256": "a"}, {})
    f.open_parts(spec())
    f.write_result(spec(), result())
    store.write_model_info("mine", {"x": 1})
    assert list(tmp_path.iterdir()) == []


def test_locate_evaluation(tmp_path, folder):
    with pytest.raises(UserError, match="is not an evaluation"):
        locate_evaluation(tmp_path)
    folder.write_result(spec(), result())
    assert locate_evaluation(folder.path).path == folder.path
    assert locate_evaluation(tmp_path).path == folder.path  # an output root with one model
    info = EvaluationStore(tmp_path).write_model_info("mine", {"labelaug": {"model": "mine"}})
    assert locate_evaluation(info).path == folder.path
    other = EvaluationStore(tmp_path).folder("other")
    other.write_result(spec(), result())
    with pytest.raises(UserError, match="holds 2 evaluated models"):
        locate_evaluation(tmp_path)
    assert folder.read_results()["clean"]["result"] == result()
    assert folder.result_dataset("clean", {"dataset": "digits"}) == "digits"  # no cache marker: its id


# -- the two doors into the one evaluate loop ---------------------------------------------------------------------

NET = textwrap.dedent('''
    import torch
    from torch import nn

    class SmallNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, stride=2)
            self.fc = nn.Linear(4 * 15 * 15, 10)
        def forward(self, x):
            return self.fc(torch.relu(self.conv((x - 0.5) / 0.5)).flatten(1))

    def build():
        return SmallNet()
''')
EVALUATORS = [("clean", {"n_examples": 40}), ("pgd", {"eps": 0.2, "steps": 2, "n_examples": 20})]


def _files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_benchmark_and_rbla_evaluate_write_the_same_files(tmp_path, monkeypatch):
    import torch

    from robustbench_labelaug import benchmark
    from robustbench_labelaug.runner import evaluate_config, load_config

    (tmp_path / "my_net.py").write_text(NET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.manual_seed(0)
    import my_net

    net = my_net.build()
    torch.save(net.state_dict(), tmp_path / "w.pt")
    evaluators = "\n".join(f"  - {{name: {n}, settings: {json.dumps(s)}}}" for n, s in EVALUATORS)
    (tmp_path / "cfg.yaml").write_text(
        "runtime: {device: cpu, progress: false, plots: false, batch_size: 64, seed: 0}\n"
        "datasets: {digits: {name: digits, split: test}}\n"
        "models:\n  - {python: my_net.py:build, checkpoint: w.pt, name: mine}\n"
        f"evaluators:\n{evaluators}\n")
    evaluate_config(load_config(tmp_path / "cfg.yaml"), output=tmp_path / "eval", leaderboard=False)  # rbla evaluate
    report = benchmark(net, dataset="digits", evaluators=EVALUATORS, model_name="mine", to_disk=True,
                       output=tmp_path / "bench", device="cpu", batch_size=64, seed=0)

    a, b = _files(tmp_path / "eval" / "mine"), _files(tmp_path / "bench" / "mine")
    assert set(a) == set(b) == {"model.json", "results/clean.json", "results/pgd.json",
                                "cache/clean/fingerprint.json", "cache/clean/clean/all.npz",
                                "cache/pgd/fingerprint.json", "cache/pgd/pgd/all.npz"}
    for name in a:
        if name.startswith("results/"):
            x, y = json.loads(a[name].read_text()), json.loads(b[name].read_text())
            assert x["result"]["details"].pop("wall_seconds") >= 0 and y["result"]["details"].pop("wall_seconds") >= 0
            assert x == y, name  # fingerprint, data fingerprint, dataset and every number
        elif name.endswith(".npz"):
            with np.load(a[name]) as x, np.load(b[name]) as y:
                assert x.files == y.files and len(x["index"]) in (20, 40)
                for key in x.files:
                    np.testing.assert_array_equal(x[key], y[key], err_msg=f"{name}: {key}")
        elif name != "model.json":  # the model marker identifies the weights each door's way
            assert a[name].read_bytes() == b[name].read_bytes(), name
    # model_info: the same headlines and class-wise blocks
    x = json.loads((tmp_path / "eval" / "model_info" / "mine.json").read_text())
    y = json.loads((tmp_path / "bench" / "model_info" / "mine.json").read_text())
    assert x["labelaug"]["measured"] == y["labelaug"]["measured"]
    assert x["clean_acc"] == y["clean_acc"] and x["labelaug"]["num_classes"] == y["labelaug"]["num_classes"] == 10
    for rid in ("clean", "pgd"):
        assert x["labelaug"]["results"][rid]["classwise"] == y["labelaug"]["results"][rid]["classwise"]
    assert report.headline == {h["key"]: h["value"] for h in x["labelaug"]["measured"]["headlines"]}


def test_benchmark_to_disk_holds_the_output_lock(tmp_path):
    """A second writer of the same output folder (here: a held lock) is refused before anything is run."""
    import torch

    from robustbench_labelaug import benchmark

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    with EvaluationStore(tmp_path).lock():
        with pytest.raises(UserError, match="is writing this evaluation output"):
            benchmark(model, dataset="digits", evaluators=("clean",), n_examples=10, model_name="m", to_disk=True,
                      output=tmp_path, device="cpu")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the lock released, nothing written
    benchmark(model, dataset="digits", evaluators=("clean",), n_examples=10, model_name="m", to_disk=True,
              output=tmp_path, device="cpu")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "model_info"]  # and released after the run


def _stored(folder: EvaluationFolder, s: ResultSpec, value: float = 12.5) -> None:
    cache = folder.open_parts(s)
    PartCache(cache, "pgd", "f1").save("all", {"index": np.arange(4), "y_true": np.arange(4), "y_pred": np.zeros(4)})
    folder.write_result(s, result(value))


def test_a_snapshot_is_read_as_its_folder_and_restored_elsewhere(folder, tmp_path):
    """StoredEvaluation (what a benchmark() Report carries) answers rbla compare's reads as the folder does, and
    restore() writes the same layout elsewhere; other settings or other weights there are refused, nothing
    written; a result of other data is replaced."""
    from robustbench_labelaug.compare.files import load_evaluated
    from robustbench_labelaug.store import evaluation_beside, in_evaluation_folder

    _stored(folder, spec("clean", data_fp="d1"))
    snap = folder.snapshot()
    a, b = load_evaluated(folder.path), load_evaluated(snap)
    assert (a.results, a.datasets, a.meta, a.name) == (b.results, b.datasets, b.meta, b.name)
    assert {k: v.tolist() for k, v in a.arrays("clean").items()} == {k: v.tolist() for k, v in b.arrays("clean").items()}
    beside = evaluation_beside(tmp_path / "x" / "mine.json", "mine")
    assert beside.path == tmp_path / "x" / "mine.evaluation" / "mine"
    assert evaluation_beside(tmp_path / "model_info" / "mine.json", "mine").path == folder.path  # the store's own
    beside.restore(snap)
    copied = beside.snapshot()
    assert (copied.marker, copied.records, copied.cache_markers) == (snap.marker, snap.records, snap.cache_markers)
    assert in_evaluation_folder(beside.path / "results" / "clean.json", tmp_path / "x")
    assert not in_evaluation_folder(tmp_path / "x" / "mine.json", tmp_path / "x")
    other = EvaluationStore(tmp_path / "y").folder("mine")
    other.mark_model({"sha256": "a" * 64}, {})
    _stored(other, spec("clean", steps=3, data_fp="d1"))
    before = sorted(p.read_bytes() for p in other.path.rglob("*") if p.is_file())
    with pytest.raises(UserError, match=r"clean.json was computed with other settings than the 'clean' written now"):
        other.restore(snap)
    stranger = EvaluationStore(tmp_path / "z").folder("mine")
    stranger.mark_model({"sha256": "b" * 64}, {})
    _stored(stranger, spec("other", data_fp="d1"))
    theirs = sorted(p.read_bytes() for p in stranger.path.rglob("*") if p.is_file())
    with pytest.raises(UserError, match="of model 'mine' as it was before .*: give this model another name"):
        stranger.restore(snap)
    assert sorted(p.read_bytes() for p in other.path.rglob("*") if p.is_file()) == before
    assert sorted(p.read_bytes() for p in stranger.path.rglob("*") if p.is_file()) == theirs
    left = EvaluationStore(tmp_path / "v").folder("mine")  # another model's marker, no results: taken over
    left.mark_model({"sha256": "b" * 64}, {})
    left.restore(snap)
    assert left.read_marker() == snap.marker and "clean" in left.read_results()
    stale = EvaluationStore(tmp_path / "w").folder("mine")
    stale.mark_model({"sha256": "a" * 64}, {})
    _stored(stale, spec("clean", data_fp="d0"), value=99.0)
    stale.restore(snap)
    assert stale.read_results()["clean"]["result"]["metrics"]["robust_error"] == 12.5
