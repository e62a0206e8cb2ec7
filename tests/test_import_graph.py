"""The package's modules import each other top-down (CONTRIBUTING.md, "Layers"): read with ``ast`` (every import,
also those inside functions), this test fails on

- an import **circle** between modules (an import of ``a.b.c`` also runs the package ``a.b``'s ``__init__``);
- an **upward** import: a module imports only from the layers below its own (:data:`LAYERS`), or from its own
  unit (a subpackage or a module of the table); two units of one layer do not import each other;
- an import of another module's **private** name (``from .x import _name``, ``x._name``);
- an import **inside a function** of a package module that does not defer a heavy package (:data:`HEAVY`: torch,
  timm, ... for the CLI's start time) or does not say so: the imported module must import one of them, at its top
  level or through the modules it imports there, and the import line or the line above carries the marker
  ``# deferred: <heavy>`` naming one it reaches (``# deferred: torch``).

``python tests/test_import_graph.py`` prints the counts (in-function imports, circles, upward and private
imports, unmarked deferrals) and every offence."""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PACKAGE = "robustbench_labelaug"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE

# The layers, from the foundation up. Each entry is a unit: a subpackage or a module (relative to the package;
# "__init__" is the package's own __init__.py, the public face). A module imports from units of lower layers and
# from its own unit; the units of one layer are independent of each other.
LAYERS: list[tuple[str, ...]] = [
    ("errors",),
    ("_lazy", "packages", "mdtext", "registry", "yamlio", "typed", "safeload", "distributed", "fileio"),
    ("store", "engine"),            # the evaluation folders' layout (torch-free); the parallel engine
    ("results",),                   # the facts: keys, vocabularies, rules, Measured, model_info (torch-free)
    ("checks", "compat", "stats"),  # argument checks; RobustBench's import hooks; pure statistics
    ("data",),
    ("scoring", "models", "attacks"),
    ("modelcheck", "hook", "compare", "leaderboard"),
    ("fair", "evaluation"),
    ("train",),
    ("timm_train",),
    ("zoo",),
    ("runner",),
    ("api",),
    ("demo",),
    ("study",),
    ("__init__",),                  # the public face: its names load their module on first use
    ("cli",),
    ("__main__", "timm_train.__main__"),
]

# A deferred import (inside a function) is there to keep one of these out of the CLI's start: their import takes
# 0.3-6 s (torch ~3 s, timm ~6 s, ray, matplotlib.pyplot, scipy.stats, pandas, statsmodels, scikit-learn on this
# project's 2-core machine; numpy, pydantic, jinja2, yaml ~0.1-0.3 s are not). A package that imports torch counts
# as torch.
HEAVY: dict[str, str] = {
    "torch": "torch", "torchvision": "torch", "torchattacks": "torch", "autoattack": "torch", "robustbench": "torch",
    "adv_lib": "torch", "timm": "timm", "ray": "ray", "matplotlib": "matplotlib", "scipy": "scipy",
    "pandas": "pandas", "statsmodels": "statsmodels", "sklearn": "sklearn",
}
MARKER = re.compile(r"#\s*deferred:\s*([\w.]+)")


@dataclass(frozen=True)
class Import:
    module: str           # the importing module
    target: str           # the module imported (a package's lazy export resolved to the module that defines it)
    name: str | None      # the name taken from it (None: the module itself)
    line: int
    in_function: bool
    type_checking: bool   # under ``if TYPE_CHECKING:`` (never run)
    marker: str | None    # the heavy package named by a ``# deferred:`` comment on the line or the line above


def _module_files() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _module_files()


def _lazy_map(module: str) -> dict[str, str]:
    """A package's lazy exports (``lazy_exports(__name__, {...})``, ``_EXPORTS = {...}``): name -> module."""
    tree = ast.parse(MODULES[module].read_text())
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Dict):
            continue
        try:
            value = ast.literal_eval(node)
        except ValueError:
            value = None
        items = []
        if isinstance(value, dict):
            items = list(value.items())
        else:  # {**dict.fromkeys((...), ".mod"), "name": ".mod"}
            for key, val in zip(node.keys, node.values):
                if key is None and isinstance(val, ast.Call) and getattr(val.func, "attr", "") == "fromkeys":
                    names, mod = (ast.literal_eval(a) for a in val.args)
                    items += [(n, mod) for n in names]
                elif key is not None:
                    try:
                        items.append((ast.literal_eval(key), ast.literal_eval(val)))
                    except ValueError:
                        pass
        for name, mod in items:
            if isinstance(name, str) and isinstance(mod, str) and mod.startswith("."):
                target = _absolute(module, len(mod) - len(mod.lstrip(".")), mod.lstrip("."), is_package=True)
                if target in MODULES:
                    out[name] = target
    return out


def _absolute(module: str, level: int, name: str | None, is_package: bool) -> str:
    if not level:
        return name or ""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    parts = parts[:len(parts) - (level - 1)]
    return ".".join(parts + ([name] if name else []))


