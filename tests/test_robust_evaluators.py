"""The PGD (sound / paper protocol) and AutoAttack evaluators: strength, protocol semantics, caching, and
agreement with pyautoattack and RobustBench's own benchmark()."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchattacks
from PIL import Image
from torch import nn
from torch.utils.data import TensorDataset

from robustbench_labelaug import UserError, k_way
from robustbench_labelaug.attacks import example_starts
from robustbench_labelaug.compat import import_robustbench
from robustbench_labelaug.data import imagenet_wnids
from robustbench_labelaug.evaluation import EvalContext, create_evaluator
from robustbench_labelaug.evaluation.pgd import PGDEvaluator

from .robust_fixtures import trained_resnet8_digits


def ctx_for(k: int = 10, **kw) -> EvalContext:
    return EvalContext(num_classes=k, batch_size=kw.pop("batch_size", 128), **{"progress": False, **kw})


@pytest.fixture(scope="module")
def digits_net():
    return trained_resnet8_digits()


@contextlib.contextmanager
def torchattacks_starts(starts: torch.Tensor):
    """torchattacks.PGD draws its random start as ``torch.empty_like(x).uniform_(-eps, eps)``: hand it
    ``starts`` instead (the evaluator's per-example starts)."""
    real = torch.empty_like

    class Given:
        def uniform_(self, *_):
            return starts

    torch.empty_like = lambda t, *a, **kw: Given() if t.shape == starts.shape else real(t, *a, **kw)
    try:
        yield
    finally:
        torch.empty_like = real


def per_sample(evaluator, model, dataset, ctx) -> dict[str, np.ndarray]:
    """The evaluator's merged per-sample arrays (what it caches), from a run into a temporary folder."""
    result = evaluator.run(model, dataset, ctx)
    with np.load(ctx.out_dir / evaluator.name / "all.npz") as z:
        return {k: z[k] for k in z.files if k != "__fingerprint__"} | {"robust_error": result.metrics["robust_error"]}


@pytest.mark.parametrize("protocol", ["sound", "paper"])
def test_pgd_per_sample_results_do_not_depend_on_batch_size(digits_net, digits_test, tmp_path, protocol):
    """Random starts are seeded per example: batch sizes 7, 50 and 200 (and so the attack's pool, which is one
    batch) give exactly the same per-sample predictions, breaking iterates and perturbation sizes."""
    ds = TensorDataset(*(t[:200] for t in digits_test.tensors))
    runs = [per_sample(create_evaluator("pgd", protocol=protocol, eps=0.03, steps=8, seed=3), digits_net, ds,
                       ctx_for(batch_size=bs, out_dir=tmp_path / str(bs))) for bs in (7, 50, 200)]
    assert 5.0 < runs[0]["robust_error"] < 95.0  # a non-trivial operating point
    for other in runs[1:]:
        assert other.keys() == runs[0].keys()
        for k in runs[0]:
            np.testing.assert_array_equal(other[k], runs[0][k], err_msg=k)


# -- PGD, sound protocol --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_pgd40_not_weaker_than_torchattacks(digits_net, digits_test):
    """The evaluator's robust accuracy <= torchattacks PGD(steps=40) with the same model, data, batches and
    random starts; its result carries the protocol, settings, class-wise block and sane perturbations."""
    eps, seed, bs = 0.03, 5, 64
    ds = TensorDataset(*(t[:128] for t in digits_test.tensors))  # two batches: PGD-40 twice on 360 took ~50 s
    result = create_evaluator("pgd", eps=eps, steps=40, seed=seed).run(digits_net, ds, ctx_for(batch_size=bs))
    model = k_way(digits_net).eval()
    x, y = ds.tensors
    attack = torchattacks.PGD(model, eps=eps, alpha=2.5 * eps / 40, steps=40)
    correct = 0
    for start in range(0, len(y), bs):
        xb, yb = x[start:start + bs], y[start:start + bs]
        with torchattacks_starts(example_starts(xb, eps, seed, torch.arange(start, start + len(yb)))):
            adv = attack(xb, yb)
        with torch.no_grad():
            correct += int((model(adv).argmax(1) == yb).sum())
    ta_acc = 100.0 * correct / len(y)
    ours_acc = 100.0 - result.metrics["robust_error"]
    assert 5.0 < ta_acc < 90.0  # a non-trivial operating point
    assert ours_acc <= ta_acc
    assert result.protocol == "sound" and result.settings["protocol"] == "sound"
    assert result.settings["eps_pixel"] == eps and result.settings["alpha"] == pytest.approx(2.5 * eps / 40)
    assert result.num_examples == len(y)
    assert result.metrics["clean_error"] < 10.0
    cw = result.classwise["pgd"]
    assert len(cw["error"]) == 10 and cw["summary"]["mean"] == pytest.approx(np.nanmean(cw["error"]))
    assert result.details["max_linf_pixel"] <= eps + 1e-6
    assert result.details["fraction_outside_image_range"] == 0.0  # clipped to [0,1]


def test_pgd_sound_vs_paper_protocol(digits_net, digits_test, tmp_path):
    """On a K+M model the two protocols attack differently and say so: the paper protocol works in normalised
    units (pixel eps = eps * std = 0.015 here), leaves [0,1], and attacks the model's own full-head labels."""
    ds = TensorDataset(*(t[:96] for t in digits_test.tensors))
    sound = create_evaluator("pgd", protocol="sound", eps=0.03, steps=10).run(digits_net, ds, ctx_for())
    paper = create_evaluator("pgd", protocol="paper", eps=0.03, steps=10).run(digits_net, ds, ctx_for())
    assert (sound.protocol, paper.protocol) == ("sound", "paper")
    assert paper.settings["alpha"] == 0.01 and paper.settings["clip_to_image_range"] is False
    assert paper.settings["eps_pixel"] == pytest.approx(0.015)
    assert paper.settings["eps_pixel_per_channel"] == pytest.approx([0.015] * 3)
    assert paper.details["max_linf_pixel"] <= 0.015 + 1e-6
    assert paper.details["fraction_outside_image_range"] > 0.0
    assert sound.details["fraction_outside_image_range"] == 0.0
    assert sound.metrics["clean_error"] == paper.metrics["clean_error"]
    assert sound.metrics["robust_error"] != paper.metrics["robust_error"]
    assert set(paper.classwise) == set(sound.classwise) == {"pgd"}
    # labels come from the model's argmax over all K+M logits: make the transformation logit win everywhere
    biased = copy.deepcopy(digits_net)
    with torch.no_grad():
        biased.net.fc.bias[10] += 100.0
    r = create_evaluator("pgd", protocol="paper", eps=0.03, steps=2).run(biased, ds, ctx_for())
    assert r.details["attack_label_is_transformation"] == 1.0
    # ... while the sound protocol never looks at it
    assert create_evaluator("pgd", eps=0.03, steps=2).run(biased, ds, ctx_for()).metrics["clean_error"] == \
        sound.metrics["clean_error"]


def test_pgd_paper_protocol_matches_reference_loop(digits_net, digits_test):
    """Per-sample predictions equal a plain cleverhans-style loop on net(normalize(x)) with the same starts."""
    x, y = (t[:40] for t in digits_test.tensors)
    ev = PGDEvaluator(protocol="paper", eps=0.03, steps=5, seed=1)
    ev.settings["seed"] = 1
    arrays = ev.predict(ev.classifier(digits_net, ctx_for()), iter([(x, y, torch.arange(40))]), "all", ctx_for())
    net, norm = digits_net.net, digits_net.normalize
    xn = norm(x).detach()
    with torch.no_grad():
        labels = net(xn).argmax(1)
    adv = xn + example_starts(xn, 0.03, 1, torch.arange(40))
    for _ in range(5):
        adv.requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(net(adv), labels), adv)
        adv = xn + (adv.detach() + 0.01 * g.sign() - xn).clamp(-0.03, 0.03)
    with torch.no_grad():
        ref = net(adv)[:, :10].argmax(1)
    assert np.array_equal(arrays["y_pred"], ref.numpy())
    assert np.array_equal(arrays["attack_label"], labels.numpy())


