"""``rbla zoo``: list the model-zoo entries (validating them), show one, export a training checkpoint into the zoo.

    rbla zoo list [--model-dir ./models] [--json]
    rbla zoo show digits_adv_plus
    rbla zoo export --checkpoint output/train/digits_adv_plus/last.pth.tar --name digits_adv_plus --model-dir ./models
    rbla zoo export --checkpoint output/train/my_run/last.pth.tar --name my_advplus    # -> ./model_zoo/my_advplus.yaml

Every action takes ``--zoo DIR``: a user zoo folder beside the packaged entries (default: ``RBLA_ZOO``, else
``./model_zoo`` where it exists).
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from ..data.registry import get_dataset_spec
from ..errors import UserError
from ..fileio import file_sha256
from ..results.vocab import ATTACK_THREAT_MODELS, DEFAULT_THREAT_MODEL
from ..safeload import load_torch
from .entries import ZooEntry, get_entry, load_entries
from .folders import using_zoo, zoo_dir

HELP = "list model-zoo entries and their checkpoints, show one, or export a training checkpoint into the zoo"
__all__ = ["HELP", "add_arguments", "main"]


def _entry_names() -> list[str]:
    """The packaged entries' names (for --help; the YAML files' stems, so --help stays cheap)."""
    try:
        return sorted(p.stem for p in zoo_dir().glob("*.yaml"))
    except Exception:  # noqa: BLE001 - --help must not fail on a broken install
        return ["(see rbla zoo list)"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    fmt = argparse.ArgumentDefaultsHelpFormatter

    zoo_help = "user zoo folder (default: $RBLA_ZOO, else ./model_zoo where it exists)"
    p = sub.add_parser("list", help="all entries (validated) and the state of their checkpoints", formatter_class=fmt)
    p.add_argument("--zoo", default=None, metavar="DIR", help=zoo_help)
    p.add_argument("--model-dir", default="./models", help="root of <dataset>/<threat_model>/<name>.pt")
    p.add_argument("--json", action="store_true", help="print the entries as JSON")

    p = sub.add_parser("show", help="one entry, its checkpoint path and the commands that produce it",
                       formatter_class=fmt)
    p.add_argument("name", help="zoo model name: " + ", ".join(_entry_names()))
    p.add_argument("--zoo", default=None, metavar="DIR", help=zoo_help)
    p.add_argument("--model-dir", default="./models", help="root of <dataset>/<threat_model>/<name>.pt")
    p.add_argument("--json", action="store_true",
                   help="print the whole entry as JSON, every recorded training arg included")

    p = sub.add_parser("export", help="training checkpoint -> <model-dir>/<dataset>/<threat_model>/<name>.pt",
                       formatter_class=fmt)
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="a run's last.pth.tar (or checkpoint-N)")
    p.add_argument("--name", required=True, help="model name: a packaged zoo entry (checked against it) or a new id "
                   "(its entry is written to the user zoo)")
    p.add_argument("--zoo", default=None, metavar="DIR",
                   help="user zoo folder a new name's entry goes to (default: $RBLA_ZOO, else ./model_zoo)")
    p.add_argument("--model-dir", default="./models", help="root of <dataset>/<threat_model>/<name>.pt")
    p.add_argument("--dataset", default=None, help="default: the entry's, else the run's --dataset")
    p.add_argument("--threat-model", default=DEFAULT_THREAT_MODEL, help=" or ".join(ATTACK_THREAT_MODELS))
    p.add_argument("--overwrite", action="store_true", help="replace an existing different file")
    p.add_argument("--timm", action="store_true",
                   help="also write <name>.timm.pth: the bare timm network with its K class rows, for "
                        "timm.models.load_checkpoint / timm's validate.py --num-classes K")


def checkpoint_status(entry: ZooEntry, model_dir: str | Path) -> str:
    """missing | sha256 ok | unverified (no sha256 known) | sha256 MISMATCH."""
    # deferred: torch (kept out of the CLI's start)
    from .loading import checkpoint_path, read_sidecar

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
    user = any(e.origin != "packaged" for e in entries.values())  # a "zoo" column only beside a user zoo
    header = ("name", "dataset", "training", "architecture", "K+M", "eps", "delta", "checkpoint") + \
        (("zoo",) if user else ())
    rows = [header] + [(e.name, e.dataset, e.training, e.architecture, f"{e.num_classes}+{e.num_ops}", f"{e.eps:g}",
                        "-" if e.delta is None else f"{e.delta:g}", checkpoint_status(e, args.model_dir))
                       + ((e.origin,) if user else ()) for e in entries.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
    print(f"{len(entries)} entries, all valid; checkpoints under {args.model_dir}/<dataset>/<threat_model>/")
    return 0


def readable_command(command: str, width: int = 100, indent: str = "          ") -> str:
    """A shell command on lines of at most ``width`` characters (where its words allow), continued with ``\\``:
    each flag stays on one line with its values."""
    words = shlex.split(command)
    groups: list[list[str]] = []
    for w in words:
        if w.startswith("-") or not groups or not groups[-1][0].startswith("-"):  # a flag, or a leading word
            groups.append([w])
        else:
            groups[-1].append(w)
    lines, line = [], ""
    for g in groups:
        text = shlex.join(g)
        if line and len(line) + 1 + len(text) > width - 2:
            lines.append(line)
            line = text
        else:
            line = f"{line} {text}" if line else text
    lines.append(line)
    return (" \\\n" + indent).join(lines)


def _trained_with_summary(entry: ZooEntry) -> str:
    """The recorded training args in one short line: the data (dataset, folder, classes) and how many args."""
    tw = entry.trained_with or {}
    parts = [f"dataset {tw.get('dataset') or entry.dataset}"]
    if tw.get("data_dir"):
        parts.append(f"data folder {tw['data_dir']}")
    names = tw.get("class_names")
    if names:
        shown = ", ".join(str(n) for n in names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")
        parts.append(f"classes {shown}")
    parts.append(f"{len(tw)} recorded args (all: rbla zoo show {entry.name} --json)")
    return "; ".join(parts)


def _show(args: argparse.Namespace) -> int:
    # deferred: torch (kept out of the CLI's start)
    from .loading import checkpoint_path

    entry = get_entry(args.name)
    path = checkpoint_path(entry, args.model_dir)
    if args.json:
        print(json.dumps({**entry.to_dict(), "checkpoint_path": str(path),
                          "checkpoint_status": checkpoint_status(entry, args.model_dir),
                          "export": entry.export_command(args.model_dir)}, indent=2))
        return 0
    print(f"{entry.name}: {entry.description}")
    for key in ("dataset", "threat_model", "eps", "architecture", "num_classes", "num_ops", "delta", "training",
                "preprocessing", "sha256", "url"):
        print(f"  {key}: {getattr(entry, key)}")
    print(f"  entry file: {entry.source}" + ("" if entry.origin == "packaged" else " (user zoo)"))
    if entry.trained_with:
        print(f"  trained with: {_trained_with_summary(entry)}")
    print(f"  checkpoint: {path} ({checkpoint_status(entry, args.model_dir)})")
    if entry.starts_from:  # a fine-tuned entry: its hot start is trained (and exported) first
        start = get_entry(entry.starts_from)
        print(f"  starts from: {start.name} (train it first: {readable_command(start.recipe)})")
    print(f"  train:  {readable_command(entry.recipe)}")
    print(f"  export: {entry.export_command(args.model_dir)}")
    if get_dataset_spec(entry.dataset).robustbench is not None:  # registered in RobustBench on import
        print(f"  robustbench: robustbench.utils.load_model('{entry.name}', model_dir='{args.model_dir}', "
              f"dataset='imagenet', threat_model='{entry.threat_model}') after import robustbench_labelaug")
    if entry.reported:
        print(f"  reported (paper): {json.dumps(entry.reported)}")
    return 0


def _export(args: argparse.Namespace) -> int:
    # deferred: torch (kept out of the CLI's start)
    from .export import export_checkpoint

    exported = export_checkpoint(args.checkpoint, args.name, args.model_dir, args.dataset, args.threat_model,
                                 overwrite=args.overwrite, zoo=args.zoo)
    path, sha, entry = exported.path, exported.sha256, exported.entry
    print(f"exported {args.checkpoint} -> {path} (sha256 {sha}, recorded in {path.name}.sha256)")
    if entry is not None:
        print(f"user zoo entry: {entry} (load_model('{args.name}', model_dir='{args.model_dir}') finds it"
              + (f" with --zoo {args.zoo} / RBLA_ZOO" if args.zoo else "") + ")")
    if args.timm:
        # deferred: torch (kept out of the CLI's start)
        from .export import write_timm_checkpoint

        state = load_torch(path)
        timm_path = write_timm_checkpoint(path)
        mean, std = (" ".join(f"{v:g}" for v in state[key]) for key in ("mean", "std"))
        print(f"timm: {timm_path} (timm's validate.py --model {state['arch']} --num-classes {state['num_classes']} "
              f"--checkpoint {timm_path} --mean {mean} --std {std})")
    return 0


def main(args: argparse.Namespace) -> int:
    if getattr(args, "zoo", None) and args.action == "export":
        zoo = Path(args.zoo).expanduser()
        blocker = next((p for p in (zoo, *zoo.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise UserError(f"--zoo {args.zoo} cannot be a user zoo folder: {blocker} is a file, not a folder: pass "
                            "a folder (created if missing)")
        zoo.mkdir(parents=True, exist_ok=True)
    with using_zoo(getattr(args, "zoo", None)):
        return {"list": _list, "show": _show, "export": _export}[args.action](args)
