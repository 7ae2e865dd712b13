"""Inputs as frameworks have them, reduced to the flat vector :func:`gradlab.check` checks.

* **Several inputs or a tree of arrays**: ``theta`` a tuple (the positional arguments
  of ``f`` and ``grad``) or a dict (one argument), nested dicts, tuples and lists of
  arrays inside. The leaves are flattened in order (a dict in its keys' order) into one
  vector; ``f`` and ``grad`` see the tree, rebuilt in the format's dtype, and ``grad``
  returns a tree of the same structure. The report names each component
  (``"w[1, 0]"``, ``"arg1[3]"``).
* **Masked entries**: ``-inf`` or ``+inf`` in ``theta`` (an attention mask, a masked
  logit) stay fixed and are not checked; the check runs over the finite coordinates and
  the result lists the masked ones. NaN is never a mask: it is refused.

:class:`Problem` does the reduction and maps the flat check's report back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Problem", "is_structured", "masked_note"]


@dataclass(frozen=True)
class _Leaf:
    shape: tuple[int, ...]
    name: str


@dataclass(frozen=True)
class _Node:
    kind: str  # "dict", "tuple", "list"
    keys: tuple[Any, ...]
    children: tuple[Any, ...]  # _Node or _Leaf


def _layout(tree: Any, name: str) -> _Node | _Leaf:
    if isinstance(tree, Mapping):
        keys = tuple(tree)
        return _Node("dict", keys, tuple(_layout(tree[k], f"{name}.{k}" if name else str(k))
                                         for k in keys))
    if isinstance(tree, (tuple, list)) and any(_is_container_or_array(v) for v in tree):
        kind = "tuple" if isinstance(tree, tuple) else "list"
        return _Node(kind, tuple(range(len(tree))),
                     tuple(_layout(v, f"{name}[{i}]" if name else f"arg{i}") for i, v in enumerate(tree)))
    arr = np.asarray(tree)
    if arr.dtype.kind not in "iuf" and arr.dtype.name != "bfloat16":
        raise TypeError(f"theta: the leaf {name or 'theta'} must hold real numbers, got {arr.dtype}")
    return _Leaf(arr.shape, name or "theta")


def _is_container_or_array(v: Any) -> bool:
    return isinstance(v, (Mapping, tuple, list)) or np.ndim(v) > 0


def _leaves(layout: _Node | _Leaf) -> list[_Leaf]:
    if isinstance(layout, _Leaf):
        return [layout]
    return [leaf for child in layout.children for leaf in _leaves(child)]


def _flatten(tree: Any, layout: _Node | _Leaf, what: str) -> list[np.ndarray]:
    """The leaves of ``tree`` in ``layout``'s order, checked against its structure."""
    if isinstance(layout, _Leaf):
        arr = np.asarray(tree)
        if arr.shape != layout.shape:
            raise ValueError(f"{what}: {layout.name} has shape {arr.shape}, theta's has {layout.shape}")
        return [arr.reshape(-1)]
    if layout.kind == "dict":
        if not isinstance(tree, Mapping) or set(tree) != set(layout.keys):
            got = sorted(map(str, tree)) if isinstance(tree, Mapping) else type(tree).__name__
            raise ValueError(f"{what} must have theta's keys {sorted(map(str, layout.keys))}, got {got}")
        parts = [tree[k] for k in layout.keys]
    else:
        if not isinstance(tree, (tuple, list)) or len(tree) != len(layout.keys):
            raise ValueError(f"{what} must have theta's structure ({len(layout.keys)} entries), "
                             f"got {type(tree).__name__}")
        parts = list(tree)
    return [a for part, child in zip(parts, layout.children, strict=True)
            for a in _flatten(part, child, what)]


