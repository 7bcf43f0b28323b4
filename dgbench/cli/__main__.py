"""`python -m dgbench.cli ...`: the same as the `dgbench` script."""

import sys

from dgbench.cli import main

sys.exit(main())
