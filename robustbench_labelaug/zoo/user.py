"""A user's own zoo beside the packaged one, and honest provenance for exported checkpoints.

User zoo folders (entries ``<name>.yaml`` in the packaged entries' schema; checkpoints stay in RobustBench's
``<model_dir>/<dataset>/<threat_model>/<name>.pt`` layout), in this order of precedence:

1. ``--zoo DIR`` (``rbla zoo``, ``rbla evaluate``) or ``load_model(..., zoo=DIR)``: :func:`set_user_zoo`;
2. ``RBLA_ZOO`` (several folders separated by ``os.pathsep``);
3. ``./model_zoo`` in the working directory, where it exists (and is not the packaged folder itself).

``rbla zoo export --name NAME`` with a name that is not a packaged entry writes ``<user zoo>/<NAME>.yaml`` from the
checkpoint's recorded training args (``trained_with``) and the ``rbla train`` command that reproduces them
(``recipe``); it carries no paper. A user entry may not reuse a packaged name.

Provenance: :func:`recipe_departures` compares the args a checkpoint was trained with against an entry's recipe.
Where they depart, export and evaluation warn in one line, model_info records the args actually used and the
departures, and the paper's title and authors are not attached (the weights are not the paper's recipe).
"""

from __future__ import annotations

import argparse
import math
import shlex
import warnings
from pathlib import Path
from typing import Any

from ..data.registry import default_eps, preprocessing_of
from ..errors import UserError
from ..fileio import atomic_write_bytes, jsonable
from ..results.rules import DEFAULT_DELTA, DEFAULT_EPS
from ..results.vocab import (
    ADV,
    ADV_PLUS,
    ADVERSARIAL_MODES,
    NO_POLICY,
    STD,
    plain,
    recorded_protocol,
    training_label,
)
from ..safeload import load_torch
from ..train.args import add_arguments, resolve_defaults
from .entries import parse_recipe, validate_entry
from .folders import LOCAL_ZOO, ZOO_ENV, export_zoo_dir, set_user_zoo, user_zoo_dirs, using_zoo  # noqa: F401

# args that do not change what is trained (where and how the run was executed), left out of departures
NOT_RECIPE = frozenset({"config", "resume", "override_recipe", "output", "experiment", "recipe_overrides", "device",
                        "workers", "no_progress", "log_interval", "checkpoint_hist", "data_dir", "compile",
                        "pretrained_sha256", "skip_bad_images", "initial_checkpoint_sha256"})
# run-control args kept in trained_with (where the data were), never compared as a departure
RECORDED_ONLY = frozenset({"data_dir"})
TIMM_TRAIN = "rbla timm-train"  # the trainer a timm-train checkpoint records (train/checkpoint.from_timm_train)


def checkpoint_provenance(entry, model_dir: str | Path) -> dict[str, Any]:
    """What an entry's checkpoint was trained with: ``trained_with`` (the args it recorded, else the user
    entry's) and, for a packaged entry, ``recipe_departures`` from its recipe (empty: trained by the recipe)."""
    # deferred: torch (kept out of the CLI's start)
    from .loading import checkpoint_path

    path = checkpoint_path(entry, model_dir)
    args = None
    if path.is_file():
        try:
            state = load_torch(path, mmap=True)
            args = state.get("args") if isinstance(state, dict) else None
        except UserError:  # loading reports a damaged file with its own message
            args = None
    out: dict[str, Any] = {"trained_with": trained_with(args) if args else entry.trained_with}
    if entry.origin == "packaged" and args:
        out["recipe_departures"] = recipe_departures(entry.recipe, args, entry.source)
    return out


