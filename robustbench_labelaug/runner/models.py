"""Models named by a config: zoo entries or checkpoints resolved to metadata (for model_info and fingerprints)
and loaded in eval mode."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..fileio import file_sha256, jsonable
from ..results.rules import is_number
from ..results.vocab import ADV_PLUS, ADVERSARIAL_MODES, DEFAULT_THREAT_MODEL, NO_POLICY, TRADES
from ..train.args import recorded_protocol, training_label
from ..zoo.entries import get_entry
from ..zoo.sources import load_source, resolve_source
from ..zoo.user import entry_model_meta
from .config import EvalConfig, ModelConfig
from .guards import recorded_class_names


class MissingCheckpoint(UserError):
    """A zoo model's checkpoint is not there yet; ``how``: the commands that make it."""

    def __init__(self, message: str, how: str) -> None:
        super().__init__(message)
        self.how = how


@dataclass
class ResolvedModel:
    """A model's metadata (for model_info and fingerprints) and how to load it."""

    config: ModelConfig
    meta: dict[str, Any]            # key, dataset, architecture, training, num_classes, num_ops, delta, ...
    fingerprint: dict[str, Any]     # what identifies the weights
    dataset_id: str
    reported: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return self.config.key


def zoo_entry(name: str) -> dict[str, Any]:
    """A model-zoo entry as a dict (fields as in ``model_zoo/*.yaml``)."""
    return get_entry(name).to_dict()


def zoo_fingerprint(name: str, entry: Mapping[str, Any], model_dir: str) -> dict[str, Any]:
    """What identifies a zoo model's weights: the published sha256, else the export's sidecar, else the file's
    own sha256; timm's pretrained weights for an entry that falls back to them."""
    from ..zoo.loading import checkpoint_path, read_sidecar  # deferred: torch (kept out of the CLI's start)

    path = checkpoint_path(get_entry(name), model_dir)
    if not path.is_file():
        if entry.get("pretrained_fallback"):
            return {"zoo": name, "weights": f"timm pretrained {entry.get('architecture')}"}
        zoo_entry_ = get_entry(name)
        how = (f"download {zoo_entry_.url} to {path}" if zoo_entry_.url else
               f"`{zoo_entry_.recipe}` then `{zoo_entry_.export_command(model_dir)}`")
        raise MissingCheckpoint(f"no checkpoint for zoo model '{name}' at {path}: `rbla zoo show {name}` prints the "
                                "commands that train and export it (or set runtime.model_dir)", how)
    sha = entry.get("sha256") or read_sidecar(path) or file_sha256(path)
    return {"zoo": name, "sha256": sha}


def _pick_dataset(cfg: EvalConfig, model: ModelConfig, dataset_name: str | None) -> str:
    if model.dataset is not None:
        return model.dataset
    if len(cfg.datasets) == 1:
        return next(iter(cfg.datasets))
    matches = [d.id for d in cfg.datasets.values() if dataset_name and d.name == dataset_name]
    if len(matches) == 1:
        return matches[0]
    raise UserError(f"model '{model.key}': cannot tell which of the datasets {', '.join(cfg.datasets) or '(none)'} "
                    "it is evaluated on: set its 'dataset' in the config")


# what a model is, which a config may declare where the model does not record it, never relabel where it does
RECORDED_FACTS = ("training", "delta", "eps")


def check_labels(key: str, declared: dict[str, Any], recorded: dict[str, Any]) -> None:
    """:class:`UserError` where the config declares a training fact (mode, delta, eps) that the checkpoint or zoo
    entry records otherwise: a result is labelled with what the model is."""
    for name in RECORDED_FACTS:
        given, found = declared.get(name), recorded.get(name)
        if given is None or found is None:
            continue
        same = math.isclose(float(given), float(found), rel_tol=1e-9) if is_number(given) and is_number(found) \
            else given == found
        if not same:
            where = f"checkpoint {recorded['checkpoint']}" if recorded.get("checkpoint") else \
                f"zoo entry '{recorded['zoo']}'" if recorded.get("zoo") else "its source"
            raise UserError(f"model '{key}': the config says {name}: {given!r} but {where} records {found!r}: drop "
                            f"{name} from the config (the results would be labelled as another model)")


