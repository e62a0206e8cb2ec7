"""attacks.EarlyStopPGD and attacks.PaperPGD: semantics on hand-made models, strength against torchattacks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchattacks
from torch import nn

from robustbench_labelaug import KWayClassifier, k_way
from robustbench_labelaug.attacks import EarlyStopPGD, PaperPGD, PGDOutcome, example_seed, example_starts
from robustbench_labelaug.errors import UserError
from robustbench_labelaug.evaluation.pgd import batch_generator

from .robust_fixtures import trained_resnet8_digits


class BandModel(nn.Module):
    """Two classes on one-pixel images. logit1 = s - 0.9, plus 2 while s is in [0.6, 0.65) (a constant, so the
    gradient always says "increase s"): class 1 wins only inside that band or above 0.9. Counts the examples it
    sees."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))  # torchattacks reads the device from a parameter
        self.seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen += len(x)
        s = x.flatten(1).mean(1)
        band = ((s.detach() >= 0.6) & (s.detach() < 0.65)).float()
        return torch.stack([torch.zeros_like(s) + self.dummy, s - 0.9 + 2.0 * band], 1)


def test_early_stop_any_iterate_semantics():
    """Iterates 0.52 -> 0.62 (fooled) -> 0.72 -> 0.82 -> 0.87 (clipped to the ball): torchattacks' last iterate is
    correct again, EarlyStopPGD keeps the fooling iterate. A misclassified point is not attacked; a robust one
    returns its last iterate; broken points leave the batch."""
    model = BandModel().eval()
    x = torch.tensor([0.52, 0.95, 0.05]).view(3, 1, 1, 1)
    y = torch.zeros(3, dtype=torch.long)
    kw = dict(eps=0.35, alpha=0.1, steps=5, random_start=False)
    out = EarlyStopPGD(model, **kw).perturb(x, y)
    assert out.clean_pred.tolist() == [0, 1, 0]
    assert out.broken.tolist() == [True, False, False]
    assert out.iterate.tolist() == [1, -1, -1]
    assert out.pred.tolist() == [1, 1, 0]
    assert out.adv.flatten().tolist() == pytest.approx([0.62, 0.95, 0.40])
    # forwards: clean 3; steps 0 and 1 with both attacked points; steps 2-4 and the last check with one
    assert model.seen == 3 + 2 + 2 + 1 + 1 + 1 + 1
    # torchattacks.PGD ends at 0.87, classified correctly: it misses the fooling iterate
    ta = torchattacks.PGD(model, **kw)(x[:1], y[:1])
    assert ta.item() == pytest.approx(0.87)
    assert model(ta).argmax(1).item() == 0
    # forward() returns the adversarial images, torchattacks style
    assert torch.equal(EarlyStopPGD(model, **kw)(x, y), out.adv)


def test_early_stop_num_classes_judges_first_k_logits():
    """With num_classes=K an extra logit that wins the argmax does not count as fooling."""

    class Extra(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor(1.0))

        def forward(self, x):
            s = x.flatten(1).mean(1) * self.w
            return torch.stack([s, -s, s + 10.0], 1)  # logit 2 (the "transformation") always wins

    x, y = torch.full((2, 1, 2, 2), 0.5), torch.zeros(2, dtype=torch.long)
    free = EarlyStopPGD(Extra(), eps=0.01, steps=2).perturb(x, y)
    assert free.clean_pred.tolist() == [2, 2] and not free.broken.any()  # misclassified: not attacked
    judged = EarlyStopPGD(Extra(), eps=0.01, steps=2, num_classes=2).perturb(x, y)
    assert judged.clean_pred.tolist() == [0, 0] and not judged.broken.any() and judged.pred.tolist() == [0, 0]


@pytest.fixture(scope="module")
def digits_net():
    return trained_resnet8_digits()


