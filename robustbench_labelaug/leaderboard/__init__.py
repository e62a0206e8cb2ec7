"""Leaderboards from model_info JSONs: ``rbla leaderboard`` (markdown/HTML tables), the headline summary
and the paper's figures. Rendering only: ``rbla evaluate`` lives in :mod:`robustbench_labelaug.runner`."""
