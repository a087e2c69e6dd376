"""``python -m lnsim.cli``: the ``lnsim`` command."""

import sys

from lnsim.cli.main import main

sys.exit(main())
