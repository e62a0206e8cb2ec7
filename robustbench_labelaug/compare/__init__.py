"""Comparing two evaluated models class by class (``rbla compare``, :func:`compare`): paired statistics
(:mod:`robustbench_labelaug.stats.paired`, pure functions), the comparison (:mod:`.core`), the per-example result files it reads
(:mod:`.files`, a stable format) and the command line (:mod:`.cli`)."""

from .core import Comparison, EvaluatorComparison, compare

__all__ = ["Comparison", "EvaluatorComparison", "compare"]


def _callable_package() -> None:
    """``from robustbench_labelaug import compare; compare(a, b)``: the package is callable as its function."""
    import sys
    import types

    class _CallablePackage(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return compare(*args, **kwargs)

    sys.modules[__name__].__class__ = _CallablePackage


_callable_package()
