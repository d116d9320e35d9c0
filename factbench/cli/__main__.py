"""`python -m factbench.cli ...` (and `torchrun -m factbench.cli ...`): the `factbench` command."""

import sys

from . import main

sys.exit(main())
