"""Model-zoo entries: one YAML file per model in ``model_zoo/`` (installed as ``robustbench_labelaug.model_zoo``),
checked against the pydantic schema :class:`.schema.EntrySchema` and against its own ``rbla train`` recipe.

Fields (all required unless marked optional):

- ``name``: the model's id, equal to the file name (``<name>.yaml``) and to the recipe's ``--experiment``;
- ``dataset`` (a registered dataset with a fixed K: ``digits``, ``imagenet``, ...), ``threat_model`` (``Linf`` | ``L2``), ``eps`` (in (0, 1], [0,1] pixel units);
- ``architecture`` (timm model name), ``num_classes`` K, ``num_ops`` M (0 for std/adv, >= 1 for adv_plus);
- ``training`` (``std`` | ``adv`` | ``adv_plus`` | ``trades``, with ``_cfa`` / ``_frl`` for a run under that
  ``--fair`` policy, e.g. ``adv_plus_cfa``), ``delta`` (label-augmentation weight; null unless adv_plus);
- ``preprocessing`` (RobustBench's name, e.g. ``Res256Crop224``; ``none`` for 32x32 digits), ``mean``, ``std``;
- ``recipe``: the exact ``rbla train ...`` command that produces the weights (a model trained through timm's
  ``train.py``: its ``rbla timm-train ...`` command, as the run recorded it);
- ``checkpoint`` (``<name>.pt``), ``sha256`` (of the published file, or null), ``url`` (optional, or null);
- ``paper``: ``{title, authors, url?, venue?, note?}`` (optional: null for a user's own model);
- ``trained_with`` (optional): the training args a checkpoint recorded (user entries written by ``rbla zoo export``);
- ``reported`` (optional): the paper's numbers, errors in percent (``clean_error``, ``mce``, ``pgd_error``,
  ``real_error``, ``autoattack_error``, ``classwise: {clean|real|pgd|autoattack: {mean, sd}}``, ``source``, ``note``);
  measured numbers never go here (``rbla evaluate`` writes them into model_info files);
- ``description`` (optional), ``pretrained_fallback`` (optional bool: without a checkpoint, ``load_model`` may
  start from timm's pretrained weights of ``architecture``);
- ``starts_from`` (optional): the zoo entry whose trained weights the recipe fine-tunes (FRL's hot start); the
  recipe's ``--initial-checkpoint`` is then that entry's run folder's ``last.pth.tar`` (``rbla demo`` trains it
  first and points the flag at its own copy).
"""

from __future__ import annotations

import argparse
import math
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..data import dataset_num_classes
from ..errors import UserError
from ..results.rules import is_number, label_aug_problem
from ..results.vocab import ADV_PLUS, STD, default_protocol, parse_training_label, training_label
from ..timm_train.cli import add_arguments as add_timm_train_arguments
from ..train.args import add_arguments
from ..yamlio import load_yaml
from .folders import ZOO_ENV, ZOO_PACKAGE, user_zoo_dirs, zoo_dir  # noqa: F401  (zoo_dir, ZOO_PACKAGE re-exported)
from .schema import FIELDS, NAME_RE, SHA256_RE, parse_entry, zoo_datasets  # noqa: E402,F401  (re-exported: the schema is their one home)


@dataclass(frozen=True)
class ZooEntry:
    """One validated model-zoo entry (see the module docstring for the fields)."""

    name: str
    dataset: str
    threat_model: str
    eps: float
    architecture: str
    num_classes: int
    num_ops: int
    delta: float | None
    training: str
    preprocessing: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    recipe: str
    checkpoint: str
    sha256: str | None
    paper: dict[str, Any] | None
    url: str | None = None
    reported: dict[str, Any] | None = None
    description: str = ""
    pretrained_fallback: bool = False
    trained_with: dict[str, Any] | None = None
    starts_from: str | None = None
    source: str = field(default="", compare=False)  # the YAML file it came from
    origin: str = field(default="packaged", compare=False)  # "packaged" or the user zoo folder

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out

    def model_meta(self) -> dict[str, Any]:
        """What a model_info says of this entry's model (architecture, training, K, M, delta, training eps, paper,
        ...): the same for ``rbla evaluate``'s ``zoo:`` models and ``benchmark(load_model(name))``."""
        return {"dataset": self.dataset, "architecture": self.architecture, "training": self.training,
                "num_classes": self.num_classes, "num_ops": self.num_ops, "delta": self.delta, "eps": self.eps,
                "threat_model": self.threat_model, "paper": self.paper, "description": self.description or None,
                "preprocessing": self.preprocessing, "zoo": self.name}

    @property
    def run_dir(self) -> str:
        """The training run folder the recipe writes (``<--output>/<--experiment>``)."""
        args = parse_recipe(self.recipe, self.source or self.name)
        return f"{args.output.rstrip('/')}/{args.experiment}"

    def export_command(self, model_dir: str | Path = "./models") -> str:
        """The ``rbla zoo export`` command that turns the recipe's run into this entry's checkpoint."""
        return (f"rbla zoo export --checkpoint {self.run_dir}/last.pth.tar --name {self.name} "
                f"--model-dir {model_dir}")


