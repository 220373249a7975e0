"""Settings given that would change nothing: a seed or thread count that no control of the
check reads. They are refused, not ignored: on a script checked as written,
``repro-check run train.py --seed 42`` most likely meant the script's own ``-- --seed 42``, and
would otherwise report on a check that never used it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from repro_check.errors import ConfigError
from repro_check.plan.settings import SEEDED_CONTROLS, CheckPlan, Controls
from repro_check.plan.targets import MODULE_PREFIX, is_script, script_name


class InertSettingError(ConfigError):
    """A setting given (a flag, an API argument) that would change nothing: a seed or thread
    count no control of the check reads, or a study flag for a script (which builds its own
    studies). Refused rather than ignored. On a script it was most likely meant for the script
    (typed before ``--``): ``script`` names the script (None for an objective) and ``base`` is
    the message without its advice, so that the CLI can show the command corrected and the API
    the ``args=`` to pass instead."""

    def __init__(
        self, base: str, advice: str, setting: str, script: str | None, flag: str | None = None
    ) -> None:
        super().__init__(base + advice)
        self.base = base
        self.setting = setting
        self.script = script
        self.flag = flag or f"--{setting.replace('_', '-')}"
        """The flag as typed (``--seed``; ``--direction`` for the ``directions`` setting)."""


def _inert_seed(plan: CheckPlan, given: str, runs_under: Sequence[Controls]) -> str | None:
    """Why the seed ``given`` changes nothing under ``runs_under``, or None when it matters."""
    if any(controls.take_seed for controls in runs_under):
        return None
    if is_script(plan.target) and plan.controls == Controls.none():
        return f"{given} applies to the check's controls, which are off for a script"
    return (
        f"{given} applies to the controls that take a seed ({', '.join(SEEDED_CONTROLS)}), "
        "and none of them is on"
    )


def _inert_threads(plan: CheckPlan, given: str, runs_under: Sequence[Controls]) -> str | None:
    """Why the thread count ``given`` changes nothing under ``runs_under``, or None."""
    if any(controls.threads for controls in runs_under):
        return None
    why = "a script runs as written by default" if is_script(plan.target) else "--controls"
    return (
        f"{given} sets the count the threads control pins, and that control is off ({why}): "
        "add threads to --controls (or --controls all), or leave the thread count out"
    )


def check_settings_apply(
    plan: CheckPlan, given: Mapping[str, str], runs_under: Sequence[Controls] | None = None
) -> None:
    """Refuse a seed or a thread count that was given but that no control of the check reads.

    ``given`` maps the settings the user set (``seed``, ``threads``) to how they were written
    (``--seed``, ``seed=``); ``runs_under`` is every set of controls the check applies
    (``run``: the plan's own, the default; ``compare``: each condition's). A script checked as
    written reads neither: ``repro-check run train.py --seed 42`` most likely meant
    ``-- --seed 42``, and would otherwise report on a check that ignored it. Raises
    ``InertSettingError``."""
    controls = list(runs_under) if runs_under is not None else [plan.controls]
    script = None
    if is_script(plan.target):  # train.py, or pkg.mod for -m pkg.mod
        script = script_name(plan.target).removeprefix(MODULE_PREFIX)
    for setting, why in (("seed", _inert_seed), ("threads", _inert_threads)):
        if setting not in given:
            continue
        base = why(plan, given[setting], controls)
        if base is None:
            continue
        if script is not None:
            advice = "; a script's own arguments go after --"
        elif setting == "seed":
            advice = f": turn one on in --controls, or leave {given[setting]} out"
        else:
            advice = ""
        raise InertSettingError(base, advice, setting, script)
