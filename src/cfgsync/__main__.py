"""``python -m cfgsync``: the same as the ``cfgsync`` command."""

from cfgsync.cli import main

main()
