"""pytest plugin: a ``repro_check`` fixture and a ``repro_check`` marker.

    @pytest.mark.repro_check(runs=2, trials=10)
    def test_study_is_reproducible(repro_check):
        repro_check.assert_reproducible("train.py:objective")

    def test_script_is_reproducible(repro_check):
        repro_check.assert_reproducible("train.py", args=["--seed", "42"])

The marker's keyword arguments (on a test, class or module; the closest wins) become the
defaults of the fixture's calls, whose own keyword arguments win over both. Registered through
the ``pytest11`` entry point, so it loads in every pytest session: this module imports nothing
heavy; the check itself loads on the first call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from repro_check.results.report import RunReport

MARKER = "repro_check"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**settings): defaults (runs=, trials=, seed=, args=, ...) for the "
        "repro_check fixture's check() and assert_reproducible()",
    )


class ReproCheck:
    """What the ``repro_check`` fixture returns: ``repro_check.check`` with the marker's
    settings as defaults, and an assertion that fails the test with the divergence."""

    def __init__(self, defaults: Mapping[str, Any] | None = None) -> None:
        self.defaults: dict[str, Any] = dict(defaults or {})

    def check(self, objective: str | Callable[..., Any], **settings: Any) -> RunReport:
        """Run the check (see ``repro_check.check``) and return the report, whatever it says.

        A bad setting or objective raises ``ConfigError``/``TargetError`` as ``check`` does."""
        __tracebackhide__ = True
        from repro_check.api import check
        from repro_check.errors import TargetError

        try:
            return check(objective, **{**self.defaults, **settings})
        except TargetError as exc:
            if isinstance(objective, str) and str(exc).startswith("no such file: "):
                raise TargetError(  # a test's folder is not where its paths are looked up
                    f"{exc} (a relative path is relative to the current folder, {os.getcwd()}, "
                    "not to the test file)"
                ) from None
            raise

    def assert_reproducible(
        self, objective: str | Callable[..., Any], **settings: Any
    ) -> RunReport:
        """Run the check; fail the test unless it is reproducible. Returns the report.

        A bad setting or objective fails the test too, with the one-line error."""
        __tracebackhide__ = True
        from repro_check.errors import ReproCheckError

        try:
            report = self.check(objective, **settings)
        except ReproCheckError as exc:
            problem = f"repro-check could not run: {type(exc).__name__}: {exc}"
        else:
            if report.reproducible:
                return report
            problem = failure_message(report)
        pytest.fail(problem, pytrace=False)  # outside the except: no chained traceback


def failure_message(report: RunReport) -> str:
    """First line (what pytest's summary shows): the verdict and the first divergence, e.g.
    ``not reproducible: trial 0, values: value 0.857 vs 0.987 (run 0 vs run 1)``; then the
    check's settings, the runs' errors and how to find the cause."""
    from repro_check.render import fmt
    from repro_check.results.report import N_JOBS_NOTE

    plan = report.plan
    divergence = report.comparison.divergence
    if divergence is not None:
        detail = fmt.divergence_line(divergence)
    else:  # the headline without its upper-case verdict: "2 of 3 runs did not finish; ..."
        headline = fmt.headline(report)
        detail = headline.partition(": ")[2] or headline
    lines = [f"{report.verdict}: {detail}", f"  checked {checked_line(report)}"]
    lines += [f"  run {run.index} {run.status}: {run.error}" for run in report.runs if run.error]
    if plan.study.n_jobs != 1:
        lines.append(f"  note: {N_JOBS_NOTE}")
    if report.complete:
        lines.append(f"  {fmt.diagnose_hint(report)}")
    return "\n".join(lines)


def checked_line(report: RunReport) -> str:
    """What was checked, true per mode: an objective's study as the check built it (``20
    trials, seed 0``); a script's own studies as its runs made them (their real trial counts;
    the seed only when a control gave it one)."""
    plan = report.plan
    if report.mode != "script":
        return (
            f"{report.target}: {len(report.runs)} runs × {plan.study.trials} trials, "
            f"seed {plan.seed}"
        )
    import shlex

    from repro_check.render.fmt import script_words

    made = [run for run in report.runs if run.studies]
    studies = max((len(run.studies) for run in made), default=0)
    trials = max((sum(len(study.trials) for study in run.studies) for run in made), default=0)
    held = f"{trials} trials" if studies == 1 else f"{studies} studies ({trials} trials)"
    seed = f", seed {plan.seed}" if plan.controls.enabled() else ""  # as written: none given
    return f"{shlex.join(script_words(plan))}: {len(report.runs)} runs × {held}{seed}"


@pytest.fixture
def repro_check(request: pytest.FixtureRequest) -> ReproCheck:
    """A helper whose ``check``/``assert_reproducible`` take ``@pytest.mark.repro_check``'s
    settings as defaults."""
    defaults: dict[str, Any] = {}
    for mark in reversed(list(request.node.iter_markers(MARKER))):  # closest applied last
        if mark.args:
            pytest.fail(
                f"@pytest.mark.{MARKER} takes keyword arguments only (runs=, trials=, ...), "
                f"got {mark.args!r}",
                pytrace=False,
            )
        defaults.update(mark.kwargs)
    if defaults:
        import inspect

        from repro_check.api import check

        known = set(inspect.signature(check).parameters) - {"objective"}
        unknown = sorted(set(defaults) - known)
        if unknown:
            pytest.fail(
                f"@pytest.mark.{MARKER}: unknown setting {unknown[0]!r} "
                f"(choose from {', '.join(sorted(known))})",
                pytrace=False,
            )
    return ReproCheck(defaults)
