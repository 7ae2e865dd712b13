"""Checking: the gradient checker, the peers' checkers, the exercise's rule and the
framework adapters."""