def test_pgd_cache_and_resume(digits_net, digits_test, tmp_path, monkeypatch):
    ds = TensorDataset(*(t[:64] for t in digits_test.tensors))
    ctx = ctx_for(out_dir=tmp_path)
    first = create_evaluator("pgd", eps=0.03, steps=3, n_examples=48).run(digits_net, ds, ctx)
    assert (tmp_path / "pgd" / "all.npz").exists() and first.num_examples == 48

    def boom(*a, **k):
        raise AssertionError("a cached split must not be recomputed")

    monkeypatch.setattr(PGDEvaluator, "predict", boom)
    again = create_evaluator("pgd", eps=0.03, steps=3, n_examples=48).run(digits_net, ds, ctx)
    assert again.to_dict() == first.to_dict()
    with pytest.raises(UserError, match="other settings"):
        create_evaluator("pgd", eps=0.03, steps=4, n_examples=48).run(digits_net, ds, ctx)
    with pytest.raises(UserError, match="other settings"):  # the seed is part of the fingerprint
        create_evaluator("pgd", eps=0.03, steps=3, n_examples=48).run(digits_net, ds, ctx_for(out_dir=tmp_path,
                                                                                             seed=1))


@pytest.mark.parametrize("settings, match", [
    ({"protocol": "madry"}, "protocol"),
    ({"eps": 0}, "eps"),
    ({"eps": 1.5}, "eps"),
    ({"eps": "8/255"}, "eps"),
    ({"steps": 0}, "steps"),
    ({"steps": 2.5}, "steps"),
    ({"alpha": -1.0}, "alpha"),
    ({"protocol": "paper", "eps": 0.005}, "alpha <= eps"),
    ({"n_examples": 0}, "n_examples"),
    ({"seed": -1}, "seed"),
    ({"epsilon": 0.03}, "epsilon"),
])
def test_pgd_bad_settings(settings, match):
    with pytest.raises(UserError, match=match):
        create_evaluator("pgd", **settings)