# ------------------------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------------------------


class _RecipeParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print and exit
        raise UserError(message)


def parse_recipe(recipe: str, source: str = "entry") -> argparse.Namespace:
    """The ``rbla train`` arguments of a recipe, parsed with the real ``rbla train`` flags; a ``rbla timm-train``
    recipe (a timm-train run's own command) by :func:`parse_timm_recipe`."""
    try:
        words = shlex.split(recipe)
    except ValueError as exc:
        raise UserError(f"zoo entry {source}: recipe is not a valid shell command ({exc}): fix its quoting") from None
    if words[:2] == ["rbla", "timm-train"]:
        return parse_timm_recipe(words[2:], source)
    if words[:2] != ["rbla", "train"]:
        raise UserError(f"zoo entry {source}: recipe must start with `rbla train`, got {recipe!r}")
    parser = _RecipeParser(prog="rbla train", add_help=False)
    add_arguments(parser)
    try:
        return parser.parse_args(words[2:])
    except UserError as exc:
        raise UserError(f"zoo entry {source}: recipe does not parse as `rbla train` flags ({exc}): "
                        "fix it (see `rbla train --help`)") from None


def recipe_training_label(args: argparse.Namespace) -> str | None:
    """The training label a parsed recipe trains (``--adv-mode``, ``--label-aug``, ``--fair``, ``--la-protocol``
    with its per-mode default)."""
    mode = ADV_PLUS if args.label_aug else args.adv_mode
    return training_label(mode, args.fair, args.la_protocol or default_protocol(mode))


TIMM_OUTPUT = "./output/train"  # timm's train.py writes <--output or ./output/train>/<--experiment>


def parse_timm_recipe(words: list[str], source: str = "entry") -> argparse.Namespace:
    """An ``rbla timm-train TRAIN_PY ...`` recipe's words (after ``rbla timm-train``) as the fields an entry is
    checked against: our flags (``--adv-*``, ``--la-*``, ``--fair``) with ``rbla timm-train``'s parser, timm's
    ``--model``, ``--num-classes``, ``--experiment``, ``--output``, ``--initial-checkpoint`` from the rest
    (``dataset`` None: timm names its
    data by a folder, the entry by the registry)."""
    ours = _RecipeParser(prog="rbla timm-train", add_help=False)
    add_timm_train_arguments(ours)
    timm = _RecipeParser(prog="train.py", add_help=False, allow_abbrev=False)
    for flag in ("--model", "--experiment", "--output", "--initial-checkpoint"):  # timm's own flags of these names
        timm.add_argument(flag, default=None)
    timm.add_argument("--num-classes", type=int, default=None)
    try:
        args, rest = ours.parse_known_args(words)
        theirs, _ = timm.parse_known_args(rest)
    except UserError as exc:
        raise UserError(f"zoo entry {source}: recipe does not parse as an `rbla timm-train` command ({exc}): fix "
                        "it (see `rbla timm-train --help`)") from None
    args.model, args.experiment, args.num_classes = theirs.model, theirs.experiment, theirs.num_classes
    args.output, args.dataset, args.initial_checkpoint = theirs.output or TIMM_OUTPUT, None, theirs.initial_checkpoint
    return args


def _check_consistency(data: Mapping[str, Any], source: str) -> None:
    """Cross-field checks: file name, checkpoint name, K/M/delta vs training, the recipe vs the entry."""
    import timm

    # deferred: torch (kept out of the CLI's start)
    from ..models import tiny_resnet  # noqa: F401  (registers resnet8_tiny with timm)
    def fail(problem: str) -> None:
        raise UserError(f"zoo entry {source}: {problem}")

    name, training = data["name"], data["training"]
    stem = Path(source).name.rsplit(".", 1)[0] if source.endswith((".yaml", ".yml")) else None
    if stem is not None and stem != name:
        fail(f"name '{name}' differs from the file name '{stem}': make them equal")
    if data["checkpoint"] != f"{name}.pt":
        fail(f"checkpoint must be '{name}.pt' (RobustBench's <model_dir>/<dataset>/<threat_model>/<name>.pt), "
             f"got {data['checkpoint']!r}")
    if not timm.is_model(data["architecture"]):
        fail(f"architecture '{data['architecture']}' is not a timm model: use a name from timm.list_models()")
    if data["num_classes"] != dataset_num_classes(data["dataset"]):
        fail(f"num_classes {data['num_classes']} but dataset '{data['dataset']}' has "
             f"{dataset_num_classes(data['dataset'])} classes")
    problem = label_aug_problem(parse_training_label(training)[0], data["num_ops"], data["delta"])
    if problem:
        fail(f"training {problem}")

    args = parse_recipe(data["recipe"], source)
    expected: dict[str, tuple[Any, Any]] = {
        "--experiment": (args.experiment, name),
        "--dataset": (args.dataset, data["dataset"]),
        "--model": (args.model, data["architecture"]),
        "--adv-mode/--fair/--la-protocol": (recipe_training_label(args), training),
    }
    if args.num_classes is not None:
        expected["--num-classes"] = (args.num_classes, data["num_classes"])
    if training != STD:
        expected["--adv-eps"] = (args.adv_eps, data["eps"])
    if training.startswith(ADV_PLUS):
        expected["--la-delta"] = (args.la_delta, data["delta"])
        expected["--la-ops"] = (args.la_ops, data["num_ops"])
    for flag, (got, want) in expected.items():
        if got is None and flag == "--dataset":  # a timm-train recipe names a folder, not a registered dataset
            continue
        same = math.isclose(got, want) if is_number(got) and is_number(want) else got == want
        if not same:
            fail(f"recipe has {flag} {got} but the entry says {want}: make the recipe and the entry agree")
    start = data.get("starts_from")
    initial = args.initial_checkpoint
    if (start is None) != (initial is None) or (start is not None and Path(initial).parts[-2:] != (start,
                                                                                                  "last.pth.tar")):
        fail(f"starts_from {start} but the recipe has --initial-checkpoint {initial}: a fine-tuned entry names its "
             "starting entry and the recipe starts from that entry's run (<--output>/<name>/last.pth.tar)")


