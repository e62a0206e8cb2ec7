"""`python: path/to/file.py:factory` / `module:callable` model sources with `checkpoint:` (plain state dict,
RobustBench's layout, `module.`-prefixed); bad references get one line each."""

from __future__ import annotations

import textwrap

import pytest
import torch

from robustbench_labelaug import UserError
from robustbench_labelaug.zoo.sources import load_source, python_source, resolve_source

NET = textwrap.dedent('''
    import torch
    from torch import nn

    class SmallNet(nn.Module):
        """inputs in [0,1], normalisation inside"""
        def __init__(self, k=10):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, stride=2)
            self.fc = nn.Linear(4 * 15 * 15, k)
        def forward(self, x):
            return self.fc(torch.relu(self.conv((x - 0.5) / 0.5)).flatten(1))

    def build():
        return SmallNet()

    def build_k_plus_m():
        return SmallNet(11)

    def broken():
        raise ValueError("no weights here")

    def not_a_model():
        return 42

    NUMBER = 3
''')


@pytest.fixture()
def user_code(tmp_path, monkeypatch):
    (tmp_path / "my_net.py").write_text(NET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.manual_seed(0)
    import importlib.util

    spec = importlib.util.spec_from_file_location("my_net_ref", tmp_path / "my_net.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.build()
    return tmp_path, net


@pytest.mark.parametrize("layout", ["plain", "robustbench", "module"])
def test_checkpoint_layouts_load_the_same_weights(user_code, layout):
    tmp, net = user_code
    sd = net.state_dict()
    state = {"plain": sd, "robustbench": {"state_dict": {f"model.{k}": v for k, v in sd.items()}},
             "module": {"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}}[layout]
    torch.save(state, tmp / "w.pt")
    for ref in ("my_net.py:build", "my_net:build"):
        model = load_source(python_source(ref, 10, "digits", "w.pt"))
        x = torch.rand(2, 3, 32, 32)
        torch.testing.assert_close(model(x), net.eval()(x))


def test_k_plus_m_head_is_evaluated_on_its_first_k_logits(user_code):
    model = load_source(resolve_source({"python": "my_net.py:build_k_plus_m", "num_classes": 10, "num_ops": 1,
                                        "dataset": "digits"}))
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("ref,checkpoint,message", [
    ("my_net.py", None, "is not a reference"),
    ("nowhere.py:build", None, "file nowhere.py does not exist"),
    ("no_such_module_xyz:build", None, "module 'no_such_module_xyz' cannot be found"),
    ("my_net.py:missing", None, "has no 'missing' .*build"),
    ("my_net.py:NUMBER", None, "non-callable 'NUMBER'"),
    ("my_net.py:broken", None, r"broken\(\) failed \(ValueError: no weights here\)"),
    ("my_net.py:not_a_model", None, "returned a int, not a torch.nn.Module"),
    ("my_net.py:build", "absent.pt", "checkpoint absent.pt .* does not exist"),
    ("my_net.py:build_k_plus_m", "w.pt", "does not fit"),
])
def test_bad_references_one_line_each(user_code, ref, checkpoint, message):
    tmp, net = user_code
    torch.save(net.state_dict(), tmp / "w.pt")
    with pytest.raises(UserError, match=message) as err:
        load_source(python_source(ref, 10, "digits", checkpoint))
    assert "\n" not in str(err.value)


def test_config_with_python_source_evaluates(user_code):
    from robustbench_labelaug.runner.config import load_config
    from robustbench_labelaug.runner.run import evaluate_config

    tmp, net = user_code
    torch.save({"state_dict": net.state_dict()}, tmp / "w.pt")
    (tmp / "cfg.yaml").write_text(textwrap.dedent('''
        runtime: {device: cpu, progress: false, plots: false}
        datasets: {digits: {name: digits, split: test}}
        models:
          - {python: my_net.py:build, checkpoint: w.pt, name: mine}
        evaluators:
          - {name: clean, settings: {n_examples: 30}}
    '''))
    written = evaluate_config(load_config(tmp / "cfg.yaml"), output=tmp / "out", leaderboard=False)
    import json

    info = json.loads(written[0].read_text())
    assert info["labelaug"]["model"] == "mine" and info["labelaug"]["num_classes"] == 10
    assert info["labelaug"]["results"]["clean"]["num_examples"] == 30