@pytest.mark.slow
def test_early_stop_at_least_as_strong_as_torchattacks(digits_net, digits_test):
    """Same model, data and random starts: every point torchattacks' PGD-40 breaks, EarlyStopPGD breaks too
    (any-iterate success, same iterates up to float rounding), so its robust accuracy is never higher."""
    model = k_way(digits_net).eval()
    x, y = digits_test.tensors
    eps = 0.03
    ours = EarlyStopPGD(model, eps=eps, steps=40)
    ta = torchattacks.PGD(model, eps=eps, alpha=2.5 * eps / 40, steps=40)
    torch.manual_seed(7)
    out = ours.perturb(x, y)
    torch.manual_seed(7)
    ta_adv = ta(x, y)
    with torch.no_grad():
        ta_pred = model(ta_adv).argmax(1)
        assert torch.equal(model(out.adv).argmax(1), out.pred)  # pred is the label at the returned image
    ours_acc, ta_acc = (out.pred == y).float().mean().item(), (ta_pred == y).float().mean().item()
    assert 0.05 < ta_acc < 0.9  # a non-trivial operating point
    assert ours_acc <= ta_acc
    assert int(((ta_pred != y) & (out.pred == y)).sum()) <= 2  # float rounding may rarely split a trajectory
    # within eps and inside [0,1]
    assert (out.adv - x).abs().max().item() <= eps + 1e-6
    assert out.adv.min().item() >= 0.0 and out.adv.max().item() <= 1.0
    assert torch.equal(out.broken, (out.clean_pred == y) & (out.pred != y))


def test_early_stop_with_torchattacks_normalization(digits_net, digits_test):
    """set_normalization_used (a network taking normalised inputs): perturb takes and returns normalised
    images and attacks in pixel space, exactly like attacking the model with normalisation inside."""
    x, y = digits_test.tensors[0][:16], digits_test.tensors[1][:16]
    inside = k_way(digits_net).eval()
    outside = EarlyStopPGD(KWayClassifier(digits_net.net, 10).eval(), eps=0.03, steps=3)
    outside.set_normalization_used(mean=[0.5] * 3, std=[0.5] * 3)
    a = EarlyStopPGD(inside, eps=0.03, steps=3).perturb(x, y, start=batch_generator(0, 0, x.device))
    b = outside.perturb(digits_net.normalize(x), y, start=batch_generator(0, 0, x.device))
    assert torch.equal(a.pred, b.pred) and torch.equal(a.broken, b.broken)
    assert torch.allclose(b.adv, digits_net.normalize(a.adv), atol=1e-5)


def test_early_stop_generator_reproducible(digits_net, digits_test):
    model = k_way(digits_net).eval()
    x, y = digits_test.tensors[0][:32], digits_test.tensors[1][:32]
    attack = EarlyStopPGD(model, eps=0.03, steps=5)
    a = attack.perturb(x, y, start=batch_generator(3, 0, x.device))
    b = attack.perturb(x, y, start=batch_generator(3, 0, x.device))
    c = attack.perturb(x, y, start=batch_generator(4, 0, x.device))
    assert torch.equal(a.adv, b.adv) and not torch.equal(a.adv, c.adv)


class Head(nn.Module):
    """Linear K+M head on normalised inputs."""

    def __init__(self, k_plus_m: int = 3, pixels: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(pixels, k_plus_m)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_paper_pgd_cleverhans_semantics():
    """Labels default to the argmax over ALL logits; mean cross entropy over all logits; no clipping; the
    perturbation stays within eps of the (normalised) input; the last iterate is returned."""
    net = Head().eval()
    x = torch.tensor([[-3.0, 0.0, 5.0, 1.0], [0.2, 0.1, -0.1, 0.0]]).view(2, 1, 2, 2)  # outside [0,1] on purpose
    attack = PaperPGD(net, eps=0.5, alpha=0.2, steps=3, random_start=False)
    assert attack.attack_labels(x).tolist() == net(x).argmax(1).tolist()
    adv = attack(x)
    # reference: three signed steps on the mean CE of the model's own labels, projected, never clipped
    ref, labels = x.clone(), net(x).argmax(1)
    for _ in range(3):
        ref.requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(net(ref), labels), ref)
        ref = x + (ref.detach() + 0.2 * g.sign() - x).clamp(-0.5, 0.5)
    assert torch.allclose(adv, ref)
    assert (adv - x).abs().max().item() <= 0.5 + 1e-6
    assert adv.min().item() < 0.0 or adv.max().item() > 1.0  # nothing clipped to an image range
    with pytest.raises(UserError, match="alpha"):
        PaperPGD(net, eps=0.01, alpha=0.02)


def test_paper_pgd_random_start_within_eps():
    net = Head().eval()
    x = torch.rand(8, 1, 2, 2)
    g = torch.Generator().manual_seed(0)
    adv = PaperPGD(net, eps=0.03, alpha=0.01, steps=2)(x, generator=g)
    assert 0.0 < (adv - x).abs().max().item() <= 0.03 + 1e-6


