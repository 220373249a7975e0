"""Running the plan: one fresh worker process per replicate (``runner``, ``replicates``), the
worker itself, its controls, target loading, the environment fingerprint and devices.
"""
