"""``rbla train``: adversarial / label-augmented training with timm-compatible flags."""

from __future__ import annotations

import argparse

from .args import add_arguments, resolve_config

HELP = "train a classifier: std, adv (PGD AT) or adv_plus (PGD AT + label augmentation)"
__all__ = ["HELP", "add_arguments", "main", "parse"]


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """timm's two-stage parse: ``-c`` YAML sets defaults, the command line wins."""
    return resolve_config(parser, argv)


def main(args: argparse.Namespace) -> int:
    # deferred: torch (kept out of the CLI's start)
    from .run import train

    result = train(args)
    print(f"checkpoint: {result.checkpoint}")
    return 0
