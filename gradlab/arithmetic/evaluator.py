"""How J is computed: in a format, or exactly, as one object.

An :class:`Evaluator` names the arithmetic an objective is evaluated in: the format's
own (its numpy dtype, or the binary{p} emulation rounding after every operation) or the
exact reference (mpmath at ``prec`` bits on the format's rounded data and constants,
each real matrix product summed exactly and rounded once). It builds the namespaces
for an evaluation, converts numbers into their type and evaluates J at a batch of
points. Every evaluation of J in gradlab goes through one, so the reference's settings
(``exact_dot``, the data format) cannot drift between call sites, and every call of fn is
confined to its namespace (:meth:`~gradlab.arithmetic.namespaces.Namespace.call`): arithmetic
that escapes ``xp`` raises ``NamespaceEscapeError`` instead of running in float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
from flint import acb, arb

from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic.balls import BallNamespace, BranchUndecided, mpf_mid
from gradlab.arithmetic.namespaces import MPNamespace, Namespace, _context, namespace_for
from gradlab.arithmetic.objective import Objective, call_batched, evaluate_one

__all__ = ["Evaluator"]


def _exact(v: Any) -> Any:
    """A ball's midpoint (an exact ball of a point: the point itself), else the number."""
    if isinstance(v, acb):
        return mpmath.mpc(mpf_mid(v.real), mpf_mid(v.imag))
    return mpf_mid(v) if isinstance(v, arb) else v


