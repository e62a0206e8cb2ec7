"""``rbla``: the command line. Each sub-command lives in its own module exposing ``HELP``,
``add_arguments(parser)`` and ``main(args) -> int``; a :class:`UserError` prints as one line and exits 2."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from .errors import UserError

COMMANDS: dict[str, str] = {
    "demo": "robustbench_labelaug.demo",
    "train": "robustbench_labelaug.train.cli",
    "evaluate": "robustbench_labelaug.leaderboard.evaluate",
    "leaderboard": "robustbench_labelaug.leaderboard.cli",
    "zoo": "robustbench_labelaug.zoo.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rbla", description="Label-augmented adversarial training (Adv+) and "
                                     "class-wise robustness evaluation.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_main=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="pkg_resources")
    args = build_parser().parse_args(argv)
    try:
        return int(args._main(args) or 0)
    except UserError as exc:
        print(f"rbla {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rbla {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
