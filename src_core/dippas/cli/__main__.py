"""``python -m dippas.cli``: same as the ``dippas`` console script."""

import sys

from . import main

sys.exit(main())
