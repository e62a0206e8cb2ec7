"""Whether timm's pretrained weights can be had, decided in seconds (timm's own download retries for a minute)."""

from __future__ import annotations

import os
import socket
import urllib.parse
import urllib.request

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

    from ..errors import UserError

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

    from ..errors import UserError

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
