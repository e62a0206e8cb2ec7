"""``rbla zoo export --timm``: a state dict that timm's own ``load_checkpoint`` (and so ``validate.py``) reads into
``timm.create_model(arch, num_classes=K)``, giving the K-way classifier's outputs."""

from __future__ import annotations

import pytest
import timm
import torch
from timm.models import load_checkpoint

from robustbench_labelaug import load_model
from robustbench_labelaug.cli import main as cli_main
from robustbench_labelaug.zoo.export import export_checkpoint, timm_checkpoint_path, write_timm_checkpoint

from .test_zoo import write_training_checkpoint


def _timm_model(path, arch, k):
    model = timm.create_model(arch, num_classes=k)
    load_checkpoint(model, str(path), strict=True, weights_only=True)
    return model.eval()


def test_cli_export_timm_loads_with_timm_and_matches_load_model(tmp_path, capsys):
    run = write_training_checkpoint(tmp_path / "run", "resnet8_tiny", 10, 1, "adv_plus")
    models = tmp_path / "models"
    assert cli_main(["zoo", "export", "--checkpoint", str(run), "--name", "digits_adv_plus", "--model-dir",
                     str(models), "--timm"]) == 0
    zoo_path = models / "digits" / "Linf" / "digits_adv_plus.pt"
    path = timm_checkpoint_path(zoo_path)
    out = capsys.readouterr().out
    assert str(path) in out and "--num-classes 10" in out and "--mean 0.5 0.5 0.5" in out

    # the zoo file itself does not load into a timm model (net./normalize. prefixes): that is why --timm exists
    with pytest.raises(RuntimeError, match="Unexpected key"):
        _timm_model(zoo_path, "resnet8_tiny", 11)

    ours = load_model("digits_adv_plus", model_dir=models)  # K-way, normalisation inside, [0,1] input
    theirs = _timm_model(path, "resnet8_tiny", 10)  # timm network, normalised input
    x = torch.rand(6, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(theirs((x - 0.5) / 0.5), ours(x), atol=1e-5)


@pytest.mark.parametrize("arch", ["mobilenetv3_small_050", "resnet8_tiny"])
@pytest.mark.parametrize("num_ops", [0, 2])
def test_timm_file_holds_the_k_class_rows(tmp_path, arch, num_ops):
    k = 4
    run = write_training_checkpoint(tmp_path / "run", arch, k, num_ops, "adv_plus" if num_ops else "std")
    zoo_path, _ = export_checkpoint(run, "my_model", tmp_path / "models")
    path = write_timm_checkpoint(zoo_path)
    state = torch.load(zoo_path, weights_only=True)
    full = timm.create_model(arch, num_classes=k + num_ops)
    full.load_state_dict({key[4:]: v for key, v in state["state_dict"].items() if key.startswith("net.")})
    mean, std = (torch.tensor(state[key]).view(1, 3, 1, 1) for key in ("mean", "std"))
    x = (torch.rand(3, 3, 32, 32) - mean) / std
    with torch.no_grad():
        assert torch.allclose(_timm_model(path, arch, k)(x), full.eval()(x)[:, :k], atol=1e-5)
    assert torch.load(path, weights_only=True)["num_classes"] == k
