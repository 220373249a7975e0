"""Error types of the core, each carrying the exit code the CLI maps it to.

The core never exits; it raises one of these and ``cli`` turns it into a one-line message
and the code. Codes: 0 reproducible, 1 not reproducible, 2 bad input, 3 a replicate could not
finish, 130 interrupted.
"""

from __future__ import annotations

EXIT_REPRODUCIBLE = 0
EXIT_NOT_REPRODUCIBLE = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
EXIT_INTERRUPTED = 130


class ReproCheckError(Exception):
    """Base error: its message is one line meant for the user, its ``exit_code`` for the shell."""

    exit_code = EXIT_USAGE


class ConfigError(ReproCheckError):
    """A bad flag, config value or TOML file."""


class TargetError(ReproCheckError):
    """The objective could not be loaded: missing module/file, syntax error, import failure..."""


class DeviceError(ReproCheckError):
    """The requested device is not available (e.g. ``--device cuda`` without CUDA)."""
