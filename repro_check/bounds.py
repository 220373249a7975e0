"""The bounds of what a saved report may hold: the worker keeps what it streams inside them,
and ``validate`` refuses a file past them. A module of its own so the worker does not import
the validator (and the report model behind it) to learn three numbers."""

MAX_TEXT = 65_536
"""Longest string in a saved report (characters); the schema says the same."""
MAX_COUNT = 10**9
"""Largest count (runs, trials, workers, trial numbers) in a saved report; the schema's
``maximum`` says the same, and the CLI's bounds stay below it."""
MAX_DEPTH = 32
"""Deepest nesting of free-form values (user attributes, kwargs, environment)."""
