"""``python -m nddr``: the same as the ``nddr`` command."""

import sys

from nddr.cli import main

sys.exit(main())