@dataclass(frozen=True, eq=False)
class Evaluator:
    """J of one objective in one arithmetic.

    Parameters
    ----------
    obj : Objective
    fmt : Format or str
        The format: the arithmetic itself, or, for the exact reference, the format whose
        rounded data and constants the reference sees.
    prec : int, optional
        ``None``: evaluate in the format. Otherwise the exact reference at ``prec`` bits.
    is_complex : bool
        Complex arithmetic (the complex step).
    record_branches : bool
        Record the branch signature of every point (kink detection).
    backend : {"mpmath", "arb"}
        The exact reference's arithmetic: mpmath (each real matrix product summed exactly),
        or python-flint's Arb balls, several times faster: its values are balls (``arb``,
        ``acb`` for the complex step) that provably contain the exact J. A batch where a
        branch's ball comparison stays undecided (a point within the balls' radius of a kink)
        is evaluated in mpmath instead, and its values are mpf (or mpc): exact to the
        working precision, but not proven.

    Examples
    --------
    >>> import numpy as np, gradlab as gl
    >>> obj = gl.Objective(lambda t, xp: xp.sum(t * t), np.array([0.1, 0.2]))
    >>> Evaluator(obj, "float32")(np.float32([[0.1, 0.2]]))[0].dtype
    dtype('float32')
    >>> ref = Evaluator.reference(obj, "float32", prec=200)
    >>> str(ref(ref.convert(np.array([[0.5, 0.25]])))[0][0])
    '0.3125'
    """

    obj: Objective
    fmt: fmts.Format
    prec: int | None = None
    is_complex: bool = False
    record_branches: bool = False
    backend: str = "mpmath"

    def __post_init__(self) -> None:
        object.__setattr__(self, "fmt", fmts.get(self.fmt))
        if self.prec is not None and (isinstance(self.prec, bool) or int(self.prec) < 2):
            raise ValueError(f"prec must be an integer >= 2 bits, got {self.prec!r}")
        if self.backend not in ("mpmath", "arb"):
            raise ValueError(f"backend must be 'mpmath' or 'arb', got {self.backend!r}")

    @classmethod
    def reference(cls, obj: Objective, fmt: fmts.Format | str, prec: int, *, is_complex: bool = False,
                  record_branches: bool = False, backend: str = "mpmath") -> Evaluator:
        """The exact reference for ``fmt`` at ``prec`` bits."""
        return cls(obj, fmts.get(fmt), int(prec), is_complex, record_branches, backend)

    @property
    def _balls(self) -> bool:
        return self.backend == "arb" and self.prec is not None

    @property
    def exact(self) -> bool:
        """True for the exact reference."""
        return self.prec is not None

    @property
    def dtype(self) -> Any:
        """The number type of values: the format's (complex) dtype, or ``object`` (mpmath)."""
        if self.exact or self.fmt.dtype is None:
            return object
        return self.fmt.complex_dtype if self.is_complex else self.fmt.dtype

    def namespace(self, batch_ndim: int = 0) -> Namespace:
        """A fresh namespace for one evaluation."""
        if self.prec is None:
            return namespace_for(self.fmt, batch_ndim, is_complex=self.is_complex,
                                 record_branches=self.record_branches)
        if self._balls:
            return BallNamespace(self.prec, data_format=self.fmt, batch_ndim=batch_ndim,
                                 record_branches=self.record_branches, is_complex=self.is_complex)
        return MPNamespace(self.prec, data_format=self.fmt, batch_ndim=batch_ndim,
                           is_complex=self.is_complex, record_branches=self.record_branches,
                           exact_dot=True)

    @property
    def context(self) -> Any:
        """The mpmath context of an exact or emulated arithmetic (its numbers' class)."""
        if self._balls:
            assert self.prec is not None
            return _context(self.prec)
        ns = self.namespace()
        if not isinstance(ns, MPNamespace):
            raise TypeError(f"{self.fmt.name} evaluates in numpy, not in an mpmath context")
        return ns.ctx

    def convert(self, values: Any) -> np.ndarray:
        """Numbers into this arithmetic's type (exact for the reference, once rounded for
        an emulated format; hardware values must already be of the dtype)."""
        return self.namespace().from_values(np.asarray(values))

    def __call__(self, points: np.ndarray) -> tuple[np.ndarray, list[bytes] | None]:
        """J at each row of ``points``.

        Parameters
        ----------
        points : ndarray, shape (B, N)
            Points already in this arithmetic's number type.

        Returns
        -------
        values : ndarray, shape (B,)
        signatures : list of bytes or None
            The branch signature of each point, when branches are recorded.
        """
        obj = self.obj
        points = np.asarray(points)
        if points.ndim != 2 or points.shape[1] != obj.n_params:
            raise ValueError(f"points must have shape (B, {obj.n_params}), got {points.shape}")
        if self._balls:
            return self._in_balls(points)
        return self._evaluate(points)

    def _in_balls(self, points: np.ndarray) -> tuple[np.ndarray, list[bytes] | None]:
        """J in Arb balls; mpmath numbers (mpf at ``prec``) at the points where a branch is
        undecided (a batch that fails is split in halves, down to those points)."""
        assert self.prec is not None
        try:
            return self._evaluate(points)
        except BranchUndecided:
            if len(points) == 1:
                mp = Evaluator(self.obj, self.fmt, self.prec, self.is_complex, self.record_branches)
                return mp._evaluate(mp.convert(np.asarray([[_exact(v) for v in row] for row in points],
                                                          dtype=object)))
        half = len(points) // 2
        (a, sa), (b, sb) = self._in_balls(points[:half]), self._in_balls(points[half:])
        values = np.empty(len(points), dtype=object)
        values[:half], values[half:] = a, b
        return values, (None if sa is None or sb is None else sa + sb)

    def _evaluate(self, points: np.ndarray) -> tuple[np.ndarray, list[bytes] | None]:
        obj = self.obj
        if obj.batch_safe:
            ns = self.namespace(1)
            values = call_batched(obj, points, ns)
            sigs = ns.branch_signature() if ns.branches is not None else None
            if sigs == []:
                sigs = [b""] * points.shape[0]
            return values, sigs
        values = np.empty(points.shape[0], dtype=self.dtype)
        sigs_l: list[bytes] = []
        for k, p in enumerate(points):
            ns = self.namespace(0)
            values[k] = evaluate_one(obj, p, ns)
            if ns.branches is not None:
                s = ns.branch_signature()
                sigs_l.append(s[0] if s else b"")
        return values, (sigs_l if self.record_branches else None)
