"""``rbla zoo``: list the model-zoo entries (validating them), show one, export a training checkpoint into the zoo.

    rbla zoo list [--model-dir ./models] [--json]
    rbla zoo show digits_adv_plus
    rbla zoo export --checkpoint output/train/digits_adv_plus/last.pth.tar --name digits_adv_plus --model-dir ./models
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..data.registry import get_dataset_spec
from .entries import ZooEntry, get_entry, load_entries
from .loading import checkpoint_path, file_sha256, read_sidecar

HELP = "list model-zoo entries and their checkpoints, show one, or export a training checkpoint into the zoo"
__all__ = ["HELP", "add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    fmt = argparse.ArgumentDefaultsHelpFormatter

    p = sub.add_parser("list", help="all entries (validated) and the state of their checkpoints", formatter_class=fmt)
    p.add_argument("--model-dir", default="./models", help="root of <dataset>/<threat_model>/<name>.pt")
    p.add_argument("--json", action="store_true", help="print the entries as JSON")

    p = sub.add_parser("show", help="one entry, its checkpoint path and the commands that produce it",
                       formatter_class=fmt)
    p.add_argument("name", help="zoo model name")
    p.add_argument("--model-dir", default="./models", help="root of <dataset>/<threat_model>/<name>.pt")

    p = sub.add_parser("export", help="training checkpoint -> <model-dir>/<dataset>/<threat_model>/<name>.pt",
                       formatter_class=fmt)
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="a run's last.pth.tar (or checkpoint-N)")
    p.add_argument("--name", required=True, help="model name: a zoo entry (checked against it) or a new id")
    p.add_argument("--model-dir", default="./models", help="root of <dataset>/<threat_model>/<name>.pt")
    p.add_argument("--dataset", default=None, help="default: the entry's, else the run's --dataset")
    p.add_argument("--threat-model", default="Linf", help="Linf or L2")
    p.add_argument("--overwrite", action="store_true", help="replace an existing different file")
    p.add_argument("--timm", action="store_true",
                   help="also write <name>.timm.pth: the bare timm network with its K class rows, for "
                        "timm.models.load_checkpoint / timm's validate.py --num-classes K")


def checkpoint_status(entry: ZooEntry, model_dir: str | Path) -> str:
    """missing | sha256 ok | unverified (no sha256 known) | sha256 MISMATCH."""
    path = checkpoint_path(entry, model_dir)
    if not path.is_file():
        return "missing"
    expected = entry.sha256 or read_sidecar(path)
    if expected is None:
        return "unverified"
    return "sha256 ok" if file_sha256(path) == expected else "sha256 MISMATCH"


def _list(args: argparse.Namespace) -> int:
    entries = load_entries()
    if args.json:
        print(json.dumps({name: e.to_dict() for name, e in entries.items()}, indent=2))
        return 0
    header = ("name", "dataset", "training", "architecture", "K+M", "eps", "delta", "checkpoint")
    rows = [header] + [(e.name, e.dataset, e.training, e.architecture, f"{e.num_classes}+{e.num_ops}", f"{e.eps:g}",
                        "-" if e.delta is None else f"{e.delta:g}", checkpoint_status(e, args.model_dir))
                       for e in entries.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
    print(f"{len(entries)} entries, all valid; checkpoints under {args.model_dir}/<dataset>/<threat_model>/")
    return 0


def _show(args: argparse.Namespace) -> int:
    entry = get_entry(args.name)
    path = checkpoint_path(entry, args.model_dir)
    print(f"{entry.name}: {entry.description}")
    for key in ("dataset", "threat_model", "eps", "architecture", "num_classes", "num_ops", "delta", "training",
                "preprocessing", "sha256", "url"):
        print(f"  {key}: {getattr(entry, key)}")
    print(f"  entry file: {entry.source}")
    print(f"  checkpoint: {path} ({checkpoint_status(entry, args.model_dir)})")
    print(f"  train:  {entry.recipe}")
    print(f"  export: {entry.export_command(args.model_dir)}")
    if get_dataset_spec(entry.dataset).robustbench is not None:  # registered in RobustBench on import
        print(f"  robustbench: robustbench.utils.load_model('{entry.name}', model_dir='{args.model_dir}', "
              f"dataset='imagenet', threat_model='{entry.threat_model}') after import robustbench_labelaug")
    if entry.reported:
        print(f"  reported (paper): {json.dumps(entry.reported)}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export_checkpoint

    path, sha = export_checkpoint(args.checkpoint, args.name, args.model_dir, args.dataset, args.threat_model,
                                  overwrite=args.overwrite)
    print(f"exported {args.checkpoint} -> {path} (sha256 {sha}, recorded in {path.name}.sha256)")
    if args.timm:
        from .export import write_timm_checkpoint

        state = torch.load(path, map_location="cpu", weights_only=True)
        timm_path = write_timm_checkpoint(path)
        mean, std = (" ".join(f"{v:g}" for v in state[key]) for key in ("mean", "std"))
        print(f"timm: {timm_path} (timm's validate.py --model {state['arch']} --num-classes {state['num_classes']} "
              f"--checkpoint {timm_path} --mean {mean} --std {std})")
    return 0


def main(args: argparse.Namespace) -> int:
    return {"list": _list, "show": _show, "export": _export}[args.action](args)
