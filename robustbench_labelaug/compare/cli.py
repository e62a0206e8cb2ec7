"""``rbla compare A B``: per-class paired differences of two evaluated models, tests and a verdict.

    rbla compare output/eval/digits/digits_adv output/eval/digits/digits_adv_plus
    rbla compare output/eval/digits/model_info/digits_adv.json output/eval/digits/model_info/digits_adv_plus.json
    rbla compare A1,A2,A3 B1,B2,B3                 # several evaluations (seeds) per side
    rbla compare rbla_demo/eval/digits_adv rbla_demo/eval/digits_adv_plus --seeds   # + the demo's eval_seeds/
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..fileio import check_output_file
from ..store import EvaluationFolder

HELP = "compare two evaluated models class by class: paired differences with CIs, McNemar tests, a verdict"
__all__ = ["HELP", "add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", metavar="A", help="model A: its evaluation folder (<output>/<model>), its model_info "
                        "JSON, or several of them (seeds) separated by commas")
    parser.add_argument("b", metavar="B", help="model B, as A")
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


def demo_seed_folders(folder: Path) -> list[Path]:
    """The other seeds of a demo model folder ``<run>/eval/<model>``: ``<run>/eval_seeds/<model>_seed<N>``."""
    root = folder.parent.parent / "eval_seeds"
    found = sorted(root.glob(f"{folder.name}_seed*"), key=lambda p: (len(p.name), p.name))
    return [p for p in found if EvaluationFolder(p).has_results()]


def main(args: argparse.Namespace) -> int:
    from .core import compare
    from .files import model_folder

    if args.n_boot < 100:
        raise UserError(f"--n-boot {args.n_boot} is too few resamples for a CI: use 1000 or more")
    if not 0.5 <= args.level < 1:
        raise UserError(f"--level {args.level} must lie in [0.5, 1), e.g. 0.95")
    if not 0 <= args.seed < 2 ** 32:
        raise UserError(f"--seed {args.seed} must be an integer from 0 to 2**32 - 1 (the bootstrap's random seed)")
    markdown = check_output_file(args.markdown, "--markdown") if args.markdown else None
    plot = check_output_file(args.plot, "--plot", plot_suffixes()) if args.plot else None
    sides = []
    for text in (args.a, args.b):
        folders = [model_folder(p) for p in _paths(text)]
        if not folders:
            raise UserError(f"no evaluation given in {text!r}: pass a folder or model_info JSON")
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
    from ..fileio import atomic_write_bytes, output_locks

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