def _build(layout: _Node | _Leaf, flat: np.ndarray, start: int = 0) -> tuple[Any, int]:
    if isinstance(layout, _Leaf):
        size = int(np.prod(layout.shape, dtype=np.int64))
        return flat[start:start + size].reshape(layout.shape), start + size
    out = []
    for child in layout.children:
        value, start = _build(child, flat, start)
        out.append(value)
    if layout.kind == "dict":
        return dict(zip(layout.keys, out, strict=True)), start
    return (tuple(out) if layout.kind == "tuple" else out), start


def _names(layout: _Node | _Leaf) -> list[str]:
    names = []
    for leaf in _leaves(layout):
        if leaf.shape == ():
            names.append(leaf.name)
        else:
            names += [f"{leaf.name}[{', '.join(map(str, i))}]" for i in np.ndindex(*leaf.shape)]
    return names


def is_structured(theta: Any) -> bool:
    """Whether ``theta`` is a tree (dict, or tuple/list holding arrays) or has masked entries."""
    if isinstance(theta, Mapping):
        return True
    if isinstance(theta, (tuple, list)) and any(_is_container_or_array(v) for v in theta):
        return True
    try:
        arr = np.asarray(theta, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return bool(np.isinf(arr).any())


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
    names : list of str, one per checked coordinate
    masked : list of str, the names of the masked (infinite) entries
    """

    def __init__(self, f: Callable[..., Any], grad: Any, theta: Any) -> None:
        self._layout = _layout(theta, "")
        self._star = isinstance(theta, tuple)
        flat = np.concatenate([a.astype(np.float64) for a in _flatten(theta, self._layout, "theta")])
        if np.isnan(flat).any():
            raise ValueError(f"theta must not hold NaN (only +-inf entries are masks); "
                             f"{_names(self._layout)[int(np.flatnonzero(np.isnan(flat))[0])]} is NaN")
        self._full = flat
        self._keep = np.flatnonzero(np.isfinite(flat))
        if not self._keep.size:
            raise ValueError("theta: every entry is masked (infinite); nothing to check")
        all_names = _names(self._layout)
        self.names = [all_names[i] for i in self._keep]
        self.masked = [all_names[i] for i in np.flatnonzero(~np.isfinite(flat))]
        self.theta = flat[self._keep]
        self._user_f = f
        self.f = self._f
        self.grad: Any = self._grad_function(grad) if callable(grad) else (
            None if grad is None else self._subset(grad, np.float64))
        self._user_grad = grad

    def _tree(self, x: np.ndarray) -> Any:
        full = self._full.astype(x.dtype)  # the masked entries as the format stores them
        if not np.array_equal(np.isinf(full), np.isinf(self._full)):
            raise ValueError(f"format {x.dtype} cannot hold theta's masked (infinite) entries")
        full[self._keep] = x
        return _build(self._layout, full)[0]

    def _call(self, fn: Callable[..., Any], x: np.ndarray) -> Any:
        tree = self._tree(np.asarray(x))
        return fn(*tree) if self._star else fn(tree)

    def _f(self, x: np.ndarray) -> Any:
        return self._call(self._user_f, x)

    def _subset(self, g: Any, dtype: Any) -> np.ndarray:
        leaves = _flatten(g, self._layout, "grad")
        flat = np.concatenate([np.asarray(a).reshape(-1) for a in leaves])
        return flat[self._keep] if dtype is None else flat[self._keep].astype(dtype)

    def _grad_function(self, grad: Callable[..., Any]) -> Callable[[np.ndarray], np.ndarray]:
        def flat_grad(x: np.ndarray) -> np.ndarray:
            return self._subset(self._call(grad, x), None)
        return flat_grad

    def relabel(self, result: Any) -> Any:
        """The flat check's result with the report's rows named and mapped to theta's entries."""
        report = result.report.copy()
        if "coord" in report.columns:
            idx = report.coord.to_numpy(dtype=int)
            report["coord"] = self._keep[idx]
            report.insert(1, "name", [self.names[i] for i in idx])
            kinks = [int(self._keep[k]) for k in result.kinks]
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
