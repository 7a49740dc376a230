"""``python -m ngff_gpu.cli``: the ``ngff-gpu`` command."""

from ngff_gpu.cli import entry

entry()
