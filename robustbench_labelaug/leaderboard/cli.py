"""``rbla leaderboard DIR``: the model_info JSONs under DIR (this project's, RobustBench's own, or both mixed,
also in RobustBench's ``<dataset>/<threat_model>/`` layout) as markdown tables, one per dataset and threat model
(printed and written to ``DIR/leaderboard.md``), optionally as HTML and with the paper's figures
(``DIR/plots/*.png``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..fileio import atomic_write_bytes
from .model_info import load_model_infos
from .table import METRICS, SORT_KEYS, build_tables, to_html, to_markdown

HELP = "render the model_info JSONs written by rbla evaluate (or RobustBench's) as a leaderboard"
__all__ = ["HELP", "add_arguments", "main", "render"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR",
                        help="output folder of rbla evaluate (reads DIR/model_info/*.json) or a folder of "
                             "model_info JSONs, e.g. RobustBench's model_info/ (<dataset>/<threat_model>/*.json)")
    parser.add_argument("--sort", default="robustbench", choices=list(SORT_KEYS),
                        help="robustbench: best known robust accuracy (RobustBench's 'external', else AutoAttack's) "
                             "then clean accuracy (models without either last); clean/pgd/mce/sd: that error, "
                             "lowest first; name (default: %(default)s)")
    parser.add_argument("--metric", default="err", choices=list(METRICS),
                        help="err: errors in %% (the paper's convention); acc: accuracies in %% (RobustBench's) "
                             "(default: %(default)s)")
    parser.add_argument("--html", default=None, metavar="FILE", help="also write a self-contained HTML table")
    parser.add_argument("--plots", action="store_true",
                        help="also draw class-wise / corruption / ImageNet-X figures into DIR/plots")
    parser.add_argument("--title", default=None,
                        help="table title (default: %(default)s, i.e. 'Leaderboard: <folder name>')")


def render(folder: str | Path, sort: str = "robustbench", html: str | Path | None = None, plots: bool = False,
           title: str | None = None, quiet: bool = False, metric: str = "err") -> dict[str, object]:
    """Write ``leaderboard.md`` (and HTML / plots); returns ``{"markdown": text, "paths": [...], "order": keys}``
    (``order``: the models in table order, group after group)."""
    folder = Path(folder)
    infos = load_model_infos(folder)
    tables = build_tables(infos, sort=sort, metric=metric)
    title = title or f"Leaderboard: {folder.resolve().name}"
    markdown = to_markdown(tables, infos, title=title, metric=metric)
    md_path = folder / "leaderboard.md"
    atomic_write_bytes(md_path, markdown.encode())
    paths: list[Path] = [md_path]
    if html:
        atomic_write_bytes(Path(html), to_html(tables, infos, title=title, metric=metric).encode())
        paths.append(Path(html))
    if plots:
        from .plots import write_plots

        by_key = dict(infos)
        paths += write_plots([(k, by_key[k]) for t in tables for k in t.keys], folder / "plots")
    if not quiet:
        print(markdown)
        print("wrote " + ", ".join(str(p) for p in paths))
    return {"markdown": markdown, "paths": paths, "order": [k for t in tables for k in t.keys]}


def main(args: argparse.Namespace) -> int:
    from .training_curves import plot_training_folder, training_runs

    if training_runs(args.dir) and not list(Path(args.dir).glob("**/*.json")):  # rbla train run folder(s)
        if not args.plots:
            from ..errors import UserError

            raise UserError(f"{args.dir} holds rbla train runs, not model_info JSONs: pass --plots to draw their "
                            "per-class training curves, or give an rbla evaluate output folder")
        paths = plot_training_folder(args.dir)
        print("wrote " + (", ".join(str(p) for p in paths) if paths else "nothing (no per-class columns in "
                                                                          "summary.csv)"))
        return 0
    render(args.dir, sort=args.sort, html=args.html, plots=args.plots, title=args.title, metric=args.metric)
    return 0
