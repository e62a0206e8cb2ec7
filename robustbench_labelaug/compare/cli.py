"""``rbla compare A B``: per-class paired differences of two evaluated models, tests and a verdict.

    rbla compare output/eval/digits/digits_adv output/eval/digits/digits_adv_plus
    rbla compare output/eval/digits/model_info/digits_adv.json output/eval/digits/model_info/digits_adv_plus.json
    rbla compare A1,A2,A3 B1,B2,B3                 # several evaluations (seeds) per side
    rbla compare A_seed*.json -- B_seed*.json      # the same, each side's files listed, the sides split by --
    rbla compare rbla_demo/eval/digits_adv rbla_demo/eval/digits_adv_plus --seeds   # + the demo's eval_seeds/

Several seeds per side are pooled with the test examples in one two-level bootstrap (seeds, then examples within
class: :mod:`robustbench_labelaug.stats`); one per side is the paired comparison.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..fileio import atomic_write_bytes, check_output_file, output_locks
from ..store import EvaluationFolder
from .core import compare
from .files import model_folder

HELP = "compare two evaluated models class by class: paired differences with CIs, McNemar tests, a verdict"
__all__ = ["HELP", "add_arguments", "main"]


SIDE_BREAK = "\x00--"  # where the command line's `--` split the two sides (argparse would drop a bare `--`)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sides", nargs="+", metavar="A [A ...] -- B [B ...]",
                        help="model A and model B: each an evaluation folder (<output>/<model>) or its model_info "
                             "JSON; several per side (seeds) separated by commas (A1,A2 B1,B2), or listed with the "
                             "sides split by -- (A_seed*.json -- B_seed*.json)")
    parser.add_argument("--seeds", action="store_true",
                        help="also take each side's other seeds from rbla demo --seeds (<run>/eval_seeds/"
                             "<model>_seed<N>)")
    parser.add_argument("--evaluators", default=None, metavar="ID,ID", help="compare only these result ids")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--level", type=float, default=0.95, help="confidence level of the intervals")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling")
    parser.add_argument("--markdown", default=None, metavar="FILE", help="also write the tables to FILE")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="draw the per-class differences with their CIs to PNG")


def _paths(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The flags, and the two sides: ``A B`` (each a comma list), or ``A... -- B...`` (the first ``--`` splits
    them). ``args.a`` / ``args.b``: each side's paths."""
    argv = list(argv)
    split = "--" in argv
    if split:
        at = argv.index("--")
        argv[at] = SIDE_BREAK
    args = parser.parse_intermixed_args(argv)
    sides = list(args.sides)
    if split:
        at = sides.index(SIDE_BREAK)
        a, b = sides[:at], sides[at + 1:]
        if not a or not b:
            raise UserError("rbla compare A... -- B...: give at least one evaluation on each side of --")
    elif len(sides) != 2:
        raise UserError(f"rbla compare takes two sides, got {len(sides)} paths: list several seeds per side with "
                        "commas (A1,A2 B1,B2) or split the sides with -- (A1 A2 -- B1 B2)")
    else:
        a, b = [sides[0]], [sides[1]]
    args.a = [p for text in a for p in _paths(text)]
    args.b = [p for text in b for p in _paths(text)]
    return args


def demo_seed_folders(folder: Path) -> list[Path]:
    """The other seeds of a demo model folder ``<run>/eval/<model>``: ``<run>/eval_seeds/<model>_seed<N>``."""
    root = folder.parent.parent / "eval_seeds"
    found = sorted(root.glob(f"{folder.name}_seed*"), key=lambda p: (len(p.name), p.name))
    return [p for p in found if EvaluationFolder(p).has_results()]


def main(args: argparse.Namespace) -> int:
    if args.n_boot < 100:
        raise UserError(f"--n-boot {args.n_boot} is too few resamples for a CI: use 1000 or more")
    if not 0.5 <= args.level < 1:
        raise UserError(f"--level {args.level} must lie in [0.5, 1), e.g. 0.95")
    if not 0 <= args.seed < 2 ** 32:
        raise UserError(f"--seed {args.seed} must be an integer from 0 to 2**32 - 1 (the bootstrap's random seed)")
    markdown = check_output_file(args.markdown, "--markdown") if args.markdown else None
    plot = check_output_file(args.plot, "--plot", plot_suffixes()) if args.plot else None
    sides = []
    for paths in (args.a, args.b):
        paths = _paths(paths) if isinstance(paths, str) else paths  # a Namespace built in code: a comma list
        folders = [model_folder(p) for p in paths]
        if not folders:
            raise UserError(f"no evaluation given in {paths!r}: pass a folder or model_info JSON")
        if args.seeds:
            extra = demo_seed_folders(folders[0])
            if not extra:
                raise UserError(f"--seeds: no other seeds of {folders[0].name} in "
                                f"{folders[0].parent.parent / 'eval_seeds'}: run rbla demo --seeds N, or list the "
                                "folders of each side separated by commas")
            folders += extra
        sides.append(folders)
    evaluators = _paths(args.evaluators) if args.evaluators else None
    result = compare(sides[0], sides[1], evaluators=evaluators, n_boot=args.n_boot, level=args.level,
                     seed=args.seed)
    text = result.markdown()
    print(text)

    with output_locks([p for p in (markdown, plot) if p], "compare output"):  # atomic files, one writer per folder
        if markdown:
            atomic_write_bytes(markdown, text.encode())
            print(f"wrote {markdown}")
        if plot:
            print(f"wrote {result.plot(plot)}")
    return 0


def plot_suffixes() -> tuple[str, ...]:
    """The file suffixes matplotlib writes (``.png`` first), so ``--plot`` names the file it writes."""
    from matplotlib.backend_bases import FigureCanvasBase

    return (".png", *sorted(f".{k}" for k in FigureCanvasBase.get_supported_filetypes() if k != "png"))
