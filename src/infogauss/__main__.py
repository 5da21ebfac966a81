"""``python -m infogauss``: the same command line as ``infogauss``."""

import sys

from .cli import main

sys.exit(main())
