"""Inputs as frameworks have them, reduced to the flat vector :func:`gradlab.check` checks.

The structure itself (trees of arrays, several inputs, ``+-inf`` masks) is
:class:`gradlab.arithmetic.trees.FlatView`'s. :class:`Problem` wraps the function and its
gradient around it and maps the flat check's report back: every row gets the entry's name
and its position among theta's entries; the masked entries are listed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from gradlab.arithmetic.trees import FlatView, is_structured

__all__ = ["Problem", "is_structured", "masked_note"]


class Problem:
    """A structured or masked check reduced to a flat vector over the checked coordinates.

    Parameters
    ----------
    f, grad : callables
        On the tree (a tuple ``theta`` is unpacked into positional arguments). ``grad`` may
        also be an array-like tree: the gradient at theta.
    theta : tree of array_like

    Attributes
    ----------
    f, grad : callables on the flat vector of checked coordinates (``grad`` an array if
        the gradient was given as one)
    theta : ndarray of float64, the checked coordinates
    names, masked : list of str (:class:`~gradlab.arithmetic.trees.FlatView`)
    """

    def __init__(self, f: Callable[..., Any], grad: Any, theta: Any) -> None:
        self.view = FlatView(theta)
        self.theta, self.names, self.masked = self.view.theta, self.view.names, self.view.masked
        self._user_f = f
        self.f = self._f
        self.grad: Any = self._grad_function(grad) if callable(grad) else (
            None if grad is None else self.view.free(grad, "grad").astype(np.float64))

    def _f(self, x: np.ndarray) -> Any:
        return self.view.call(self._user_f, x)

    def _grad_function(self, grad: Callable[..., Any]) -> Callable[[np.ndarray], np.ndarray]:
        def flat_grad(x: np.ndarray) -> np.ndarray:
            return self.view.free(self.view.call(grad, x), "grad")
        return flat_grad

    def relabel(self, result: Any) -> Any:
        """The flat check's result with the report's rows named and mapped to theta's entries."""
        report = result.report.copy()
        keep = self.view.keep
        if "coord" in report.columns:
            idx = report.coord.to_numpy(dtype=int)
            report["coord"] = keep[idx]
            report.insert(1, "name", [self.names[i] for i in idx])
            kinks = [int(keep[k]) for k in result.kinks]
        else:
            kinks = list(result.kinks)
        info = {**result.info, "masked": self.masked}
        return dataclasses.replace(result, report=report, info=info, kinks=kinks)


def masked_note(result: Any) -> str:
    """The sentence a result's text adds for masked entries."""
    masked = result.info.get("masked", [])
    if not masked:
        return ""
    shown = ", ".join(masked[:4]) + (", ..." if len(masked) > 4 else "")
    return f"; {len(masked)} masked (infinite) entries not checked: {shown}"
