"""`python -m stunscope`."""

import sys

from stunscope.cli import main

sys.exit(main())
