"""torchattacks-style attacks, one per file: ``PGD`` (torchattacks PGD with a fused projection, used in
training), ``EarlyStopPGD`` (the evaluation PGD: early stop, any-iterate success) and ``PaperPGD`` (the authors'
evaluation attack, for the ``paper`` protocol)."""

from .early_stop_pgd import EarlyStopPGD, PGDOutcome, StreamOutcome, example_seed, example_starts
from .paper_pgd import PaperPGD
from .pgd import PGD, linf_bounds

__all__ = ["PGD", "EarlyStopPGD", "PGDOutcome", "PaperPGD", "StreamOutcome", "example_seed", "example_starts",
           "linf_bounds"]