def test_pgd_wrong_model_width(digits_test):
    ds = TensorDataset(*(t[:8] for t in digits_test.tensors))
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 7))
    for protocol in ("sound", "paper"):
        with pytest.raises(UserError, match="logits"):
            create_evaluator("pgd", protocol=protocol, steps=1).run(model, ds, ctx_for())


@pytest.mark.parametrize("settings, match", [({"version": "fast"}, "version"), ({"eps": 0.0}, "eps"),
                                             ({"seed": "x"}, "seed"), ({"norm": "L2"}, "norm")])
def test_autoattack_bad_settings(settings, match):
    with pytest.raises(UserError, match=match):
        create_evaluator("autoattack", **settings)


# -- AutoAttack against pyautoattack and RobustBench ------------------------------------------------------------


GREY_LEVELS = (0.10, 0.16, 0.33, 0.50, 0.56, 0.75, 0.92, 0.02)  # one solid grey image per class
AA_EPS = 0.05  # neighbours 0.06 apart are within reach (boundary at 0.03), 0.17 apart are not


class GreyCentroids(nn.Module):
    """1000-way linear classifier of an image's mean grey level: nearest of the given levels (one per class),
    every other class far below. Its exact L-inf robustness on solid images is known (see the test)."""

    def __init__(self, levels: dict[int, float], scale: float = 100.0) -> None:
        super().__init__()
        self.fc = nn.Linear(1, 1000)
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.bias.fill_(-1e3)
            for c, g in levels.items():
                self.fc.weight[c, 0] = 2 * scale * g
                self.fc.bias[c] = -scale * g * g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((1, 2, 3))[:, None])


def fake_imagenet_val(root: Path, levels: tuple[float, ...]) -> list[int]:
    """RobustBench's ImageNet layout: all 1000 class folders, and the first len(levels) images of its test-id
    list as solid grey 32x32 images (PNG data, lossless, under the official .JPEG names). Returns their labels."""
    rb = import_robustbench()
    ids = (Path(rb.__file__).parent / "helper_files" / "imagenet_test_image_ids.txt").read_text().split()
    wnids = imagenet_wnids()
    for w in wnids:
        (root / "val" / w).mkdir(parents=True, exist_ok=True)
    for rel, g in zip(ids, levels):
        Image.fromarray(np.full((32, 32, 3), round(g * 255), np.uint8)).save(root / "val" / rel, format="PNG")
    return [wnids.index(rel.split("/")[0]) for rel in ids[: len(levels)]]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # robustbench: pkg_resources, its 4 DataLoader workers
