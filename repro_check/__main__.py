"""``python -m repro_check``: the same command line as the ``repro-check`` script."""

from repro_check.cli import main

main()
