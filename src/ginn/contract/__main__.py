"""``python -m ginn.contract``: regenerate the pipeline files from the contract (``--check``: only compare)."""

import sys

from .generate import main

sys.exit(main())