@pytest.mark.parametrize("pool_size", [None, 7])
def test_perturb_stream_equals_per_batch_perturb(digits_net, digits_test, pool_size):
    """The refilled pool gives every point the iterates per-batch perturb gives it (points are independent in
    eval mode): same predictions, breaking iterates and, up to float rounding, adversarial images."""
    model = k_way(digits_net).eval()
    x, y = digits_test.tensors[0][:40], digits_test.tensors[1][:40]
    attack = EarlyStopPGD(model, eps=0.03, steps=6)
    batches = [(x[i:i + 16], y[i:i + 16], torch.arange(i, min(i + 16, 40)), batch_generator(1, i, x.device))
               for i in range(0, 40, 16)]
    expected = [attack.perturb(xb, yb, start=batch_generator(1, int(k[0]), x.device))
                for xb, yb, k, _ in batches]
    want = {f: torch.cat([getattr(e, f) for e in expected]) for f in PGDOutcome._fields}
    got = {f: torch.empty_like(want[f]) for f in PGDOutcome._fields}
    seen = torch.zeros(40, dtype=torch.long)
    for done in attack.perturb_stream(batches, pool_size=pool_size):
        assert torch.equal(done.images, x[done.key]) and torch.equal(done.labels, y[done.key])
        seen[done.key] += 1
        for f in PGDOutcome._fields:
            got[f][done.key] = getattr(done.outcome, f)
    assert seen.tolist() == [1] * 40  # every point exactly once
    assert 0 < int(want["broken"].sum()) < 40  # a non-trivial operating point
    for f in ("pred", "broken", "clean_pred", "iterate"):
        assert torch.equal(got[f], want[f]), f
    assert torch.allclose(got["adv"], want["adv"], atol=1e-6)


def test_example_starts_depend_on_the_example_only():
    """Row i is torch's global-RNG draw after manual_seed(example_seed(seed, index[i])), whatever the batch."""
    like = torch.zeros(5, 3, 4, 4)
    a = example_starts(like, 0.1, 7, torch.tensor([0, 1, 2, 3, 4]))
    b = example_starts(like[:2], 0.1, 7, torch.tensor([3, 1]))
    assert torch.equal(b, a[[3, 1]])
    torch.manual_seed(example_seed(7, 2))
    assert torch.equal(a[2:3], torch.empty_like(like[:1]).uniform_(-0.1, 0.1))
    assert a.abs().max().item() <= 0.1 and a.std().item() > 0.03
    assert not torch.equal(a, example_starts(like, 0.1, 8, torch.arange(5)))
    assert len({example_seed(s, i) for s in range(3) for i in range(1000)}) == 3000


@pytest.mark.parametrize(("batch_size", "pool_size"), [(7, None), (16, 5), (40, 40), (13, 64)])
def test_per_example_starts_make_the_stream_exact(digits_net, digits_test, batch_size, pool_size):
    """With per-example starts the outcome of every point is exactly the same for any batch size and pool
    size: same predictions, breaking iterates and adversarial images (bit for bit)."""
    model = k_way(digits_net).eval()
    x, y = digits_test.tensors[0][:40], digits_test.tensors[1][:40]
    attack = EarlyStopPGD(model, eps=0.03, steps=6)

    def run(bs: int, pool: int | None) -> dict[str, torch.Tensor]:
        batches = [(x[i:i + bs], y[i:i + bs], torch.arange(i, min(i + bs, 40)),
                    example_starts(x[i:i + bs], 0.03, 1, torch.arange(i, min(i + bs, 40))))
                   for i in range(0, 40, bs)]
        got = {f: torch.zeros_like(v) for f, v in zip(PGDOutcome._fields, attack.perturb(x[:1], y[:1]))}
        got = {f: v.new_zeros((40, *v.shape[1:])) for f, v in got.items()}
        for done in attack.perturb_stream(batches, pool_size=pool):
            for f in PGDOutcome._fields:
                got[f][done.key] = getattr(done.outcome, f)
        return got

    want = {f: getattr(attack.perturb(x, y, start=example_starts(x, 0.03, 1, torch.arange(40))), f)
            for f in PGDOutcome._fields}
    got = run(batch_size, pool_size)
    assert 0 < int(want["broken"].sum()) < 40  # a non-trivial operating point
    for f in PGDOutcome._fields:
        assert torch.equal(got[f], want[f]), f
