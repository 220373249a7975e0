"""The commands as library calls (run, compare, diagnose, baseline, diff): each returns one report
value object; none prints or exits.
"""
