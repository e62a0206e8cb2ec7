"""Training: timm-style flags (``args``), the epoch loop (``engine``), checkpoints and the run (``run.train``)."""

from .._lazy import lazy_exports

__getattr__ = lazy_exports(__name__, {"parse_args": ".args", "RunCheckpointSaver": ".checkpoint",
                                      "read_checkpoint": ".checkpoint"})

__all__ = ["RunCheckpointSaver", "parse_args", "read_checkpoint", "train"]


def train(args):
    """Run ``rbla train`` with parsed ``args`` (see :func:`parse_args`)."""
    # deferred: torch (kept out of the CLI's start)
    from .run import train as _train

    return _train(args)
