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