def entry_model_meta(entry, model_dir: str | Path, where: str) -> dict[str, Any]:
    """What a model_info says of ``entry``'s model whose checkpoint lies under ``model_dir``: the entry's facts
    (``ZooEntry.model_meta``), the training args the checkpoint recorded (:func:`checkpoint_provenance`) and, where
    they depart from the entry's recipe (one warning line naming ``where``), no paper authorship and a description
    that says so. ``rbla evaluate``'s ``zoo:`` models and ``benchmark(load_model(name))`` alike."""
    meta = entry.model_meta()
    meta.update(checkpoint_provenance(entry, model_dir))
    departures = meta.get("recipe_departures")
    if departures:  # not the paper's recipe: no paper authorship (and no reported numbers, the caller's)
        warn_departures(entry.name, departures, where)
        meta["paper"] = None
        meta["description"] = (f"{meta.get('description') or entry.name} — not trained by the zoo recipe "
                               f"({departures_text(departures)})")
    return meta


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def recipe_args(recipe: str, source: str = "entry") -> dict[str, Any]:
    return vars(resolve_defaults(parse_recipe(recipe, source)))


def recipe_departures(recipe: str, used: dict[str, Any], source: str = "entry") -> dict[str, list[Any]]:
    """``{flag: [recipe value, value used]}`` for every training flag where the args a checkpoint recorded
    (``used``) differ from the entry's ``rbla train`` recipe (run-control flags such as --output are ignored;
    label-augmentation flags only count for adv_plus runs)."""
    import argparse

    wanted = recipe_args(recipe, source)
    if "val_split" in used:  # both sides with their dependent defaults resolved as training resolves them
        used = vars(resolve_defaults(argparse.Namespace(**used)))
    mode = ADV_PLUS if wanted.get("label_aug") else wanted.get("adv_mode")
    out: dict[str, list[Any]] = {}
    for key, want in wanted.items():
        if key in NOT_RECIPE or key not in used:
            continue
        got = used[key]
        if key in ("la_delta", "la_ops") and mode != ADV_PLUS:
            continue
        if key == "initial_checkpoint":  # where the starting model lies is a path; whether there is one, not
            want, got = bool(want), bool(got)
        if key == "adv_mode" and used.get("label_aug") and got == ADV:
            got = ADV_PLUS
        if key in ("adv_eps", "adv_steps", "adv_alpha", "adv_prob", "adv_train_clean", "adv_attack_mode") \
                and mode == STD:
            continue
        if not _same(want, got):
            out["--" + key.replace("_", "-")] = [want, got]
    return out


def departures_text(departures: dict[str, list[Any]]) -> str:
    return ", ".join(f"{flag} {got} (recipe: {want})" for flag, (want, got) in departures.items())


def warn_departures(name: str, departures: dict[str, list[Any]], where: str) -> None:
    """One warning line naming the flags where a checkpoint departs from its entry's recipe."""
    if departures:
        warnings.warn(f"{where}: '{name}' was not trained by its zoo recipe: {departures_text(departures)}; "
                      "recorded in model_info, without the paper's authorship", UserWarning, stacklevel=3)


def trained_with(args: dict[str, Any]) -> dict[str, Any]:
    """The training args that define what was trained (run-control flags left out, the data folder kept),
    JSON-able."""
    return jsonable({k: v for k, v in sorted(args.items()) if k not in NOT_RECIPE - RECORDED_ONLY})


def timm_recipe(command: list[str], name: str) -> str:
    """The ``rbla timm-train ...`` command a timm-train run recorded, with ``--experiment`` set to ``name`` (as an
    ``rbla train`` recipe's), quoted for a shell."""
    words = [str(w) for w in command]
    if "--experiment" in words[:-1]:
        words[words.index("--experiment") + 1] = name
    else:
        words = [w for w in words if not w.startswith("--experiment=")] + ["--experiment", name]
    return shlex.join(words)


