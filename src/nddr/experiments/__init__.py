"""Experiments: the suites of the paper's tables, their plans and their tables."""
