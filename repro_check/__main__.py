"""``python -m repro_check`` and the ``repro-check`` script: the command line of ``cli``.

The SIGTERM handler goes in before anything heavy is imported (typer, rich, click take a good
part of a second on a loaded machine), so a CI job cancelled at any moment after the interpreter
started gets the documented exit 130 and one line, never a silent death by signal.
"""

import os
import sys

# ``python -m`` puts the current folder first on sys.path; the ``repro-check`` script does not,
# and the parent never imports the user's code: a json.py, random.py or signal.py there must not
# replace the modules the CLI imports. (First, before any other import.)
if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

import signal

from repro_check.errors import EXIT_INTERRUPTED


def _terminate(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _forget_string_exec_interrupt() -> None:
    """Clear CPython's "a KeyboardInterrupt ended a string ``exec``" flag before exiting.

    When Ctrl-C or our SIGTERM handler strikes while a string ``exec``/``eval`` runs (dataclasses,
    namedtuple and typing build methods that way while typer, rich and optuna import), CPython
    sets a flag that a caller catching the KeyboardInterrupt never clears; under ``python -m``
    the interpreter then kills itself with SIGINT after our ``sys.exit(130)`` (exit -2 instead of
    the documented 130). Every string ``exec`` resets that flag as it starts, so an empty one is
    the documented-behaviour way to clear it.
    """
    exec("pass")


def main() -> None:
    """Console-script entry point (``repro_check.cli.main`` once the command line is loaded)."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        from repro_check.cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:  # before the command line took over its handling
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM: still exit 130
        try:
            sys.stderr.write("interrupted\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        _forget_string_exec_interrupt()
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit:  # the command line's own exit, 130 after an interrupt included
        _forget_string_exec_interrupt()
        raise


if __name__ == "__main__":
    main()
