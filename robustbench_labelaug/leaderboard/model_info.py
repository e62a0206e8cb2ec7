"""model_info files: moved to :mod:`robustbench_labelaug.results.model_info` (torch-free; build, validate, load).
This name stays for older imports."""

from ..results.model_info import *  # noqa: F403
from ..results.model_info import __all__  # noqa: F401