def test_autoattack_matches_pyautoattack_and_robustbench_benchmark(tmp_path, one_thread):
    """On a tiny model with known robustness: our evaluator, pyautoattack's AutoAttack(version="standard") run
    directly (per sample) and robustbench.eval.benchmark() on its own data loader give the same accuracy, which
    is also the exact robust accuracy."""
    import pyautoattack
    import torchvision.transforms as T

    import_robustbench()
    import robustbench.data
    import robustbench.eval
    from robustbench.model_zoo.enums import BenchmarkDataset

    labels = fake_imagenet_val(tmp_path, GREY_LEVELS)
    n = len(GREY_LEVELS)
    model = GreyCentroids({c: round(g * 255) / 255 for c, g in zip(labels, GREY_LEVELS)}).eval()
    x, y = robustbench.data.load_clean_dataset(BenchmarkDataset.imagenet, n, str(tmp_path), T.ToTensor())
    assert y.tolist() == labels

    # exact: on a solid image the reachable mean grey is an interval and the winning region of its class is an
    # interval around it, so the point is robust iff both ends of the reachable interval are still classified right
    with torch.no_grad():
        g = x.mean((1, 2, 3))
        ends = torch.stack([(g - AA_EPS).clamp(0, 1), (g + AA_EPS).clamp(0, 1)], 1)
        robust = [all(model(torch.full((1, 3, 32, 32), float(e))).argmax(1).item() == int(c) for e in row)
                  for row, c in zip(ends, y)]
    exact_acc = 100.0 * sum(robust) / n
    assert 0.0 < exact_acc < 100.0

    ours = create_evaluator("autoattack", eps=AA_EPS, n_examples=n, seed=0).run(
        model, TensorDataset(x, y), ctx_for(1000, batch_size=n))
    adversary = pyautoattack.AutoAttack(model, norm="Linf", eps=AA_EPS, version="standard", device="cpu", seed=0)
    _, y_adv = adversary.run_standard_evaluation(x, y, batch_size=n)
    direct_acc = 100.0 * (y_adv == y).float().mean().item()
    _, rb_acc = robustbench.eval.benchmark(model, n_examples=n, dataset="imagenet", threat_model="Linf",
                                           data_dir=str(tmp_path), eps=AA_EPS, batch_size=n,
                                           preprocessing=T.ToTensor())
    ours_acc = 100.0 - ours.metrics["robust_error"]
    assert ours_acc == pytest.approx(direct_acc) == pytest.approx(100.0 * rb_acc) == pytest.approx(exact_acc)
    assert ours.protocol == "sound" and ours.settings["version"] == "standard" and ours.num_examples == n
    assert ours.details["max_linf_pixel"] <= AA_EPS + 1e-6
    errors = np.array(ours.classwise["autoattack"]["error"])
    assert np.isnan(errors).sum() == 1000 - n  # only the classes present are scored
    assert sorted(errors[labels].tolist()) == sorted(0.0 if r else 100.0 for r in robust)


# -- AutoAttack: progress, resume, PGD-40 + AutoAttack -----------------------------------------------------------


def linear_digits() -> nn.Module:
    """A linear classifier on the digits pixels (10 SGD epochs): 43 of the first 48 test images right, about 5
    robust to PGD-40 at eps 0.12, and cheap enough for several full AutoAttack runs."""
    torch.manual_seed(0)
    from robustbench_labelaug.data import create_dataset

    x, y = create_dataset("digits", split="train").tensors
    model = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(10):
        for i in range(0, len(y), 64):
            loss = F.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.mark.slow