def recipe_from_args(args: dict[str, Any], name: str) -> str:
    """The ``rbla train`` command that reproduces a run from its recorded args (``--experiment`` = ``name``)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    words = ["rbla", "train"]
    mode = ADV_PLUS if args.get("label_aug") else args.get("adv_mode")
    shown = {"dataset", "model", "epochs", "lr", "batch_size", "seed", "adv_mode"}  # always written out
    shown |= {"adv_eps", "adv_steps"} if mode in ADVERSARIAL_MODES else set()
    shown |= {"la_delta", "la_ops"} if mode == ADV_PLUS else set()
    for action in parser._actions:
        dest = action.dest
        if dest in NOT_RECIPE or dest not in args or not action.option_strings:
            continue
        value, default = args[dest], action.default
        if value is None or (_same(value, default) and dest not in shown):
            continue
        flag = max(action.option_strings, key=len)
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            if bool(value) != bool(default):
                words.append(flag)
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        words += [flag, *(f"{v:g}" if isinstance(v, float) else str(v) for v in values)]
    words += ["--experiment", name]
    return " ".join(shlex.quote(w) for w in words)


def user_entry(state: dict[str, Any], name: str, dataset: str, threat_model: str, source: Path) -> dict[str, Any]:
    """A user zoo entry (the packaged schema) describing an exported checkpoint by its recorded args."""
    args = dict(state.get("args") or {})
    training = ADV_PLUS if args.get("label_aug") else args.get("adv_mode") or \
        (ADV_PLUS if int(state["num_ops"]) > 0 else STD)
    if training == ADV_PLUS and int(state["num_ops"]) < 1:
        training = ADV
    mode = training
    # e.g. adv_plus_cfa under --fair cfa, adv_mix for adv under --la-protocol authors
    training = training_label(mode, args.get("fair", NO_POLICY), recorded_protocol({**args, "adv_mode": mode}))
    eps = args.get("adv_eps") if mode != STD else None
    epochs, seed = args.get("epochs"), args.get("seed")
    return {
        "name": name,
        "description": f"exported by rbla zoo export from {source} ({training}, {args.get('model') or state['arch']}, "
                       f"{epochs} epochs, seed {seed})",
        "dataset": str(dataset), "threat_model": str(threat_model),  # plain strings: the entry is YAML
        "eps": float(eps) if eps else _threat_eps(dataset, threat_model),
        "architecture": str(state["arch"]), "num_classes": int(state["num_classes"]),
        "num_ops": int(state["num_ops"]),
        "delta": float(args.get("la_delta", DEFAULT_DELTA)) if mode == ADV_PLUS else None,
        "training": training, "preprocessing": preprocessing_of(dataset),
        "mean": [float(v) for v in state["mean"]], "std": [float(v) for v in state["std"]],
        "recipe": timm_recipe(args["command"], name) if args.get("trainer") == TIMM_TRAIN and args.get("command")
        else recipe_from_args({**args, "dataset": dataset}, name),
        "checkpoint": f"{name}.pt", "sha256": None, "url": None,
        "paper": None,
        # the dataset given at export where the run recorded none (timm's folder datasets), and the classes
        "trained_with": trained_with({**args, "dataset": args.get("dataset") or dataset,
                                      **({"class_names": list(state["class_names"])} if state.get("class_names")
                                         else {})}),
    }


def _threat_eps(dataset: str, threat_model: str) -> float:
    """A std model's entry eps: its dataset's threat model's (the registry's ``default_eps``), else the package's
    default eps (``results.rules.DEFAULT_EPS``)."""
    eps = default_eps(dataset, threat_model)
    return float(DEFAULT_EPS if eps is None else eps)


def write_user_entry(entry: dict[str, Any], folder: Path, overwrite: bool) -> Path:
    """Validate and write ``<folder>/<name>.yaml`` atomically (an existing different entry only with
    ``overwrite``)."""
    import yaml

    path = folder / f"{entry['name']}.yaml"
    validate_entry(entry, str(path))
    text = ("# written by rbla zoo export: the checkpoint's recorded training args (trained_with) and the rbla train\n"
            "# command that reproduces them (recipe); no paper is attached to a user's own model\n"
            + yaml.safe_dump(plain(entry), sort_keys=False))
    if path.is_file() and path.read_text() != text and not overwrite:
        raise UserError(f"user zoo entry {path} already exists with other contents: pass --overwrite to replace "
                        "it, or choose another --name")
    atomic_write_bytes(path, text.encode())
    return path


__all__ = ["LOCAL_ZOO", "TIMM_TRAIN", "ZOO_ENV", "departures_text", "entry_model_meta", "export_zoo_dir",
           "recipe_departures", "recipe_from_args", "set_user_zoo", "timm_recipe", "trained_with", "user_entry",
           "user_zoo_dirs", "using_zoo", "warn_departures", "write_user_entry"]