def validate_entry(data: Any, source: str = "entry") -> ZooEntry:
    """Check a parsed YAML entry against :class:`.schema.EntrySchema` (pydantic: fields, types, value rules) and
    against itself (:func:`_check_consistency`); return it as a :class:`ZooEntry` or raise one clear
    :class:`UserError`."""
    if not isinstance(data, Mapping):
        raise UserError(f"zoo entry {source}: must be a YAML mapping of fields, got {type(data).__name__}")
    try:
        entry = parse_entry(dict(data))
    except ValueError as exc:
        raise UserError(f"zoo entry {source}: {exc}") from None
    values = entry.model_dump()
    _check_consistency(values, source)
    values["mean"], values["std"] = tuple(entry.mean), tuple(entry.std)
    values["description"] = entry.description or ""
    values["reported"] = entry.reported.model_dump(exclude_none=True) if entry.reported is not None else None
    values["paper"] = entry.paper.model_dump(exclude_none=True) if entry.paper is not None else None
    return ZooEntry(**values, source=source)


def load_entry_file(path: str | Path) -> ZooEntry:
    """Read and validate one entry file."""
    path = Path(path)

    data = load_yaml(path, f"zoo entry {path}")
    return validate_entry(data, str(path))


# ------------------------------------------------------------------------------------------------------------
# The installed zoo
# ------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def packaged_entries() -> dict[str, ZooEntry]:
    """The entries installed with the package, by name (validated once per process)."""
    entries: dict[str, ZooEntry] = {}
    for path in sorted(zoo_dir().glob("*.yaml")):
        entry = load_entry_file(path)
        entries[entry.name] = entry
    return entries


@lru_cache(maxsize=8)
def _user_entries(dirs: tuple[str, ...], stamps: tuple) -> dict[str, ZooEntry]:
    packaged = packaged_entries()
    entries: dict[str, ZooEntry] = {}
    for folder in map(Path, dirs):
        for path in sorted(folder.glob("*.yaml")):
            entry = load_entry_file(path)
            if entry.name in packaged:
                raise UserError(f"user zoo entry {path}: '{entry.name}' is a packaged zoo model: rename the entry "
                                "(file name, name and --experiment) so both can be loaded")
            if entry.name in entries:
                raise UserError(f"user zoo entry {path}: '{entry.name}' is also {entries[entry.name].source}: keep "
                                "one of them")
            entries[entry.name] = replace(entry, origin=str(folder))
    return entries


def load_entries() -> dict[str, ZooEntry]:
    """All entries, by name: the packaged zoo and the user zoo folders (``--zoo``, ``RBLA_ZOO`` or
    ``./model_zoo``, see :mod:`.user`); a user entry with a packaged name is refused."""
    dirs = user_zoo_dirs()
    stamps = tuple((str(p), p.stat().st_mtime_ns) for d in dirs for p in sorted(d.glob("*.yaml")))
    return {**packaged_entries(), **_user_entries(tuple(str(d) for d in dirs), stamps)}


load_entries.cache_clear = lambda: (packaged_entries.cache_clear(), _user_entries.cache_clear())  # type: ignore


def list_entries() -> list[str]:
    """Names of all zoo entries."""
    return list(load_entries())


def get_entry(name: str) -> ZooEntry:
    """The entry called ``name``, or a :class:`UserError` listing the names there are."""
    entries = load_entries()
    if name not in entries:
        raise UserError(f"unknown zoo model '{name}': use one of {', '.join(entries) or '(none installed)'} (a "
                        f"user zoo: ./model_zoo, --zoo DIR or {ZOO_ENV})")
    return entries[name]
