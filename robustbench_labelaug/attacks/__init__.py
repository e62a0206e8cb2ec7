"""torchattacks-style attacks, one per file: ``PGD`` (torchattacks PGD with a fused projection, used in
training), ``EarlyStopPGD`` (the evaluation PGD: early stop, any-iterate success) and ``PaperPGD`` (the authors'
evaluation attack, for the ``paper`` protocol)."""

from .early_stop_pgd import EarlyStopPGD, PGDOutcome, StreamOutcome
from .paper_pgd import PaperPGD
from .pgd import PGD, linf_bounds

# name -> class; each key is the class's name (and the torchattacks ``attack`` name its instances report)
ATTACKS = {"PGD": PGD, "EarlyStopPGD": EarlyStopPGD, "PaperPGD": PaperPGD}

__all__ = ["ATTACKS", "PGD", "EarlyStopPGD", "PGDOutcome", "PaperPGD", "StreamOutcome", "linf_bounds"]
