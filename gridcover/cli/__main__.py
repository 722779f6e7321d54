"""``python -m gridcover.cli``: the ``gridcover`` command."""

import sys

from gridcover.cli import main

sys.exit(main())
