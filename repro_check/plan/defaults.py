"""The controls a check applies when neither a flag, a config file nor the API names any: one
definition per mode, used by the plan every command builds (``run``, and ``compare``'s gate,
which is ``run`` by construction)."""

from __future__ import annotations

from repro_check.plan.settings import Controls
from repro_check.plan.targets import is_script


def default_controls(target: str) -> Controls:
    """A script is checked as written (no control: it seeds itself, or that is the finding);
    an objective runs in repro-check's own study with every control on."""
    return Controls.none() if is_script(target) else Controls()
