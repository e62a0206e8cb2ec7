"""``rbla leaderboard DIR``: the model_info JSONs under DIR (this project's, RobustBench's own, or both mixed,
also in RobustBench's ``<dataset>/<threat_model>/`` layout) as markdown tables, one per dataset and threat model
(printed and written to ``DIR/leaderboard.md``, or ``leaderboard-2.md`` ... when that exists, unless ``--force``),
optionally as one self-contained HTML page (``--html``) and with the paper's figures (``--plots``:
``DIR/plots/*.png``, also ``.svg`` / ``.pdf`` with ``--plot-format``)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..fileio import atomic_write_bytes, output_locks
from ..results.model_info import load_model_infos
from .html import to_html
from .plots import check_formats, write_plots
from .table import METRICS, SORT_KEYS, build_tables, to_markdown
from .training_curves import plot_training_folder, training_runs

HELP = "render the model_info JSONs written by rbla evaluate (or RobustBench's) as a leaderboard"
__all__ = ["HELP", "add_arguments", "free_name", "main", "render", "stored_title"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR",
                        help="output folder of rbla evaluate (reads DIR/model_info/*.json) or a folder of "
                             "model_info JSONs, e.g. RobustBench's model_info/ (<dataset>/<threat_model>/*.json)")
    parser.add_argument("--sort", default="robustbench", choices=list(SORT_KEYS),
                        help="robustbench: best known robust accuracy (RobustBench's 'external', else AutoAttack's) "
                             "then clean accuracy (models without either last); clean/pgd/mce/sd: that error, "
                             "lowest first; name (default: %(default)s)")
    parser.add_argument("--metric", default="err", choices=list(METRICS),
                        help="err: errors in %% (the paper's convention); acc: accuracies in %% (RobustBench's), "
                             "every error column converted, worst class and mCE included (default: %(default)s)")
    parser.add_argument("--html", nargs="?", const="", default=None, metavar="FILE",
                        help="also write the self-contained HTML page (sortable tables, per-model details, "
                             "embedded figures); without FILE: DIR/leaderboard.html (a new name if it exists, "
                             "unless --force)")
    parser.add_argument("--plots", action="store_true",
                        help="also draw class-wise / corruption / ImageNet-X figures into DIR/plots")
    parser.add_argument("--plot-format", default="png", metavar="FMT[,FMT]",
                        help="formats of --plots' figures, comma-separated: png, svg, pdf (default: %(default)s)")
    parser.add_argument("--title", default=None,
                        help="table title (default: the title of the config the models were evaluated with, else "
                             "'Leaderboard: <folder name>')")
    parser.add_argument("--force", action="store_true",
                        help="overwrite DIR/leaderboard.md (and .html); without it an existing one is kept and the "
                             "new table goes to leaderboard-2.md (-3, ...)")


def stored_title(infos: Sequence[tuple[str, Mapping[str, Any]]]) -> str | None:
    """The config title the models were evaluated under (``labelaug.title``, written by rbla evaluate), when they
    agree on one."""
    titles = {(info.get("labelaug") or {}).get("title") for _, info in infos}
    titles.discard(None)
    return titles.pop() if len(titles) == 1 else None


def free_name(path: Path, overwrite: bool) -> Path:
    """``path`` itself if it does not exist or ``overwrite``; else ``<stem>-2<suffix>``, ``-3``, ...: the first
    free name (what rbla evaluate wrote is not replaced by a re-render with other options)."""
    if overwrite or not path.exists():
        return path
    i = 2
    while (candidate := path.with_name(f"{path.stem}-{i}{path.suffix}")).exists():
        i += 1
    return candidate


def render(folder: str | Path, sort: str = "robustbench", html: str | Path | bool | None = None,
           plots: bool = False, title: str | None = None, quiet: bool = False, metric: str = "err",
           overwrite: bool = False, plot_formats: Sequence[str] = ("png",), page_figures: bool = True
           ) -> dict[str, object]:
    """Write ``leaderboard.md`` (and the HTML page / plots); returns ``{"markdown": text, "paths": [...],
    "order": keys, "html": path or None}`` (``order``: the models in table order, group after group).

    ``html``: a path, or True / ``""`` for ``DIR/leaderboard.html``. Without ``overwrite`` an existing
    ``leaderboard.md`` / ``.html`` in DIR is kept and the new one gets the next free name (``leaderboard-2.md``);
    ``rbla evaluate`` and ``rbla demo`` overwrite theirs. The title defaults to the config's (stored in the
    model_info files). ``page_figures=False`` leaves the figures out of the HTML page (faster; rbla evaluate
    with ``runtime.plots: false``)."""
    folder = Path(folder)
    infos = load_model_infos(folder)
    tables = build_tables(infos, sort=sort, metric=metric)
    title = title or stored_title(infos) or f"Leaderboard: {folder.resolve().name}"
    markdown = to_markdown(tables, infos, title=title, metric=metric)
    explicit_html = Path(html) if html and html is not True else None
    with output_locks([folder / "leaderboard.md", *([explicit_html] if explicit_html else [])], "leaderboard"):
        md_path = free_name(folder / "leaderboard.md", overwrite)
        html_path = None
        if html is True or html == "":
            html_path = free_name(folder / "leaderboard.html", overwrite)
        elif html:
            html_path = Path(html)
        if plots:
            plot_formats = check_formats(plot_formats)
        atomic_write_bytes(md_path, markdown.encode())
        paths: list[Path] = [md_path]
        if html_path is not None:
            atomic_write_bytes(html_path, to_html(tables, infos, title=title, metric=metric,
                                                  plots=page_figures).encode())
            paths.append(html_path)
        if plots:
            by_key = dict(infos)
            paths += write_plots([(k, by_key[k]) for t in tables for k in t.keys], folder / "plots", plot_formats)
    if not quiet:
        print(markdown)
        print("wrote " + ", ".join(str(p) for p in paths))
    return {"markdown": markdown, "paths": paths, "order": [k for t in tables for k in t.keys], "html": html_path}


def main(args: argparse.Namespace) -> int:
    if training_runs(args.dir) and not list(Path(args.dir).glob("**/*.json")):  # rbla train run folder(s)
        if not args.plots:
            raise UserError(f"{args.dir} holds rbla train runs, not model_info JSONs: pass --plots to draw their "
                            "per-class training curves, or give an rbla evaluate output folder")
        paths = plot_training_folder(args.dir)
        print("wrote " + (", ".join(str(p) for p in paths) if paths else "nothing (no per-class columns in "
                                                                          "summary.csv)"))
        return 0
    if args.html and Path(args.html).is_dir():
        raise UserError(f"--html {args.html} is a folder: pass the HTML file to write, e.g. --html "
                        f"{Path(args.html) / 'leaderboard.html'} (or --html alone for DIR/leaderboard.html)")
    formats = [f.strip() for f in str(args.plot_format).split(",") if f.strip()]
    render(args.dir, sort=args.sort, html=args.html, plots=args.plots, title=args.title, metric=args.metric,
           overwrite=args.force, plot_formats=formats)
    return 0
