"""``python -m mt5tester``: the ``mt5tester`` console script."""

import sys

from mt5tester.cli import main

sys.exit(main())
