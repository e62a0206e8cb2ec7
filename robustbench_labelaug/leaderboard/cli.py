"""``rbla leaderboard DIR``: the model_info JSONs under DIR as a markdown table (printed and written to
``DIR/leaderboard.md``), optionally as HTML and with the paper's figures (``DIR/plots/*.png``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..fileio import atomic_write_bytes
from .model_info import load_model_infos
from .table import SORT_KEYS, build_table, to_html, to_markdown

HELP = "render the model_info JSONs written by rbla evaluate (or RobustBench's) as a leaderboard"
__all__ = ["HELP", "add_arguments", "main", "render"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR",
                        help="output folder of rbla evaluate (reads DIR/model_info/*.json) or a folder of "
                             "model_info JSONs")
    parser.add_argument("--sort", default="robustbench", choices=list(SORT_KEYS),
                        help="robustbench: AutoAttack accuracy then clean accuracy (models without AA last); "
                             "clean/pgd/mce/sd: that error, lowest first; name")
    parser.add_argument("--html", default=None, metavar="FILE", help="also write a self-contained HTML table")
    parser.add_argument("--plots", action="store_true",
                        help="also draw class-wise / corruption / ImageNet-X figures into DIR/plots")
    parser.add_argument("--title", default=None, help="table title (default: the folder name)")


def render(folder: str | Path, sort: str = "robustbench", html: str | Path | None = None, plots: bool = False,
           title: str | None = None, quiet: bool = False) -> dict[str, object]:
    """Write ``leaderboard.md`` (and HTML / plots); returns ``{"markdown": text, "paths": [...]}``."""
    folder = Path(folder)
    infos = load_model_infos(folder)
    table = build_table(infos, sort=sort)
    title = title or f"Leaderboard: {folder.resolve().name}"
    markdown = to_markdown(table, infos, title=title)
    md_path = folder / "leaderboard.md"
    atomic_write_bytes(md_path, markdown.encode())
    paths: list[Path] = [md_path]
    if html:
        atomic_write_bytes(Path(html), to_html(table, infos, title=title).encode())
        paths.append(Path(html))
    if plots:
        from .plots import write_plots

        by_key = dict(infos)
        paths += write_plots([(k, by_key[k]) for k in table.keys], folder / "plots")
    if not quiet:
        print(markdown)
        print("wrote " + ", ".join(str(p) for p in paths))
    return {"markdown": markdown, "paths": paths, "order": table.keys}


def main(args: argparse.Namespace) -> int:
    render(args.dir, sort=args.sort, html=args.html, plots=args.plots, title=args.title)
    return 0
