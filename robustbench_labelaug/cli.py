"""``rbla``: the command line. Each sub-command lives in its own module exposing ``HELP``,
``add_arguments(parser)`` and ``main(args) -> int`` (and optionally ``parse(parser, argv)`` for config files);
only the chosen sub-command's module is imported. A :class:`UserError` prints as one line and exits 2; a reader
that closes the output early (``rbla compare a b | head``) ends any command quietly with 141 (128 + SIGPIPE)."""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import warnings

from . import __version__
from .errors import UserError
from .fileio import no_space

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("robustbench_labelaug.demo", "the embedded demo: train, evaluate and rank digits Std/Adv/Adv+"),
    "train": ("robustbench_labelaug.train.cli", "train std / adv (PGD AT) / adv_plus (PGD AT + label aug)"),
    "timm-train": ("robustbench_labelaug.timm_train.cli",
                   "run timm's own train.py, unmodified, with the hook installed"),
    "evaluate": ("robustbench_labelaug.runner.cli", "evaluate models from a config into model_info JSONs"),
    "leaderboard": ("robustbench_labelaug.leaderboard.cli", "render model_info JSONs as a leaderboard"),
    "zoo": ("robustbench_labelaug.zoo.cli", "list model-zoo entries, export checkpoints into the zoo"),
    "compare": ("robustbench_labelaug.compare.cli", "compare two evaluated models per class: paired CIs, tests, verdict"),
    "study": ("robustbench_labelaug.study.cli",
              "a study from one config: train and evaluate every cell, verdicts with CIs, matched robustness, power"),
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rbla", description="Label-augmented adversarial training (Adv+) and "
                                     "class-wise robustness evaluation.")
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND",
                        help="; ".join(f"{k}: {v[1]}" for k, v in COMMANDS.items()))
    parser.add_argument("--version", action="version", version=f"rbla {_version()}")
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("robustbench-labelaug")
    except PackageNotFoundError:  # run from a source tree

        return __version__


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults formatter, but no second "(default: ...)" when the help already tells the default, and
    none for unset values (None, False, "")."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help = action.help or ""
        default = action.default
        if ("default" in help.lower() or not action.option_strings or default is None or default is False
                or default == "" or default == argparse.SUPPRESS):
            return help
        return help + " (default: %(default)s)"


def command_parser(name: str):
    """The sub-command's module and its argument parser."""
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"rbla {name}", description=module.HELP,
                                     formatter_class=HelpFormatter)
    module.add_arguments(parser)
    return module, parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as one line (``warning: <message>``), not Python's file:line plus source line."""
    return f"warning: {' '.join(str(message).split())}\n"


SIGPIPE_EXIT = 141  # 128 + SIGPIPE: how a command whose reader went away (``rbla compare ... | head``) ends


def _stdout_to_devnull() -> None:
    """After a broken pipe: point stdout at /dev/null, so the interpreter's last flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # a captured stdout without a file descriptor: nothing to do
        pass


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="pkg_resources")
    top = _top_parser()
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"rbla {_version()}")
        return 0
    command = top.parse_args(argv[:1]).command
    saved_format, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        module, parser = command_parser(command)
        args = module.parse(parser, argv[1:]) if hasattr(module, "parse") else parser.parse_args(argv[1:])
        code = int(module.main(args) or 0)
        sys.stdout.flush()  # a reader that went away shows here, not as a traceback at the interpreter's exit
        return code
    except BrokenPipeError:  # the output's reader closed early (| head): every command ends quietly
        _stdout_to_devnull()
        return SIGPIPE_EXIT
    except UserError as exc:
        print(f"rbla {command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rbla {command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a full disk anywhere a write did not name it itself: one line naming the file
        if exc.errno != errno.ENOSPC:
            raise

        print(f"rbla {command}: error: {no_space(exc.filename or '(unknown file)')}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = saved_format


if __name__ == "__main__":
    sys.exit(main())