def test_autoattack_progress_resume_and_pgd_first_union(digits_test, tmp_path, monkeypatch, capsys):
    """The evaluator drives pyautoattack one attack and one batch at a time: per-sample results equal one
    run_standard_evaluation call with the same batch size; a run interrupted after the first attack resumes from
    its checkpoint without rerunning it (a bar per attack shows progress); ``pgd_first`` gives the union of
    PGD-40 and AutoAttack, at least as strong as either on the same points, under its own name.

    What is tested is the driving of pyautoattack, not its attacks' strength (the test above runs them in full):
    here every AutoAttack, the reference included, runs FAB-T with 10 iterations and Square with 300 queries
    instead of 100 and 5000 (on the few points they get, those two cost ~15 s per AutoAttack at full length)."""
    import pyautoattack

    real_init = pyautoattack.AutoAttack.__init__

    def shortened(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.fab.n_iter, self.square.n_queries = 10, 300

    monkeypatch.setattr(pyautoattack.AutoAttack, "__init__", shortened)
    eps, n, bs = 0.12, 48, 16
    ds = TensorDataset(*(t[:n] for t in digits_test.tensors))
    x, y = ds.tensors
    digits_net = linear_digits()  # AutoAttack's 5000 Square queries per robust point: a cheap model
    reference = pyautoattack.AutoAttack(digits_net, norm="Linf", eps=eps, version="standard", device="cpu", seed=0)
    _, y_ref = reference.run_standard_evaluation(x, y, batch_size=bs)

    real = pyautoattack.AutoAttack.run_standard_evaluation
    calls: list[tuple[str, int]] = []

    def recorded(self, x_, y_, **kw):
        calls.append((self.attacks_to_run[0], len(y_)))
        if interrupt and self.attacks_to_run == ["apgd-t"]:
            raise KeyboardInterrupt
        return real(self, x_, y_, **kw)

    monkeypatch.setattr(pyautoattack.AutoAttack, "run_standard_evaluation", recorded)
    ctx = ctx_for(batch_size=bs, out_dir=tmp_path / "out")
    interrupt = True
    with pytest.raises(KeyboardInterrupt):
        create_evaluator("autoattack", eps=eps).run(digits_net, ds, ctx)
    assert not (tmp_path / "out" / "autoattack" / "all.npz").exists()
    assert (tmp_path / "out" / "autoattack" / "all.rank0.unfinished.npz").exists()
    first = [a for a, _ in calls]
    assert first.count("apgd-ce") >= 2 and first[-1] == "apgd-t"  # several batches, stopped in the 2nd attack

    calls.clear()
    interrupt = False
    capsys.readouterr()
    resumed = create_evaluator("autoattack", eps=eps).run(digits_net, ds, ctx_for(batch_size=bs, out_dir=tmp_path /
                                                                                   "out", progress=True))
    assert "autoattack apgd-t" in capsys.readouterr().err  # a bar per attack
    assert calls and "apgd-ce" not in {a for a, _ in calls}  # the finished attack is not rerun
    assert not (tmp_path / "out" / "autoattack" / "all.rank0.unfinished.npz").exists()
    with np.load(tmp_path / "out" / "autoattack" / "all.npz") as z:
        np.testing.assert_array_equal(z["y_pred"], y_ref.numpy())  # = one uninterrupted pyautoattack call
    aa_error = resumed.metrics["robust_error"]
    assert aa_error == pytest.approx(100.0 * (y_ref != y).float().mean().item())
    assert resumed.settings["attack"] == "AutoAttack (standard)"

    pgd = create_evaluator("pgd", eps=eps, steps=40).run(digits_net, ds, ctx_for(batch_size=bs))
    union = create_evaluator("autoattack", eps=eps, pgd_first=True).run(digits_net, ds, ctx_for(batch_size=bs))
    assert union.settings["attack"] == "PGD-40 + AutoAttack (standard)" and "union" in union.settings["pgd_first"]
    assert union.details["broken_by_attack"]["pgd"] == pgd.details["broken"] > 0
    assert union.metrics["robust_error"] >= max(pgd.metrics["robust_error"], aa_error)
    assert 0.0 < union.metrics["robust_error"] < 100.0
    assert union.details["max_linf_pixel"] <= eps + 1e-6
