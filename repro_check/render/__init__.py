"""Renderers: each turns one report object into one output format. None of them computes."""
