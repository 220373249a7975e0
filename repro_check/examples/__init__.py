"""Bundled objectives, so ``repro-check run repro_check.examples.<name>:objective`` works anywhere.

- ``quadratic``: deterministic; reproducible under repro-check's controls.
- ``noisy``: draws from an unseeded private RNG, so no seed fixes it: never reproducible.
- ``global_rng``: uses the global ``random`` module unseeded; reproducible only because
  repro-check seeds the global RNGs (``repro-check diagnose`` names that as a cause).
"""
