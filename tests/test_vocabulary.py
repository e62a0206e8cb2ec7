"""The package's vocabularies live in ``results/vocab.py`` only: no other module types one of their words.

Read with ``ast`` (docstrings, comments and longer strings such as help text may say the words): a string literal
equal to a word of a vocabulary is refused outside ``results/vocab.py``

- anywhere, for a word that means nothing else in the package (``"Linf"``, ``"adv_plus"``, ``"cfa"``, ``"bf16"``,
  ``"sound"``, ...): in a comparison, as a dict key or subscript, as a default, as an argument;
- in a comparison with something that names the vocabulary (``args.fair == "none"``, ``self.protocol ==
  "paper"``), for a word that is also something else (:data:`HOMONYMS`: ``std`` is also a normalisation's
  standard deviation, ``none`` torch's ``reduction="none"``, ``paper`` a model's paper, ...).

Tests may use the literals (a member equals its string)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from robustbench_labelaug.results import vocab

PACKAGE = Path(vocab.__file__).resolve().parents[1]
VOCAB_FILE = Path(vocab.__file__).resolve()
ENUMS = (vocab.ThreatModel, vocab.TrainingMode, vocab.AttackMode, vocab.Fair, vocab.Protocol, vocab.Precision)
WORDS = {str(m) for enum in ENUMS for m in enum} | set(vocab.TRAINING_LABELS)
# Words that also mean something else in the package: refused only where compared with a vocabulary's subject.
HOMONYMS = {
    "std": "a normalisation's standard deviation (mean/std)",
    "none": "torch's reduction='none'; 'none' shown for nothing",
    "paper": "a model's paper (title, authors) and the paper's reported numbers",
    "corruptions": "the corruptions evaluator and its result blocks",
    "eval": "a split synonym and model.eval()",
    "train": "the training split",
}
SUBJECT = re.compile(r"mode|fair|polic|protocol|threat|precision|amp_dtype|training", re.IGNORECASE)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants (module, class, function)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _literals(node: ast.AST) -> list[ast.Constant]:
    """The string constants of a comparison operand (itself, or the elements of a tuple/list/set)."""
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return [n for n in items if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def offences(source: str, name: str = "<source>") -> list[str]:
    """Where ``source`` types a vocabulary word (``file:line: 'word'``)."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in WORDS \
                and node.value not in HOMONYMS and id(node) not in skip:
            found.append(f"{name}:{node.lineno}: {node.value!r}")
        if isinstance(node, ast.Call) and len(node.args) >= 2 and \
                (isinstance(node.func, ast.Attribute) and node.func.attr == "get" and len(node.args) == 2
                 or isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) == 3):
            key, default = node.args[-2], node.args[-1]  # d.get("fair", "none"), getattr(args, "fair", "none")
            if isinstance(key, ast.Constant) and isinstance(key.value, str) and SUBJECT.search(key.value) \
                    and isinstance(default, ast.Constant) and default.value in HOMONYMS:
                found.append(f"{name}:{default.lineno}: {default.value!r} as the default of {key.value!r}")
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for i, operand in enumerate(operands):
                hits = [c for c in _literals(operand) if c.value in HOMONYMS]
                others = " ".join(ast.unparse(o) for j, o in enumerate(operands) if j != i)
                if hits and SUBJECT.search(others):
                    found += [f"{name}:{c.lineno}: {c.value!r} compared with {others}" for c in hits]
    return sorted(set(found))


def test_no_vocabulary_word_is_typed_outside_vocab():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.resolve() == VOCAB_FILE:
            continue
        found += offences(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE)))
    assert not found, "vocabulary words typed outside results/vocab.py (use its enums):\n" + "\n".join(found)


