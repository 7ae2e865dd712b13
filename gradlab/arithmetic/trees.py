"""Trees of arrays and masked entries, as one flat vector of the free coordinates.

A point may be a dict (one argument), a tuple (several positional arguments) or nested
dicts, tuples and lists of arrays. :class:`FlatView` flattens the leaves in order (a
dict in its keys' order) into one vector, rebuilds the tree from a vector in any dtype,
and names every entry (``"W[1, 0]"``, ``"arg1[3]"``). Entries that are ``+-inf`` are
masks (an attention mask, a masked logit): they stay fixed, outside the vector of free
coordinates. NaN is never a mask: it is refused. The checker and the gradient estimator
see structured points through it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FlatView", "is_structured"]


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


class FlatView:
    """A tree of arrays (or a vector with masked entries) as a vector of its free entries.

    Parameters
    ----------
    theta : tree of array_like

    Attributes
    ----------
    theta : ndarray of float64
        The free (finite) entries, in order.
    names : list of str
        One per free entry.
    masked : list of str
        The names of the masked (infinite) entries.
    keep : ndarray of int
        The free entries' positions among all of theta's entries.
    """

    def __init__(self, theta: Any) -> None:
        self._layout = _layout(theta, "")
        self._star = isinstance(theta, tuple)
        flat = np.concatenate([a.astype(np.float64) for a in _flatten(theta, self._layout, "theta")])
        all_names = _names(self._layout)
        if np.isnan(flat).any():
            raise ValueError(f"theta must not hold NaN (only +-inf entries are masks); "
                             f"{all_names[int(np.flatnonzero(np.isnan(flat))[0])]} is NaN")
        self._full = flat
        self.keep = np.flatnonzero(np.isfinite(flat))
        if not self.keep.size:
            raise ValueError("theta: every entry is masked (infinite); nothing is free")
        self.names = [all_names[i] for i in self.keep]
        self.masked = [all_names[i] for i in np.flatnonzero(~np.isfinite(flat))]
        self.theta = flat[self.keep]

    def tree(self, x: np.ndarray) -> Any:
        """theta's tree with the free entries ``x``, in x's dtype (masks as it stores them)."""
        x = np.asarray(x)
        full = self._full.astype(x.dtype)
        if not np.array_equal(np.isinf(full), np.isinf(self._full)):
            raise ValueError(f"format {x.dtype} cannot hold theta's masked (infinite) entries")
        full[self.keep] = x
        return _build(self._layout, full)[0]

    def call(self, fn: Callable[..., Any], x: np.ndarray) -> Any:
        """``fn`` at the tree of ``x`` (a tuple theta unpacked into positional arguments)."""
        tree = self.tree(x)
        return fn(*tree) if self._star else fn(tree)

    def free(self, tree: Any, what: str) -> np.ndarray:
        """The free entries of a tree of theta's structure (a gradient), checked against it."""
        flat = np.concatenate([np.asarray(a).reshape(-1) for a in _flatten(tree, self._layout, what)])
        return flat[self.keep]

    def expand(self, values: np.ndarray, fill: float = np.nan) -> Any:
        """Values of the free entries as theta's tree (float64), ``fill`` at the masked ones."""
        full = np.full(self._full.size, fill, dtype=np.float64)
        full[self.keep] = values
        return _build(self._layout, full)[0]
