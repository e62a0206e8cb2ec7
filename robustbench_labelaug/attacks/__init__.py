"""torchattacks-style attacks, one per file: ``PGD`` (torchattacks PGD with a fused projection, used in
training), ``EarlyStopPGD`` (the evaluation PGD: early stop, any-iterate success), ``PaperPGD`` (the authors'
evaluation attack, for the ``paper`` protocol) and ``MarginPGD`` (PGD on the scale-invariant DLR loss, for the
gradient-masking checks)."""

from ..registry import Registry
from .early_stop_pgd import EarlyStopPGD, PGDOutcome, StreamOutcome, example_seed, example_starts
from .margin_pgd import MarginPGD, dlr_loss
from .paper_pgd import PaperPGD
from .pgd import PGD, linf_bounds

# name -> class; each key is the class's name (and the torchattacks ``attack`` name its instances report)
ATTACKS: Registry[type] = Registry("attack")
for _cls in (PGD, EarlyStopPGD, PaperPGD, MarginPGD):
    ATTACKS.register(_cls.__name__, _cls)

__all__ = ["ATTACKS", "PGD", "EarlyStopPGD", "MarginPGD", "PGDOutcome", "PaperPGD", "StreamOutcome", "dlr_loss",
           "example_seed", "example_starts", "linf_bounds"]