def resolve_model(cfg: EvalConfig, model: ModelConfig) -> ResolvedModel:
    """Metadata of a zoo entry or checkpoint, config values overriding (a checkpoint's K and M must agree)."""
    overrides = {k: getattr(model, k) for k in ("training", "delta", "eps", "description", "paper")
                 if getattr(model, k) is not None}
    if model.robustbench or model.timm or model.python:
        dataset_id = _pick_dataset(cfg, model, None)
        spec = source_spec(model, cfg.datasets[dataset_id].name, model.threat_model)
        if model.python and spec["num_classes"] is None:  # K from the dataset registry
            d = cfg.datasets[dataset_id]
            spec["num_classes"] = d.dataset_spec.count_classes(d.data_dir)
        source = resolve_source(spec, cfg.runtime.model_dir)
        meta = {**source.meta(), "source": source.kind}
        fingerprint = source.fingerprint()
        reported = source.reported
    elif model.zoo:
        from ..zoo.loading import checkpoint_path  # deferred: torch (kept out of the CLI's start)

        entry = zoo_entry(model.zoo)
        fingerprint = zoo_fingerprint(model.zoo, entry, cfg.runtime.model_dir)
        # the entry, its checkpoint's training args, its departures from the recipe: as benchmark(load_model(name))
        meta = entry_model_meta(get_entry(model.zoo), cfg.runtime.model_dir, "rbla evaluate")

        names = recorded_class_names(checkpoint_path(get_entry(model.zoo), cfg.runtime.model_dir))
        if names:
            meta["class_names"] = names
        reported = model.reported if model.reported is not None else entry.get("reported")
        if meta.get("recipe_departures"):  # not the paper's recipe: no reported numbers either
            reported = model.reported
    else:
        # deferred: torch (kept out of the CLI's start)
        from ..train.checkpoint import read_checkpoint

        path = Path(model.checkpoint).expanduser()
        state = read_checkpoint(path)
        # deferred: torch (kept out of the CLI's start)
        from ..modelcheck import check_finite_state

        check_finite_state(state["state_dict"], f"model '{model.key}' (checkpoint {path})")
        args = state.get("args") or {}
        k, m = state.get("num_classes"), state.get("num_ops", 0)
        for name, given, found in (("num_classes", model.num_classes, k), ("num_ops", model.num_ops, m)):
            if given is not None and found is not None and given != found:
                raise UserError(f"model '{model.key}': the config says {name}={given} but checkpoint {path} has "
                                f"{found}: drop it from the config or fix it")

        mode = args.get("adv_mode")
        training = training_label(mode, args.get("fair", NO_POLICY), recorded_protocol(args))
        meta = {"dataset": args.get("dataset"), "architecture": model.arch or state.get("arch"),
                "training": training, "num_classes": k if k is not None else model.num_classes,
                "num_ops": m if m is not None else model.num_ops,
                "delta": args.get("la_delta") if mode == ADV_PLUS else None,
                "eps": args.get("adv_eps") if mode in (*ADVERSARIAL_MODES, TRADES) else None,
                "threat_model": model.threat_model, "checkpoint": str(path)}
        if state.get("class_names"):  # compared with the data's classes before evaluating (runner/guards.py)
            meta["class_names"] = [str(n) for n in state["class_names"]]
        if isinstance(args.get("input_size"), int):
            meta["input_size"] = args["input_size"]
        if meta["architecture"] is None or meta["num_classes"] is None:
            raise UserError(f"model '{model.key}': checkpoint {path} does not record its architecture/K: set "
                            "'arch' and 'num_classes' in the config")

        fingerprint = {"sha256": file_sha256(path)}  # the weights, wherever the file lies
        reported = model.reported
    check_labels(model.key, overrides, meta)
    meta.update(overrides)
    meta["key"] = model.key
    if model.stochastic:
        meta["stochastic"] = True  # declared: the report says so (model_info's footnote)
    default = meta.get("threat_model", DEFAULT_THREAT_MODEL)
    meta["threat_model"] = model.threat_model if model.threat_model != DEFAULT_THREAT_MODEL else default
    dataset_id = _pick_dataset(cfg, model, meta.get("dataset"))
    return ResolvedModel(model, meta, jsonable(fingerprint), dataset_id, reported)


def source_spec(model: ModelConfig, dataset: str | None, threat_model: str | None,
                num_classes: int | None = None) -> dict[str, Any]:
    """What :func:`~robustbench_labelaug.zoo.sources.resolve_source` takes for a robustbench/timm/python model."""
    return {"robustbench": model.robustbench, "timm": model.timm, "python": model.python,
            "checkpoint": model.checkpoint if model.python else None, "num_ops": model.num_ops,
            "pretrained_file": model.pretrained_file,
            "num_classes": model.num_classes if num_classes is None else num_classes,
            "dataset": dataset, "threat_model": threat_model or DEFAULT_THREAT_MODEL, "reported": model.reported,
            "base_dir": model.base_dir}


def load_resolved_model(model: ResolvedModel, model_dir: str):
    """The model in eval mode: through the zoo, or built from its checkpoint (strict load)."""
    if model.config.robustbench or model.config.timm or model.config.python:
        spec = source_spec(model.config, model.meta.get("dataset"),
                           model.meta.get("threat_model", DEFAULT_THREAT_MODEL), model.meta.get("num_classes"))
        return load_source(resolve_source(spec, model_dir))
    if model.config.zoo:
        # deferred: torch (kept out of the CLI's start)
        from ..zoo import load_model

        return load_model(model.config.zoo, model_dir=model_dir, dataset=model.meta.get("dataset"),
                          threat_model=model.meta.get("threat_model", DEFAULT_THREAT_MODEL))
    # deferred: torch (kept out of the CLI's start)
    from ..models import create_classifier

    # deferred: torch (kept out of the CLI's start)
    from ..train.checkpoint import load_weights, read_checkpoint

    path = Path(model.config.checkpoint).expanduser()
    state = read_checkpoint(path)
    net = create_classifier(model.meta["architecture"], int(model.meta["num_classes"]),
                            int(model.meta["num_ops"] or 0), mean=state.get("mean"), std=state.get("std"))
    load_weights(net, state["state_dict"], path)
    return net.eval()


