"""``python -m dippas``: same as the ``dippas`` console script."""

import sys

from .cli import main

sys.exit(main())
