"""``python -m infogauss.cli``: the same command line as ``infogauss``."""

import sys

from . import main

sys.exit(main())