@cache
def lazy_maps() -> dict[str, dict[str, str]]:
    return {m: _lazy_map(m) for m, p in MODULES.items() if p.name == "__init__.py"}


def _marker(lines: list[str], line: int) -> str | None:
    for text in (lines[line - 1], lines[line - 2] if line >= 2 else ""):
        found = MARKER.search(text)
        if found:
            return found.group(1)
    return None


class _Visitor(ast.NodeVisitor):
    def __init__(self, module: str, lines: list[str]):
        self.module, self.lines = module, lines
        self.is_package = MODULES[module].name == "__init__.py"
        self.depth = self.type_checking = 0
        self.found: list[Import] = []

    def visit_FunctionDef(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef

    def visit_If(self, node):
        if "TYPE_CHECKING" in ast.unparse(node.test):
            self.type_checking += 1
            for child in node.body:
                self.visit(child)
            self.type_checking -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _add(self, node, target, name):
        self.found.append(Import(self.module, target, name, node.lineno, self.depth > 0, self.type_checking > 0,
                                 _marker(self.lines, node.lineno)))

    def visit_Import(self, node):
        for alias in node.names:
            self._add(node, alias.name, None)

    def visit_ImportFrom(self, node):
        base = _absolute(self.module, node.level, node.module, self.is_package)
        for alias in node.names:
            full = f"{base}.{alias.name}"
            if full in MODULES:
                self._add(node, full, None)
            elif alias.name in lazy_maps().get(base, {}):
                self._add(node, lazy_maps()[base][alias.name], alias.name)
            else:
                self._add(node, base, alias.name)


@cache
def imports() -> dict[str, list[Import]]:
    out = {}
    for module, path in MODULES.items():
        source = path.read_text()
        visitor = _Visitor(module, source.splitlines())
        visitor.visit(ast.parse(source))
        out[module] = visitor.found
    return out


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def graph() -> dict[str, set[str]]:
    """Who imports whom when it runs (TYPE_CHECKING left out): the target, and the packages its import runs."""
    edges: dict[str, set[str]] = defaultdict(set)
    for module, found in imports().items():
        own = set(_parents(module)) | {module}
        for imp in found:
            if imp.type_checking or imp.target not in MODULES:
                continue
            for target in [*_parents(imp.target), imp.target]:
                if target not in own and target in MODULES:
                    edges[module].add(target)
    return edges


def circles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    edges, index, low, stack, on_stack, out = graph(), {}, {}, [], set(), []
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(MODULES):
        if v not in index:
            visit(v)
    return out


def unit_of(module: str) -> tuple[int, str] | None:
    """(layer, unit) of a package module: its longest unit in :data:`LAYERS`."""
    rel = "__init__" if module == PACKAGE else module[len(PACKAGE) + 1:]
    best = None
    for layer, units in enumerate(LAYERS):
        for unit in units:
            if (rel == unit or rel.startswith(unit + ".")) and (best is None or len(unit) > len(best[1])):
                best = (layer, unit)
    return best


def _short(module: str) -> str:
    return module[len(PACKAGE) + 1:] if module != PACKAGE else "__init__"


def upward() -> list[str]:
    out = []
    for module, found in imports().items():
        mine = unit_of(module)
        for imp in found:
            theirs = unit_of(imp.target) if imp.target.startswith(PACKAGE) and imp.target in MODULES else None
            if mine is None or theirs is None or theirs[1] == mine[1] or theirs[0] < mine[0]:
                continue
            out.append(f"{_short(module)}:{imp.line} imports {_short(imp.target)}"
                       f"{'.' + imp.name if imp.name else ''} (layer {theirs[0]} {theirs[1]} from layer {mine[0]}"
                       f" {mine[1]})")
    return out


def unplaced() -> list[str]:
    return [_short(m) for m in MODULES if unit_of(m) is None]


def _module_aliases(tree: ast.AST, module: str) -> dict[str, str]:
    """Names bound to package modules by imports (``from . import table``, ``import x.y as z``)."""
    out = {}
    is_package = MODULES[module].name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _absolute(module, node.level, node.module, is_package)
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    out[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name in MODULES:
                    out[alias.asname] = alias.name
    return out


def private() -> list[str]:
    out = []
    for module, found in imports().items():
        for imp in found:
            if imp.name and imp.name.startswith("_") and not imp.name.startswith("__") \
                    and imp.target.startswith(PACKAGE) and imp.target != module:
                out.append(f"{_short(module)}:{imp.line} imports {_short(imp.target)}.{imp.name}")
        tree = ast.parse(MODULES[module].read_text())
        aliases = _module_aliases(tree, module)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                    and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and aliases[node.value.id] != module:
                out.append(f"{_short(module)}:{node.lineno} uses {_short(aliases[node.value.id])}.{node.attr}")
    return out


@cache
def heavy_reached(module: str) -> frozenset[str]:
    """The heavy packages (:data:`HEAVY` values) importing ``module`` brings in: its top-level imports, the
    packages they run, transitively."""
    seen, todo, out = set(), [module], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo += [p for p in _parents(current) if p in MODULES]
        for imp in imports().get(current, ()):
            if imp.in_function or imp.type_checking:
                continue
            root = imp.target.split(".")[0]
            if root in HEAVY:
                out.add(HEAVY[root])
            elif imp.target in MODULES:
                todo += [*_parents(imp.target), imp.target]
    return frozenset(out)


def in_function_imports() -> list[Import]:
    return [imp for found in imports().values() for imp in found
            if imp.in_function and imp.target.startswith(PACKAGE) and imp.target in MODULES]


def undeferred() -> list[str]:
    """In-function package imports that defer nothing heavy, or do not say which."""
    out = []
    for imp in in_function_imports():
        reached = heavy_reached(imp.target)
        what = f"{_short(imp.module)}:{imp.line} imports {_short(imp.target)}{'.' + imp.name if imp.name else ''}"
        if not reached:
            out.append(f"{what} inside a function: it imports nothing heavy, import it at the top")
        elif imp.marker not in reached:
            out.append(f"{what} inside a function without '# deferred: <{'|'.join(sorted(reached))}>'"
                       + (f" (it says {imp.marker!r})" if imp.marker else ""))
    return out


def test_every_module_has_a_layer():
    assert unplaced() == []


def test_no_circles():
    assert circles() == []


def test_no_upward_imports():
    assert upward() == []


def test_no_private_imports():
    assert private() == []


def test_imports_inside_functions_defer_something_heavy_and_say_so():
    assert undeferred() == []


def test_the_checks_see_offences():
    """The checks are not vacuous: the graph has the package's real edges, a deferral is recognised."""
    assert f"{PACKAGE}.errors" in graph()[f"{PACKAGE}.fileio"]
    assert "torch" in heavy_reached(f"{PACKAGE}.models.classifier")
    assert heavy_reached(f"{PACKAGE}.results.keys") == frozenset()
    assert unit_of(f"{PACKAGE}.results.keys") < unit_of(f"{PACKAGE}.leaderboard.table")
    assert any(imp.marker == "torch" for imp in in_function_imports())


SYNTHETIC = {  # a package with one offence of each kind (read with ast only, never imported)
    "__init__.py": "",
    "low.py": "from .high import thing\n\n\ndef _secret():\n    return 1\n",
    "heavy.py": "import torch\n\nweights = torch.zeros(1)\n",
    "mid.py": ("def light():\n    from .low import _secret as s\n    return s\n\n\n"
               "def unmarked():\n    from .heavy import weights\n    return weights\n\n\n"
               "def marked():\n    from .heavy import weights  # deferred: torch\n    return weights\n"),
    "high.py": "from . import low\nfrom .low import _secret\n\nthing = low._secret() + _secret()\n",
}


def test_the_checks_catch_a_synthetic_circle_back_arrow_private_import_and_bare_deferral(tmp_path, monkeypatch):
    """Each check fails on its offence: the checker run on a small package written here (not the real one)."""
    root = tmp_path / "fakepkg"
    root.mkdir()
    for name, text in SYNTHETIC.items():
        (root / name).write_text(text)
    here = sys.modules[__name__]
    monkeypatch.setattr(here, "PACKAGE", "fakepkg")
    monkeypatch.setattr(here, "PACKAGE_DIR", root)
    monkeypatch.setattr(here, "MODULES", _module_files())
    monkeypatch.setattr(here, "LAYERS", [("low",), ("heavy",), ("mid",), ("high",), ("__init__",)])
    for cached in (imports, lazy_maps, heavy_reached):
        cached.cache_clear()
    try:
        assert circles() == [["fakepkg.high", "fakepkg.low"]]
        assert upward() == ["low:1 imports high.thing (layer 3 high from layer 0 low)"]
        assert sorted(private()) == ["high:2 imports low._secret", "high:4 uses low._secret",
                                     "mid:2 imports low._secret"]
        assert undeferred() == ["mid:2 imports low._secret inside a function: it imports nothing heavy, import it "
                                "at the top",
                                "mid:7 imports heavy.weights inside a function without '# deferred: <torch>'"]
        assert unplaced() == []
    finally:
        for cached in (imports, lazy_maps, heavy_reached):
            cached.cache_clear()


def test_the_layer_table_is_the_one_in_contributing():
    text = (PACKAGE_DIR.parent / "CONTRIBUTING.md").read_text()
    rows = re.findall(r"^\|\s*(\d+)\s*\|([^|]*)\|", text, flags=re.M)
    table = [tuple(u.strip(" `") for u in units.split(",")) for _, units in rows]
    assert table == [tuple(units) for units in LAYERS], "CONTRIBUTING.md's layer table differs from LAYERS"


if __name__ == "__main__":
    calls = in_function_imports()
    print(f"in-function package imports: {len(calls)} names, "
          f"{len({(i.module, i.line) for i in calls})} statements")
    for title, items in (("circles", circles()), ("upward", upward()), ("private", private()),
                         ("undeferred", undeferred()), ("unplaced", unplaced())):
        print(f"{title}: {len(items)}")
        for item in items:
            print("   ", item)
