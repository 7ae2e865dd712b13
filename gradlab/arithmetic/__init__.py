"""Arithmetic: floating-point formats and their one audited rounding, the evaluation
namespaces, the objective protocol, FD schemes and the stencil."""
