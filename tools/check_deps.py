"""``pip check`` limited to what this package pulls in: every requirement in the dependency closure of
``robustbench-labelaug[test]`` must be installed at a version its specifier allows.

Why not plain ``pip check``: it checks the whole environment, so a package the machine had before us (a CI image's
``docker`` or ``moto``, which want a newer ``requests`` than torchattacks' ``requests~=2.25.1`` pin) fails CI for
a conflict we neither cause nor can fix. A conflict inside our closure (the one that made ``selenium<4.33``
necessary) still fails here.

    python tools/check_deps.py            # exit 1 and one line per broken requirement, else one summary line
"""

from __future__ import annotations

import sys
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = "robustbench-labelaug"


def _dist(name: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def broken_requirements(root: str = ROOT, extras: tuple[str, ...] = ("test",)) -> tuple[list[str], int]:
    """(one line per requirement in ``root[extras]``'s closure that is missing or at a version outside its
    specifier, how many distributions the closure holds)."""
    problems: list[str] = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    todo: list[tuple[str, tuple[str, ...]]] = [(canonicalize_name(root), extras)]
    while todo:
        name, wanted = todo.pop()
        if (name, wanted) in seen:
            continue
        seen.add((name, wanted))
        dist = _dist(name)
        if dist is None:
            continue  # reported by whoever required it
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is not None and not any(
                req.marker.evaluate({**default_environment(), "extra": e}) for e in ("", *wanted)
            ):
                continue
            child = _dist(req.name)
            if child is None:
                problems.append(f"{dist.metadata['Name']} requires {req}, which is not installed")
                continue
            if req.specifier and not req.specifier.contains(child.version, prereleases=True):
                problems.append(f"{dist.metadata['Name']} requires {req}, but {child.metadata['Name']} "
                                f"{child.version} is installed")
            todo.append((canonicalize_name(req.name), tuple(sorted(req.extras))))
    return problems, len({n for n, _ in seen})


def main() -> int:
    if _dist(ROOT) is None:
        print(f"{ROOT} is not installed: run pip install -e '.[test]' first", file=sys.stderr)
        return 1
    problems, n = broken_requirements()
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"{ROOT}[test]: {n} distributions in its dependency closure, every requirement satisfied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
