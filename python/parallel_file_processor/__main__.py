"""``python -m parallel_file_processor`` runs the ``pfp`` command."""

import sys

from .cli import main

sys.exit(main())
