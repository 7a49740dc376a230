"""``python -m ngff_gpu.cli``: the ``ngff-gpu`` command."""

import sys

from ngff_gpu.cli import main

sys.exit(main())
