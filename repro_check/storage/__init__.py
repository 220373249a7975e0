"""Replicate studies in any Optuna storage, checks shared between processes, and the masking of
secrets in storage URLs.
"""
