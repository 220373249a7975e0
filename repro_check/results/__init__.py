"""What came back: records of runs and trials, their comparison, the report value objects and the
validation of saved (untrusted) reports.
"""
