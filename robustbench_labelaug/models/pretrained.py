"""Whether timm's pretrained weights can be had, decided in seconds (timm's own download retries for a minute)."""

from __future__ import annotations

import os
import socket
import urllib.parse
import urllib.request

from ..errors import UserError

NETWORK_PROBE_TIMEOUT_S = 3.0


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _pretrained_cached(architecture: str) -> bool:
    """Whether timm's default pretrained file for ``architecture`` is in the local Hugging Face cache."""
    try:
        import timm
        from huggingface_hub import try_to_load_from_cache

        cfg = timm.models.get_pretrained_cfg(architecture)
        repo = getattr(cfg, "hf_hub_id", None)
        if not repo:
            return False
        return any(isinstance(try_to_load_from_cache(repo, f), str)
                   for f in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"))
    except Exception:  # noqa: BLE001 - any failure here just means "not known to be cached"
        return False


def _offline_reason() -> str | None:
    """Why the weights hub is unreachable, or None when a connection opens within a few seconds."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if _truthy(var):
            return f"{var} is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    proxy = urllib.request.getproxies().get("https")
    url = urllib.parse.urlsplit(proxy or endpoint)
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    if host is None:
        return f"cannot parse the hub address {proxy or endpoint!r}"
    try:
        socket.create_connection((host, port), timeout=NETWORK_PROBE_TIMEOUT_S).close()
    except OSError as exc:
        return f"{host}:{port} is unreachable ({type(exc).__name__})"
    return None


def pretrained_unavailable(architecture: str) -> str | None:
    """None when ``architecture``'s pretrained file is cached or the hub answers; else the reason it cannot be
    fetched."""
    return None if _pretrained_cached(architecture) else _offline_reason()


# -- tagged architectures and the starting weights ------------------------------------------------------------------
def split_tag(model_name: str) -> tuple[str, str | None]:
    """``resnet50.tv_in1k`` -> ``("resnet50", "tv_in1k")``; an untagged name gives ``(name, None)``."""
    arch, _, tag = str(model_name).partition(".")
    return arch, tag or None


def same_architecture(a: str, b: str) -> bool:
    """Whether two timm names are the same network: equal without their pretrained tags, and equal tags where both
    have one (``resnet50`` matches ``resnet50.tv_in1k``, which differs from ``resnet50.a1_in1k``)."""
    (arch_a, tag_a), (arch_b, tag_b) = split_tag(a), split_tag(b)
    return arch_a == arch_b and (tag_a is None or tag_b is None or tag_a == tag_b)


def resolve_pretrained_name(model_name: str, tag: str | None = None) -> str:
    """The tagged timm name whose weights ``--pretrained`` loads: ``model_name``'s own tag, else ``tag`` (a bare tag
    or a full ``arch.tag``), else timm's default tag for the architecture (recorded, so the choice is explicit)."""
    from timm.models import get_pretrained_cfg

    arch, own = split_tag(model_name)
    if tag:
        tag_arch, tag_tag = split_tag(tag)
        if tag_tag is not None:
            if tag_arch != arch:
                raise UserError(f"--pretrained-tag {tag} is for '{tag_arch}' but --model is '{arch}': pass a tag of "
                                f"{arch} (e.g. {arch}.tv_in1k) or its bare tag")
            tag = tag_tag
    if own and tag and own != tag:
        raise UserError(f"--model {model_name} and --pretrained-tag {tag} name different weights: give the tag once")
    tag = own or tag
    try:
        cfg = get_pretrained_cfg(f"{arch}.{tag}" if tag else arch)
    except RuntimeError:
        cfg = None
    if cfg is None or not getattr(cfg, "tag", None):
        what = f"pretrained tag '{tag}'" if tag else "pretrained weights"
        raise UserError(f"timm has no {what} for '{arch}': drop --pretrained, or pick a tag from "
                        f"timm.list_pretrained('{arch}.*')")
    return f"{arch}.{cfg.tag}"


def pretrained_file(net) -> str | None:
    """The local file timm loaded ``net``'s pretrained weights from (a ``file`` overlay, or the Hugging Face cache),
    or None when it cannot be located."""
    cfg = getattr(net, "pretrained_cfg", None) or {}
    if cfg.get("file"):
        return str(cfg["file"])
    repo = cfg.get("hf_hub_id")
    if repo:
        try:
            from huggingface_hub import try_to_load_from_cache

            for name in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
                path = try_to_load_from_cache(repo, cfg.get("hf_hub_filename") or name)
                if isinstance(path, str):
                    return path
        except Exception:  # noqa: BLE001 - unknown cache layout: not locatable
            return None
    return None


