"""``python -m llve`` is the same as the ``llve`` console script."""

import sys

from llve.reproduce import main

sys.exit(main())
