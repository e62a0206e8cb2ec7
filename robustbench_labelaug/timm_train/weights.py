"""Where a timm-train run's starting weights came from (a file with its sha256, timm's tagged weights, or random
initialisation): recorded in the checkpoints' args (``rbla_pretrained_*``) and printed at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from ..fileio import file_sha256
from ..models.pretrained import pretrained_file


def starting_weights_record(model: nn.Module, pretrained: bool, file: str | None) -> dict[str, Any]:
    """Where the model's starting weights came from: a file (path and sha256, no tag: a tag would be timm's guess),
    timm's tagged weights (tag and, where the cached file is found, its sha256), or nothing."""
    if not pretrained:
        return {"source": "random"}
    if file:
        path = str(Path(file).resolve())
        return {"source": "file", "file": path, "sha256": file_sha256(path), "tag": None}
    cfg = getattr(model, "pretrained_cfg", None) or {}
    path = pretrained_file(model)
    arch = str(cfg.get("architecture") or "")
    tag = cfg.get("tag")
    return {"source": "timm", "tag": f"{arch}.{tag}" if arch and tag else tag, "file": path,
            "sha256": file_sha256(path) if path and Path(path).is_file() else None}


def describe_weights(record: dict[str, Any]) -> str:
    if record.get("source") == "file":
        return f"file {record['file']} (sha256 {record['sha256']})"
    if record.get("source") == "timm":
        digest = f" (sha256 {record['sha256']})" if record.get("sha256") else ""
        return f"timm's {record.get('tag')}{digest}"
    return "random"
