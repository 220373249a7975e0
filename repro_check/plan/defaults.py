"""What a check uses when neither a flag, a config file nor the API says: the controls (one
definition per mode, used by the plan every command builds: ``run``, and ``compare``'s gate,
which is ``run`` by construction) and the storage of a check named without ``--storage``."""

from __future__ import annotations

from repro_check.plan.settings import Controls
from repro_check.plan.targets import is_script

DEFAULT_STORAGE = "sqlite:///repro-check.db"
"""Where a check named with ``--name`` but no ``--storage`` keeps its studies."""


def default_controls(target: str) -> Controls:
    """A script is checked as written (no control: it seeds itself, or that is the finding);
    an objective runs in repro-check's own study with every control on."""
    return Controls.none() if is_script(target) else Controls()
