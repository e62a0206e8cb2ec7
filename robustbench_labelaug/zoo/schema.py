"""The zoo entry's schema as pydantic models: which fields exist, which are required, their types and value rules
(the value rules are the one set in :mod:`robustbench_labelaug.results.rules`, applied to the raw YAML value so a
bad one gets the same message everywhere). :func:`first_problem` turns pydantic's errors into the one line a user
sees. Cross-field checks (file name, recipe vs entry, K of the dataset) stay in :mod:`.entries`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from ..data import get_dataset_spec, list_datasets
from ..results.keys import REPORTED_CLASSWISE, REPORTED_ERRORS
from ..results.rules import choice_problem, delta_problem, eps_problem, int_problem, is_number
from ..results.vocab import ATTACK_THREAT_MODELS, TRAINING_LABELS
from ..typed import one_line, rule

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def _non_empty(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() else f"must be a non-empty string, got {v!r}"


def _url(v: Any) -> str | None:
    return None if isinstance(v, str) and v.startswith(("https://", "http://")) else \
        f"must be an http(s) URL or null, got {v!r}"


def _rgb(positive: bool) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        ok = isinstance(v, list) and len(v) == 3 and all(is_number(x) and (x > 0 or not positive) for x in v)
        return None if ok else f"must be a list of 3 {'positive ' if positive else ''}numbers, got {v!r}"
    return check


def zoo_datasets() -> tuple[str, ...]:
    """The registered datasets a zoo entry may name: those with a fixed K (not a generic folder)."""
    return tuple(n for n in list_datasets() if get_dataset_spec(n).fixed_num_classes is not None)


def _percent(v: Any) -> str | None:
    return None if is_number(v) and 0 <= v <= 100 else f"must be an error in percent (0-100), got {v!r}"


def _dataset(v: Any) -> str | None:
    return choice_problem(v, zoo_datasets())


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else f"must be true or false, got {v!r}"


def _block(v: Any, what: str) -> str | None:
    return None if v is None or (isinstance(v, dict) and v) else f"must be {what}, or null, got {v!r}"


def _mapping(v: Any) -> str | None:
    return None if isinstance(v, dict) else f"must be a mapping of training args, got {v!r}"


Text = Annotated[str, rule(_non_empty)]
Url = Annotated[str, rule(_url)]
Percent = Annotated[float, rule(_percent)]


RECIPE_COMMANDS = ("rbla train ", "rbla timm-train ")  # a recipe: rbla train's flags, or a timm-train run's command


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paper(_Strict):
    """The paper a packaged entry implements (null for a user's own model)."""

    title: Text
    authors: Text
    url: Url | None = None
    venue: Text | None = None
    note: Text | None = None


class ClasswiseReported(_Strict):
    mean: Percent
    sd: Percent


# the paper's numbers: one optional percent per key of results/keys.py, class-wise blocks, source and note
Reported = create_model(
    "Reported", __base__=_Strict,
    **{key: (Percent | None, None) for key in REPORTED_ERRORS},
    classwise=(dict[Annotated[str, rule(lambda v: choice_problem(v, REPORTED_CLASSWISE))], ClasswiseReported] | None,
               None),
    source=(Text | None, None), note=(Text | None, None))


class EntrySchema(_Strict):
    """One model-zoo YAML file (see :mod:`.entries` for what each field means)."""

    name: Annotated[str, rule(lambda v: None if isinstance(v, str) and NAME_RE.match(v) else
                              f"must match {NAME_RE.pattern} (lowercase id), got {v!r}")]
    description: Text | None = None
    dataset: Annotated[str, rule(_dataset)]
    threat_model: Annotated[str, rule(lambda v: choice_problem(v, ATTACK_THREAT_MODELS))]
    eps: Annotated[float, rule(eps_problem)]
    architecture: Text
    num_classes: Annotated[int, rule(lambda v: int_problem(v, 2))]
    num_ops: Annotated[int, rule(lambda v: int_problem(v, 0))]
    delta: Annotated[float | None, rule(lambda v: None if v is None else delta_problem(v))]
    training: Annotated[str, rule(lambda v: choice_problem(v, TRAINING_LABELS))]
    preprocessing: Text
    mean: Annotated[tuple[float, float, float], rule(_rgb(positive=False))]
    std: Annotated[tuple[float, float, float], rule(_rgb(positive=True))]
    recipe: Annotated[str, rule(lambda v: None if isinstance(v, str) and v.startswith(RECIPE_COMMANDS) else
                                f"must be an `rbla train ...` (or `rbla timm-train ...`) command, got {v!r}")]
    checkpoint: Annotated[str, rule(lambda v: None if isinstance(v, str) and v.endswith(".pt") and "/" not in v
                                    and "\\" not in v else f"must be a file name ending in .pt, got {v!r}")]
    sha256: Annotated[str | None, rule(lambda v: None if v is None or (isinstance(v, str) and SHA256_RE.match(v))
                                       else f"must be 64 lowercase hex digits or null, got {v!r}")]
    url: Url | None = None
    pretrained_fallback: Annotated[bool, rule(_bool)] = False
    starts_from: Annotated[str | None, rule(lambda v: None if v is None or (isinstance(v, str) and NAME_RE.match(v))
                                            else f"must be a zoo entry's name or null, got {v!r}")] = None
    paper: Annotated[Paper | None, rule(lambda v: _block(v, "a mapping with title and authors"))] = None
    trained_with: Annotated[dict[str, Any] | None, rule(lambda v: None if v is None else _mapping(v))] = None
    reported: Annotated[Reported | None,  # type: ignore[valid-type]
                        rule(lambda v: _block(v, "a non-empty mapping of the paper's numbers"))] = None


FIELDS = tuple(EntrySchema.model_fields)  # every field an entry may have, in the schema's order
REQUIRED = tuple(k for k, f in EntrySchema.model_fields.items() if f.is_required())


def first_problem(exc: ValidationError) -> str:
    """One line for a failed validation: the missing fields, else the unknown ones, else the first bad value."""
    line = one_line(exc, FIELDS, EntrySchema, unknown="unknown fields {keys}: remove them (allowed: {allowed})",
                    missing="missing fields {keys}: add them (see an existing entry)")
    return line if line.startswith(("unknown fields", "missing fields")) else f"field {line}"


def parse_entry(data: dict[str, Any]) -> EntrySchema:
    """The entry as a typed :class:`EntrySchema`, or ``ValueError`` with :func:`first_problem`'s line."""
    try:
        return EntrySchema.model_validate(data)
    except ValidationError as exc:
        raise ValueError(first_problem(exc)) from None