@pytest.mark.parametrize("code, caught", [
    ('if threat_model == "Linf": pass', True),
    ('x = {"adv_plus": 1}', True),
    ('x = d["cfa"]', True),
    ('def f(precision="bf16"): pass', True),
    ('if args.fair != "none": pass', True),
    ('fair = args.get("fair", "none")', True),
    ('fair = getattr(args, "fair", "none")', True),
    ('split = args.get("split", "train")', False),
    ('ok = self.protocol in ("sound", "paper")', True),
    ('y = F.cross_entropy(a, b, reduction="none")', False),  # a homonym, not compared with a vocabulary's subject
    ('x = {"mean": m, "std": s}', False),
    ('"""Linf docstring"""', False),
    ('help_text = "L-inf, e.g. Linf"', False),
    ('if mode == ThreatModel.LINF: pass', False),
])
def test_the_check_catches_what_it_should(code, caught):
    assert bool(offences(code)) is caught


def test_words_are_their_strings():
    """Members are the keys everywhere while files keep plain strings: equal, same hash, formatted, shown and
    JSON-dumped as the string."""
    import json

    for enum in ENUMS:
        for m in enum:
            assert m == m.value and hash(m) == hash(m.value) and f"{m}" == m.value and repr(m) == repr(m.value)
            assert json.dumps({m: [m]}) == json.dumps({m.value: [m.value]})
    assert vocab.training_label(vocab.ADV_PLUS, vocab.Fair.CFA) == "adv_plus_cfa"
    assert type(vocab.training_label(vocab.ADV)) is str and vocab.training_label(vocab.ADV, vocab.NO_POLICY) == "adv"


def test_files_that_cannot_hold_a_member_get_plain_strings(tmp_path):
    """YAML refuses a member and a weights-only checkpoint load refuses the enum class: the edges write plain()."""
    import torch
    import yaml

    from robustbench_labelaug.fileio import atomic_torch_save

    record = {vocab.ThreatModel.LINF: [vocab.ADV_PLUS, (vocab.Fair.CFA, 1)], "n": {"p": vocab.Protocol.PAPER},
              "weights": torch.nn.Linear(2, 2).state_dict()}
    with pytest.raises(yaml.representer.RepresenterError):
        yaml.safe_dump({"m": vocab.ADV})
    text = yaml.safe_dump(vocab.plain({k: v for k, v in record.items() if k != "weights"}))
    assert yaml.safe_load(text) == {"Linf": ["adv_plus", ["cfa", 1]], "n": {"p": "paper"}}
    atomic_torch_save(record, tmp_path / "c.pt")
    loaded = torch.load(tmp_path / "c.pt", map_location="cpu", weights_only=True)
    assert loaded["Linf"] == ["adv_plus", ("cfa", 1)] and type(loaded["Linf"][0]) is str
    assert torch.equal(loaded["weights"]["weight"], record["weights"]["weight"])


def test_pydantic_schemas_take_members_and_keep_plain_strings():
    """A zoo entry and an eval config's model given members validate to plain strings, so model_dump() (python
    and JSON) is what it was with the words typed as strings; a config's default threat model is plain too."""
    import json

    from robustbench_labelaug.runner.config import ModelConfig
    from robustbench_labelaug.yamlio import load_yaml
    from robustbench_labelaug.zoo.entries import get_entry, validate_entry

    entry = get_entry("digits_adv_plus")
    raw = load_yaml(entry.source, "entry")
    with_members = {**raw, "threat_model": vocab.ThreatModel.LINF, "training": vocab.TrainingMode.ADV_PLUS}
    a, b = validate_entry(raw, "plain"), validate_entry(with_members, "members")
    assert type(b.threat_model) is str and type(b.training) is str and (a.threat_model, a.training) == (
        b.threat_model, b.training)
    plain_cfg = ModelConfig(key="m", zoo="digits_adv")
    member_cfg = ModelConfig(key="m", zoo="digits_adv", threat_model=vocab.ThreatModel.LINF,
                             training=vocab.TrainingMode.ADV)
    assert type(plain_cfg.threat_model) is str and type(member_cfg.threat_model) is str
    assert json.dumps(member_cfg.model_dump()) == json.dumps({**plain_cfg.model_dump(), "training": "adv"})
