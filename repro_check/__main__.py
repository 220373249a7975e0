"""``python -m repro_check``: the same command line as the ``repro-check`` script."""

import os
import sys

# ``python -m`` puts the current folder first on sys.path; the ``repro-check`` script does not,
# and the parent never imports the user's code: a json.py or random.py there must not replace
# the modules the CLI imports.
if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from repro_check.cli import main

main()
