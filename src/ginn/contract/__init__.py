"""The stage contract: every stage's flags (:mod:`.stages`), the pipeline's processes (:mod:`.pipeline`) and
params (:mod:`.params`), and the files rendered from them (:mod:`.render`, :mod:`.generate`).

This package imports only click, so stage commands can take their options from it without importing torch.
"""

from .stages import STAGES, stage_default, stage_options

__all__ = ["STAGES", "stage_default", "stage_options"]
