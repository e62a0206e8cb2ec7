"""Models that answer differently each call (issue 30, family 4): before scoring, every evaluation path runs a
small fixed batch twice and at two batch sizes (modelcheck.check_consistent_outputs); differing logits stop the run
with one line naming the cause, unless the model is declared stochastic (then the report says so and AutoAttack
runs its randomised version)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from robustbench_labelaug import UserError
from robustbench_labelaug.modelcheck import check_consistent_outputs, output_inconsistency


class Tiny(nn.Module):
    """A small deterministic digits classifier (inputs in [0,1])."""

    def __init__(self, k: int = 10, norm: nn.Module | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = norm if norm is not None else nn.Identity()
        self.fc = nn.Linear(4, k)

    def features(self, x):
        return torch.relu(self.norm(self.conv(x))).mean((2, 3))

    def forward(self, x):
        return self.fc(self.features(x))


class DropoutLeftOn(Tiny):
    """Dropout that stays on: its ``train()`` ignores eval()."""

    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def train(self, mode: bool = True):
        super().train(mode)
        self.drop.training = True
        return self

    def forward(self, x):
        return self.fc(self.drop(self.features(x)))


class NoisyLogits(Tiny):
    def forward(self, x):
        out = super().forward(x)
        return out + 0.5 * torch.randn_like(out)


class Alternating(Tiny):
    """Every other call answers with the logits reversed."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        out = super().forward(x)
        return out.flip(-1) if self.calls % 2 == 0 else out


class BatchNormInTrainMode(Tiny):
    def __init__(self):
        super().__init__(norm=nn.BatchNorm2d(4))
        with torch.no_grad():
            self.fc.weight.mul_(20)

    def train(self, mode: bool = True):
        super().train(mode)
        self.norm.training = True  # left in train mode: batch statistics
        return self


def _digits_images(n: int = 8) -> torch.Tensor:
    from robustbench_labelaug.data import create_dataset

    ds = create_dataset("digits", None, "test")
    return torch.stack([ds[i][0] for i in range(n)])


@pytest.mark.parametrize("model, cause", [
    (DropoutLeftOn, "module 'drop' (Dropout) is in training mode"),
    (NoisyLogits, "randomness in its forward"),
    (Alternating, "the same 8 images gave logits differing"),
    (BatchNormInTrainMode, "module 'norm' (BatchNorm2d) is in training mode"),
    (lambda: Tiny(norm=nn.BatchNorm2d(4, track_running_stats=False)), "track_running_stats=False"),
])
def test_models_that_answer_differently_are_named(model, cause):
    torch.manual_seed(0)
    net = model().eval()
    problem = output_inconsistency(net, _digits_images())
    assert problem is not None and cause in problem, problem


def test_a_deterministic_model_passes_and_keeps_its_mode_and_buffers():
    torch.manual_seed(0)
    net = Tiny(norm=nn.BatchNorm2d(4)).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    from robustbench_labelaug.data import create_dataset

    assert check_consistent_outputs(net, create_dataset("digits", None, "test")) is None
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    bn_train = BatchNormInTrainMode()
    stats = bn_train.norm.running_mean.clone()
    with pytest.raises(UserError):
        check_consistent_outputs(bn_train, create_dataset("digits", None, "test"))
    assert torch.equal(bn_train.norm.running_mean, stats)  # the check leaves the running statistics alone


@pytest.mark.slow
def test_benchmark_refuses_then_evaluates_a_declared_stochastic_model(tmp_path):
    from robustbench_labelaug import benchmark

    torch.manual_seed(0)
    with pytest.raises(UserError) as info:
        benchmark(NoisyLogits(), evaluators=("clean",), n_examples=20, to_disk=True, output=tmp_path / "out")
    message = str(info.value)
    assert "answers differently each call" in message and "stochastic=True" in message and "\n" not in message
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]  # nothing written
    report = benchmark(NoisyLogits(), evaluators=("clean", ("autoattack", {"eps": 0.05})), n_examples=10,
                       to_disk=True, output=tmp_path / "out", stochastic=True)
    assert report.results["autoattack"]["settings"]["version"] == "rand"
    info = json.loads((tmp_path / "out" / "model_info" / "NoisyLogits.json").read_text())
    assert info["labelaug"]["stochastic"] is True and "declared stochastic" in info["footnote"]
