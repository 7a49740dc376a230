"""``python -m ngff_gpu.cli``: the ``ngff-gpu`` command."""

import sys

from . import main

sys.exit(main())
