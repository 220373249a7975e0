"""What to check: the settings model (``settings``) and how flags, config files and defaults become
one frozen ``CheckPlan`` (``config``).
"""