def extend_head(net, num_outputs: int, extra_init: str = "zeros") -> None:
    """Grow ``net``'s K-way linear classifier to ``num_outputs`` rows in place: the first K rows (weights and bias)
    are the K-way head's, the extra rows are zeros (``extra_init="zeros"``: the extra logits start at 0 and the
    first K logits equal the K-way model's) or the mean of the K class rows (``"mean"``)."""
    import torch
    from torch import nn

    old = net.get_classifier()
    if not isinstance(old, nn.Linear):
        raise UserError(f"cannot extend the {type(old).__name__} classifier of {type(net).__name__} to {num_outputs} "
                        "outputs: use a model whose head is one nn.Linear (e.g. a ResNet), or drop --pretrained")
    k = old.out_features
    weight, bias = old.weight.detach().clone(), None if old.bias is None else old.bias.detach().clone()
    net.reset_classifier(num_outputs)
    new = net.get_classifier()
    if not isinstance(new, nn.Linear) or new.out_features != num_outputs or new.in_features != old.in_features:
        raise UserError(f"{type(net).__name__}.reset_classifier({num_outputs}) did not give a {old.in_features}->"
                        f"{num_outputs} linear head: drop --pretrained for this model")
    with torch.no_grad():
        new.weight[:k] = weight
        new.weight[k:] = 0.0 if extra_init == "zeros" else weight.mean(0, keepdim=True)
        if new.bias is not None:
            new.bias[:k] = bias if bias is not None else 0.0
            new.bias[k:] = 0.0 if extra_init == "zeros" or bias is None else bias.mean()


# -- one head rule for every door (rbla train, rbla timm-train) and every mode -----------------------------------------
def pretrained_head_width(model_name: str, file: str | None = None) -> int | None:
    """Rows of the pretrained classifier ``model_name`` would start from: those of the classifier weight in
    ``file`` when a local file is given (read as timm reads it), else timm's pretrained config's ``num_classes``.
    None when it cannot be told (no pretrained config, no classifier in the file)."""
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(model_name)
    except RuntimeError:
        cfg = None
    if file is None:
        return getattr(cfg, "num_classes", None) if cfg is not None else None
    from timm.models import load_state_dict

    classifier = getattr(cfg, "classifier", None) if cfg is not None else None
    if isinstance(classifier, (tuple, list)):
        classifier = classifier[0] if classifier else None
    try:
        state = load_state_dict(str(file))
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"pretrained weights file {file} cannot be read ({type(exc).__name__}: {exc}): pass a "
                        ".pth/.bin/.safetensors state dict of the model") from None
    weight = state.get(f"{classifier}.weight") if classifier else None
    return int(weight.shape[0]) if weight is not None and weight.dim() >= 1 else None


def head_rule(pretrained: bool, width: int | None, num_classes: int, num_ops: int) -> str:
    """The one line that says how the run's head starts (the same rule for std, adv and adv_plus)."""
    if not pretrained:
        return f"head: no pretrained weights: a random {num_classes + num_ops}-output head (K={num_classes}, M={num_ops})"
    if width == num_classes:
        extra = f"; adv_plus adds M={num_ops} zero row(s)" if num_ops else ""
        return (f"head: the pretrained head has K={num_classes} rows: every mode keeps it{extra} "
                f"({num_classes + num_ops} outputs)")
    has = f"{width} rows" if width is not None else "no known width"
    return (f"head: the pretrained head has {has}, not K={num_classes}: every mode starts a fresh random "
            f"{num_classes + num_ops}-output head on the pretrained body")


def create_with_head_rule(create, model_name: str, num_classes: int, num_ops: int = 0, *, pretrained: bool = False,
                          extra_head_init: str = "zeros", **kwargs):
    """``create(model_name, pretrained=..., num_classes=..., **kwargs)`` (timm's ``create_model``) under the head
    rule: with pretrained weights whose head has K rows, every mode keeps that head (a K-way model is created and
    loaded strictly; adv_plus then grows it by M rows, zeros by default, see :func:`extend_head`); with a head of
    another width (or none), every mode gets a fresh K+M head (timm's head adaptation is forced, also when K+M
    happens to equal the pretrained width). A ``pretrained_cfg_overlay`` ``file`` is read to learn its head's
    width. Returns ``(model, rule)``, ``rule`` the one line :func:`head_rule` says."""
    overlay = dict(kwargs.pop("pretrained_cfg_overlay", None) or {})
    checkpoint_path = kwargs.pop("checkpoint_path", None)
    width = pretrained_head_width(model_name, overlay.get("file")) if pretrained else None
    keep = pretrained and width == num_classes
    if pretrained:
        overlay["num_classes"] = num_classes if keep else -1  # -1: timm drops the pretrained head (adaptation)
    if overlay:
        kwargs["pretrained_cfg_overlay"] = overlay
    net = create(model_name, pretrained=pretrained, num_classes=num_classes if keep else num_classes + num_ops,
                 **kwargs)
    if keep and num_ops:
        extend_head(net, num_classes + num_ops, extra_head_init)
    if checkpoint_path:  # timm's initial checkpoint goes into the model as it will be trained
        from timm.models import load_checkpoint

        load_checkpoint(net, checkpoint_path)
    return net, head_rule(pretrained, width, num_classes, num_ops)
