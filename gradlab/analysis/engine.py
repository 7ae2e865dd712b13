"""The FD engine: finite-difference gradients in a format and their exact decomposition.

For coordinate i, nominal step h and scheme (offsets k_j, weights c_j):

* ``D_F``     everything in the format F: h_F = fl(h), the points
  fl(theta_i + fl(k_j h_F)), J, the integer-weighted sum and the division by
  fl(den * h_F);
* ``D_real``  the same realised points, J, the sum and the division by h exact;
* ``D_exact`` the points theta_i + k_j h, everything exact;
* ``g``       the exact gradient (all at the format's rounded theta and data).

truncation = D_exact - g, step = D_real - D_exact, rounding = D_F - D_real and
total = D_F - g, computed in mpmath and converted to float64 once each, so the
identity holds to the float64 rounding of the four numbers. "Exact" is mpmath at a
working precision chosen from the format, the smallest step and the schemes'
orders (:func:`gradlab.analysis.exact.reference_bits`), and checked by recomputing
the smallest step at 64 more bits.

Per format, one :class:`_FormatContext` holds what every scheme shares (theta, the
exact reference, J(theta), the noise level, the precision). Per scheme, three stages:
:func:`_in_format` (the points, J and the quotients in the format), :func:`_exact_points`
(exact J at the nominal and realised points, each distinct point once) and
:func:`_decomposed_rows` (the quotients, their differences and the flags).
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
import pandas as pd
from flint import acb, arb
from tqdm.auto import tqdm

from gradlab.analysis.enclosure import KinkError, enclose_derivatives, enclose_value, gradient_along
from gradlab.analysis.exact import (
    ExactResult,
    VerificationError,
    bits_to_digits,
    computed_from,
    exact,
    reference_bits,
)
from gradlab.analysis.models import model_round, model_trunc
from gradlab.analysis.noise import exact_at_theta, mp_values, noise_level
from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic import validation
from gradlab.arithmetic.balls import (
    arb_ball,
    arb_from_mpf,
    arb_upper,
    ball_from_raw,
    ball_raw,
    working_precision,
)
from gradlab.arithmetic.evaluator import Evaluator
from gradlab.arithmetic.namespaces import namespace_for
from gradlab.arithmetic.objective import Objective, call_grad, fp_events
from gradlab.arithmetic.stencil import stencil

__all__ = ["COLUMNS", "default_steps", "fd_errors", "fd_gradient"]

COLUMNS = [
    "objective", "n_params", "format", "scheme", "h", "coord", "theta", "exact", "approx",
    "err_total", "err_trunc", "err_step", "err_round", "model_trunc", "model_round", "flag",
]
FLAGS = ("nonfinite", "overflow", "zero_step", "kink")
_CHUNK_ELEMENTS = 4_000_000  # rows x N per batched evaluation


def default_steps(n: int = 61, lo: float = 1e-12, hi: float = 1.0) -> np.ndarray:
    """Log-spaced nominal steps from ``lo`` to ``hi``."""
    return np.logspace(math.log10(lo), math.log10(hi), n)


@dataclass(frozen=True)
class _Validated:
    """The arguments of one :func:`fd_errors` call, checked and in the form the engine uses."""

    formats: list[fmts.Format]
    schemes: list[schs.Scheme]
    steps: np.ndarray
    coords: np.ndarray
    noise: dict[str, float]
    references: dict[str, ExactResult]
    seed: int
    workers: int


def _coords(coords: Any, n: int, seed: int) -> np.ndarray:
    """All coordinates (None), a sample of that size (an integer) or these indices."""
    if coords is None:
        return np.arange(n)
    if isinstance(coords, (bool, np.bool_, int, np.integer)):
        size = validation.integer("coords (a sample size)", coords, 1)
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(n, size=min(size, n), replace=False))
    return validation.indices("coords", coords, n)


def _validate(
    obj: Objective, formats: Any, schemes: Any, steps: Any, coords: Any, noise: Any,
    references: Any, seed: Any, workers: Any,
) -> _Validated:
    validation.objective("obj", obj)
    fl = validation.format_list("formats", formats)
    sl = validation.scheme_list("schemes", schemes)
    for f in fl:
        for s in sl:
            if s.complex_step and f.dtype is not None and f.complex_dtype is None:
                raise ValueError(
                    f"schemes: the complex step is not available in format {f.name} "
                    "(numpy has no complex type for it); drop 'complex' or the format"
                )
    st = validation.steps("steps", steps)
    for f in fl:
        validation.steps_in_format("steps", st, f)
    seed = validation.integer("seed", seed, 0)
    refs = validation.per_format("references", references, fl)
    for name, ref in refs.items():
        if not isinstance(ref, ExactResult):
            raise TypeError(f"references[{name!r}] must be an ExactResult (gradlab.exact), "
                            f"got {type(ref).__name__}")
    n_workers = (os.cpu_count() or 1) if workers is None else validation.integer("workers", workers, 1)
    return _Validated(fl, sl, np.unique(st), _coords(coords, obj.n_params, seed),
                      validation.noise_levels("noise", noise, fl), refs, seed, n_workers)


def _exact_offset(theta_i: Any, k: int, h: Any) -> mpmath.mpf:
    """theta_i + k h, exactly (a plain ``k * h`` would round to mpmath's 53 default bits,
    which k = 3 times a 53-bit step exceeds)."""
    return mpmath.fadd(theta_i, mpmath.fmul(k, fmts.exact_mpf(h), exact=True), exact=True)


def _exact_complex(re: Any, im: Any) -> mpmath.mpc:
    """re + i im with both parts exact (``mpmath.mpc(re, im)`` rounds them to 53 bits, which
    loses the low bits of a longdouble or binary{p > 53} theta or step)."""
    return mpmath.mp.make_mpc((fmts.exact_mpf(re)._mpf_, fmts.exact_mpf(im)._mpf_))


def _rows(base: np.ndarray, coord: np.ndarray, value: np.ndarray, start: int, stop: int) -> np.ndarray:
    rows = np.repeat(base[None, :], stop - start, axis=0)
    rows[np.arange(stop - start), coord[start:stop]] = value[start:stop]
    return rows


_FORKED: dict[str, Any] = {}  # the work of a forked pool, inherited by its workers


def _raw(v: Any) -> Any:
    """A ball, or an mpmath number, as plain tuples (balls don't pickle, and an mpf's class
    belongs to a context)."""
    if isinstance(v, (arb, acb)):
        return ("ball", ball_raw(v))
    return ("mpc", v.real._mpf_, v.imag._mpf_) if hasattr(v, "_mpc_") else ("mpf", v._mpf_)


def _from_raw(ctx: Any, t: Any) -> Any:
    if t[0] == "ball":
        return ball_from_raw(t[1])
    return ctx.make_mpc((t[1], t[2])) if t[0] == "mpc" else ctx.make_mpf(t[1])


def _forked_chunk(bounds: tuple[int, int]) -> tuple[list[Any], list[bytes] | None]:
    ev, base, coord, value = _FORKED["args"]
    vals, sigs = mp_values(ev, _rows(base, coord, value, *bounds))
    return [_raw(v) for v in vals], sigs


def _eval_rows(
    ev: Evaluator,
    base: np.ndarray,
    coord: np.ndarray,
    value: np.ndarray,
    desc: str,
    progress: bool,
    workers: int = 1,
) -> tuple[np.ndarray, list[bytes] | None]:
    """J at rows ``base`` with ``base[coord[r]] = value[r]``, evaluated in chunks.

    Exact (mpmath) chunks are spread over ``workers`` forked processes.
    """
    n_rows, n, dtype = coord.size, base.size, ev.dtype
    chunk = max(1, _CHUNK_ELEMENTS // max(n, 1))
    if dtype is object:
        chunk = max(1, min(chunk, 512))
    bounds = [(a, min(n_rows, a + chunk)) for a in range(0, n_rows, chunk)]
    out = np.empty(n_rows, dtype=dtype)
    sigs: list[bytes] = []
    recorded = False
    bar = tqdm(total=n_rows, desc=desc, disable=not progress, leave=False)
    parallel = (
        dtype is object and workers > 1 and len(bounds) > 1
        and "fork" in multiprocessing.get_all_start_methods()
    )
    if parallel:
        ctx = ev.context
        _FORKED["args"] = (ev, base, coord, value)
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for (a, b), (vals, s) in zip(bounds, pool.imap(_forked_chunk, bounds), strict=True):
                    out[a:b] = [_from_raw(ctx, v) for v in vals]
                    if s is not None:
                        recorded = True
                        sigs.extend(s)
                    bar.update(b - a)
        finally:
            _FORKED.clear()
    else:
        for a, b in bounds:
            rows = _rows(base, coord, value, a, b)
            chunk_vals, chunk_sigs = mp_values(ev, rows)
            out[a:b] = chunk_vals
            if chunk_sigs is not None:
                recorded = True
                sigs.extend(chunk_sigs)
            bar.update(b - a)
    bar.close()
    return out, (sigs if recorded else None)


@dataclass(frozen=True)
class _Run:
    """The steps and coordinates of one :func:`fd_errors` call, and how to evaluate."""

    steps: np.ndarray
    coords: np.ndarray
    progress: bool
    workers: int


@dataclass(frozen=True, eq=False)
class _FormatContext:
    """What every scheme of one format shares.

    Attributes
    ----------
    obj : Objective
    fmt : Format
    theta : list of mpf
        theta0 rounded to the format, exactly.
    theta_f : ndarray
        The same values in the format's number type.
    ref : ExactResult
        The verified exact value, gradient and truncating derivatives.
    j_center : scalar
        J(theta) computed in the format (the stencil's value at offset 0).
    sig_center : bytes
        The branch signature of the exact J at theta (a stencil point whose signature
        differs lies across a kink).
    sigma : float
        The noise level of J in the format (for ``model_round``).
    prec : int
        Working precision of the exact evaluations, in bits (the decomposition's sums run
        32 bits above it).
    """

    obj: Objective
    fmt: fmts.Format
    theta: list[Any]
    theta_f: np.ndarray
    ref: ExactResult
    j_center: Any
    sig_center: bytes
    sigma: float
    prec: int

    @property
    def centre(self) -> tuple[Any, bool]:
        """The ball of J(theta) from the reference, and whether it is an enclosure."""
        return _ball(self.ref.value, self.ref.value_radius)

    def grad_ball(self, i: int) -> tuple[Any, bool]:
        """The ball of dJ/dtheta_i from the reference, and whether it is an enclosure."""
        r = self.ref.grad_radius
        return _ball(self.ref.grad[i], math.nan if r is None else float(r[i]))


def _ball(value: Any, radius: float) -> tuple[Any, bool]:
    """``value +- radius`` as a ball, proven; an exact ball of value, unproven, for a NaN radius."""
    if math.isnan(radius):
        return arb_from_mpf(value), False
    return arb_ball(value, radius), True


@dataclass(frozen=True)
class _InFormat:
    """One scheme computed in the format, per (coordinate, step) of the grid.

    Attributes
    ----------
    h : list of mpf
        fl(h) per step, exactly.
    points : ndarray, shape (C, S, J)
        The stencil points fl(theta_i + fl(k_j fl(h))) in the format's number type
        (the complex step: theta_i, its imaginary step being ``h``).
    quotient : ndarray, shape (C, S)
        D_F.
    nonfinite, overflow : ndarray of bool, shape (C, S)
        J is NaN / infinite at some stencil point; overflow also when a stencil point or
        the denominator fl(den fl(h)) is beyond the format's range.
    zero_step : ndarray of bool, shape (C, S)
        Some nonzero offset did not move the point (or fl(h) = 0).
    """

    h: list[Any]
    points: np.ndarray
    quotient: np.ndarray
    nonfinite: np.ndarray
    overflow: np.ndarray
    zero_step: np.ndarray


@dataclass(frozen=True)
class _ExactPoints:
    """Exact J at the stencil points, per (coordinate, step, offset).

    Attributes
    ----------
    nominal, realised : ndarray of flint.arb, shape (C, S, J)
        Balls of J at theta_i + k_j h and at the format's points (their imaginary part for
        the complex step); J(theta) at offset 0.
    kink : ndarray of bool, shape (C, S)
        Some point's branch signature differs from theta's.
    proven : ndarray of bool, shape (C, S)
        Every ball is an enclosure (False where mpmath's exact value stands in, as an exact
        ball, for a batch whose branch the balls could not decide).
    """

    nominal: np.ndarray
    realised: np.ndarray
    kink: np.ndarray
    proven: np.ndarray


def _evaluated(scheme: schs.Scheme) -> list[int]:
    """The offsets whose points J is evaluated at (offset 0 reuses J(theta))."""
    return [j for j, k in enumerate(scheme.offsets) if k != 0]


def _quotient(scheme: schs.Scheme, values: np.ndarray, h_f: np.ndarray, fmt: fmts.Format) -> np.ndarray:
    """D_F from J at the stencil points (last axis), in the format's arithmetic.

    ``sum_j n_j J_j / fl(den fl(h))`` with the integer weights n_j summed in stencil
    order, or ``Im J / fl(h)`` for the complex step; ``h_f`` broadcasts against
    ``values[..., 0]``.
    """
    if scheme.complex_step:
        v = values[..., 0]
        num = np.imag(v) if fmt.dtype is not None else np.asarray(
            np.frompyfunc(lambda z: z.imag, 1, 1)(v), dtype=object)
        return num / h_f
    acc = scheme.numerators[0] * values[..., 0]
    for j in range(1, len(scheme.offsets)):
        acc = acc + scheme.numerators[j] * values[..., j]
    return acc / (scheme.denominator * h_f)


def _complex_rows(ctx: _FormatContext, theta_c: np.ndarray, h_f: np.ndarray, n_steps: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The complex step's base point and its perturbed values theta_i + i fl(h), row by row."""
    fmt = ctx.fmt
    assert fmt.complex_dtype is not None or fmt.dtype is None  # checked by _validate
    ns_c = namespace_for(fmt, is_complex=True)
    base = ns_c.from_values(ctx.theta_f) if fmt.dtype is None else ctx.theta_f.astype(fmt.complex_dtype)
    im = np.broadcast_to(h_f[None, :], (theta_c.size, n_steps)).reshape(-1)
    re = np.repeat(theta_c, n_steps)
    if fmt.dtype is not None:
        return base, re + 1j * im
    mpc = ns_c.ctx.mpc  # type: ignore[attr-defined]
    return base, np.asarray([mpc(a, b) for a, b in zip(re, im, strict=True)], dtype=object)


def _nonfinite_j(jf: np.ndarray, cplx: bool, fmt: fmts.Format) -> tuple[np.ndarray, np.ndarray]:
    """Per (coordinate, step): whether J in the format is NaN, and infinite, at some point."""
    # (a plain loop: np.vectorize would report the FPU flag that a Python NaN comparison
    # raises inside mpmath's conversion as if the computation had raised it)
    parts = np.imag(jf) if (cplx and fmt.dtype is not None) else jf
    if parts.dtype.kind in "fV":  # the format's own numbers: numpy (ml_dtypes) tells, silently
        with np.errstate(invalid="ignore"):
            return np.isnan(parts).any(axis=-1), np.isinf(parts).any(axis=-1)
    exact = [fmts.exact_mpf(v.imag if (cplx and fmt.dtype is None) else v) for v in parts.reshape(-1)]
    nan = np.array([mpmath.isnan(v) for v in exact], dtype=bool).reshape(jf.shape)
    inf = np.array([mpmath.isinf(v) for v in exact], dtype=bool).reshape(jf.shape)
    return np.any(nan, axis=-1), np.any(inf, axis=-1)


def _in_format(ctx: _FormatContext, scheme: schs.Scheme, run: _Run, events: Counter[str]) -> _InFormat:
    """D_F: the points, J, the weighted sum and the division, all in the format."""
    fmt, coords, steps = ctx.fmt, run.coords, run.steps
    c_n, s_n, j_n = coords.size, steps.size, len(scheme.offsets)
    ns0 = namespace_for(fmt.storage)  # points and steps are storage values
    h_mp = [fmt.round(h) for h in steps]
    h_f = ns0.from_values(np.asarray([fmt.from_mpf(v) for v in h_mp], dtype=object))
    theta_c = ctx.theta_f[coords]
    need = _evaluated(scheme)
    if scheme.complex_step:
        points = np.broadcast_to(theta_c[:, None, None], (c_n, s_n, 1))
        base, values = _complex_rows(ctx, theta_c, h_f, s_n)
        zero_step = np.broadcast_to(np.asarray([h == 0 for h in h_mp])[None, :], (c_n, s_n))
    else:
        st = stencil(theta_c[:, None], steps[None, :], scheme.offsets, fmt)
        points = ns0.from_values(st.points) if fmt.dtype is None else st.points
        base, values = ctx.theta_f, points[:, :, need].reshape(-1)
        zero_step = (points[:, :, need] == theta_c[:, None, None]).any(axis=-1)
    in_fmt = Evaluator(ctx.obj, fmt, is_complex=scheme.complex_step)
    with fp_events() as ev:
        jf_rows, _ = _eval_rows(in_fmt, base, np.repeat(coords, s_n * len(need)), values,
                                f"{fmt.name}/{scheme.name} in format", run.progress)
        jf = np.empty((c_n, s_n, j_n), dtype=in_fmt.dtype)
        jf[:, :, need] = jf_rows.reshape(c_n, s_n, len(need))
        for j in set(range(j_n)) - set(need):
            jf[:, :, j] = ctx.j_center
        d_f = _quotient(scheme, jf, h_f, fmt)
    events.update(ev)
    nonfinite, overflow = _nonfinite_j(jf, scheme.complex_step, fmt)
    if not fmt.compute.has_inf and ev.get("overflow"):
        overflow = overflow | nonfinite  # without infinities an overflow is NaN (float8_e4m3fn)
    if fmt.dtype is not None and not scheme.complex_step:
        # a point or the denominator beyond the range: J at inf, or D_F = x / inf = 0, is no FD value
        with np.errstate(over="ignore"):
            denominator = np.isinf(scheme.denominator * h_f)
        overflow = overflow | ~np.isfinite(points[:, :, need]).all(axis=-1) | denominator[None, :]
    return _InFormat(h_mp, points, d_f, nonfinite, overflow, zero_step)


def _exact_rows(ctx: _FormatContext, scheme: schs.Scheme, run: _Run, in_fmt: _InFormat
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The exact points to evaluate: the row of every (coordinate, step, offset)'s nominal and
    realised point (-1 for offset 0, J(theta) itself), and the rows' coordinate and value
    (exact balls; mpc for the complex step). Each distinct realised point appears once (in a
    narrow format many steps round to the same points)."""
    if scheme.complex_step:
        return _complex_exact_rows(ctx, run, in_fmt)
    c_n, s_n, j_n = run.coords.size, run.steps.size, len(scheme.offsets)
    need = _evaluated(scheme)
    nominal = np.full((c_n, s_n, j_n), -1, dtype=np.int64)
    realised = np.full((c_n, s_n, j_n), -1, dtype=np.int64)
    m = c_n * s_n * len(need)
    nominal[:, :, need] = np.arange(m).reshape(c_n, s_n, len(need))
    coord_of = np.repeat(run.coords, s_n * len(need))
    offsets = [scheme.offsets[j] for j in need]
    steps = [arb(h) for h in run.steps.tolist()]
    with working_precision(_EXACT_SUM_BITS):
        values = [_nominal_point(ctx.theta[int(i)], arb_from_mpf(ctx.theta[int(i)]), k, h)
                  for i in run.coords for h in steps for k in offsets]
    as_ball = _point_ball(in_fmt.points.dtype)
    coords_r: list[np.ndarray] = []
    values_r: list[Any] = []
    at = m
    for a, i in enumerate(run.coords):
        pts = in_fmt.points[a][:, need]
        uniq, inverse = np.unique(pts.reshape(-1), return_inverse=True)
        realised[a][:, need] = at + inverse.reshape(pts.shape)
        values_r.extend(as_ball(v) for v in uniq)
        coords_r.append(np.full(uniq.size, i))
        at += uniq.size
    row_coord = np.concatenate([coord_of, *coords_r]).astype(np.int64)
    row_value: np.ndarray = np.empty(len(values) + len(values_r), dtype=object)
    row_value[:] = values + values_r
    return nominal, realised, row_coord, row_value


_EXACT_SUM_BITS = 8192  # theta_i + k h is exact in far fewer bits; checked


def _step_bits(fmt: fmts.Format, h: float, order: int) -> int:
    """The working precision the exact sums of one step need (:func:`reference_bits`, and the
    mirror term for steps above 1, where J grows along the stencil), rounded up to 32 bits so
    that the steps share a few precisions."""
    bits = reference_bits(fmt, h, order) + (order + 2) * max(0, math.ceil(math.log2(h)))
    return 32 * -(-bits // 32)


def _nominal_point(theta_i: Any, ball_i: Any, k: int, h: Any) -> Any:
    """theta_i + k h as an exact ball (at Arb's precision of :data:`_EXACT_SUM_BITS`), given
    theta_i also as a ball and h as an exact ball."""
    b = ball_i + k * h
    return b if b.is_exact() else arb_from_mpf(_exact_offset(theta_i, k, float(h)))


def _point_ball(dtype: np.dtype) -> Any:
    """How a stencil point of this number type becomes an exact ball."""
    if dtype.kind in "fV" and dtype.itemsize <= 8:
        return lambda v: arb(float(v))  # float8 to float64, bfloat16: exact in a double
    return arb_from_mpf


def _complex_exact_rows(ctx: _FormatContext, run: _Run, in_fmt: _InFormat
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_exact_rows` for the complex step: theta_i + i h and theta_i + i fl(h)."""
    c_n, s_n = run.coords.size, run.steps.size
    nominal_h = [mpmath.mpf(float(h)) for h in run.steps]
    nominal = np.arange(c_n * s_n).reshape(c_n, s_n, 1)
    realised = nominal + c_n * s_n
    vals = ([_exact_complex(ctx.theta[i], nominal_h[b]) for i in run.coords for b in range(s_n)]
            + [_exact_complex(ctx.theta[i], in_fmt.h[b]) for i in run.coords for b in range(s_n)])
    row_value = np.empty(len(vals), dtype=object)
    row_value[:] = vals
    return nominal, realised, np.tile(np.repeat(run.coords, s_n), 2), row_value


def _exact_points(ctx: _FormatContext, scheme: schs.Scheme, run: _Run, in_fmt: _InFormat) -> _ExactPoints:
    """Exact J at the nominal and realised points, each distinct point evaluated once."""
    nominal, realised, row_coord, row_value = _exact_rows(ctx, scheme, run, in_fmt)
    # each point at the precision its steps need (a ball's radius holds at any precision: too
    # few bits would show as wide balls, which the digits of _verify catch)
    bits = np.zeros(row_coord.size, dtype=np.int64)
    step_bits = np.asarray([_step_bits(ctx.fmt, h, scheme.order) for h in run.steps.tolist()])
    for idx in (nominal, realised):
        used = idx >= 0
        np.maximum.at(bits, idx[used], np.broadcast_to(step_bits[None, :, None], idx.shape)[used])
    jx = np.empty(row_coord.size, dtype=object)
    sigs: list[bytes] = [b""] * row_coord.size
    for prec in np.unique(bits).tolist():
        rows = np.flatnonzero(bits == prec)
        ref_ev = Evaluator.reference(ctx.obj, ctx.fmt, prec, is_complex=scheme.complex_step,
                                     record_branches=True, backend="arb")
        vals, got = _eval_rows(
            ref_ev, ref_ev.convert(np.asarray(ctx.theta, dtype=object)), row_coord[rows],
            ref_ev.convert(row_value[rows]),
            f"{ctx.fmt.name}/{scheme.name} exact ({prec} bits)", run.progress, run.workers,
        )
        jx[rows] = vals
        if got is not None:
            for r, sig in zip(rows.tolist(), got, strict=True):
                sigs[r] = sig
    # one more entry, J(theta) and its signature, for the index -1 of offset 0
    values = np.empty(len(row_coord) + 1, dtype=object)
    proven = np.empty(len(row_coord) + 1, dtype=bool)
    for r, v in enumerate(jx):
        part = v.imag if scheme.complex_step else v
        proven[r] = isinstance(part, arb)  # mpmath's, where a branch was undecided: not proven
        values[r] = part if proven[r] else arb_from_mpf(part)
    values[-1], proven[-1] = ctx.centre
    signatures = np.empty(len(row_coord) + 1, dtype=object)
    signatures[:-1] = sigs
    signatures[-1] = ctx.sig_center
    kink = ((signatures[nominal] != ctx.sig_center) | (signatures[realised] != ctx.sig_center)).any(axis=-1)
    return _ExactPoints(values[nominal], values[realised], kink,
                        (proven[nominal] & proven[realised]).all(axis=-1))


def _flags(in_fmt: _InFormat, exact_pts: _ExactPoints, a: int, b: int, approx: float,
           exact_finite: bool) -> str:
    """The flags of one (coordinate, step), comma-separated (see :data:`FLAGS`); ``approx`` is
    D_F in float64 (an emulated format's D_F may be finite yet beyond float64's table), and
    ``exact_finite`` whether the exact quotients' balls are finite (J has no pole there)."""
    flags = []
    if in_fmt.nonfinite[a, b] or math.isnan(approx) or not exact_finite:
        flags.append("nonfinite")
    if in_fmt.overflow[a, b] or math.isinf(approx):
        flags.append("overflow")
    if in_fmt.zero_step[a, b]:
        flags.append("zero_step")
    if exact_pts.kink[a, b]:
        flags.append("kink")
    return ",".join(flags)


_ROW_COLUMNS = ["coord", "h", "theta", "exact", "approx", "err_total", "err_trunc", "err_step",
                "err_round", "model_trunc", "model_round", "flag", "ref_tol", "proven"]


def _upper(b: Any) -> float:
    """A float64 upper bound of a ball's radius."""
    r = float(b.rad())
    return math.nextafter(r, math.inf) if r else 0.0


def _decomposed_rows(ctx: _FormatContext, scheme: schs.Scheme, run: _Run, in_fmt: _InFormat,
                     exact_pts: _ExactPoints) -> tuple[list[tuple[Any, ...]], np.ndarray]:
    """One row per (coordinate, step): D_F against g and its three parts, and per row the
    digits its truncation error is known to (see :func:`_verify`).

    truncation = D_exact - g, step = D_real - D_exact and rounding = D_F - D_real are balls
    (Arb, 32 bits above the reference's precision), each midpoint rounded once to float64.
    ``ref_tol`` bounds every exact part's error: the largest radius of the four balls where
    every ball encloses its value (``proven``); elsewhere, the resolution the step's working
    precision (:func:`_step_bits`) is assumed to give, ``2**(16 - bits)`` relative to the sums'
    terms.
    """
    nums = [int(n) for n in scheme.numerators]
    # the resolution each step's working precision is assumed to give (a ball: in float64 it
    # would underflow)
    resolution = [arb(2) ** (16 - _step_bits(ctx.fmt, h, scheme.order)) for h in run.steps.tolist()]
    abs_nums = sum(abs(n) for n in nums)
    j_abs = abs(arb_from_mpf(ctx.ref.value))
    derivs = dict(zip(ctx.ref.coords.tolist(), range(ctx.ref.coords.size), strict=True))
    dorder = scheme.truncation_derivative
    d_all = ctx.ref.derivatives.get(dorder)

    def quotient(values: np.ndarray, den_h: Any) -> Any:
        if scheme.complex_step:
            return values[0] / den_h
        acc = nums[0] * values[0]
        for n, v in zip(nums[1:], values[1:], strict=True):
            acc = acc + n * v
        return acc / den_h

    def floor(a: int, b: int, hf: float, den_h: Any, g: Any) -> Any:
        """The assumed resolution: of sum_j |n_j J_j| / (den h), about sum |n_j| |J(theta)| /
        (den h), but the stencil's values can far exceed J(theta) for steps above 1."""
        size = abs_nums * j_abs
        if hf > 1 and not scheme.complex_step:
            for vs in (exact_pts.nominal[a, b], exact_pts.realised[a, b]):
                size = size.union(sum((abs(n * v) for n, v in zip(nums, vs, strict=True)), arb(0)))
        return resolution[b] * (size.upper() / den_h + abs(g))

    def known_digits(trunc: Any, res: Any) -> float:
        """Digits of the truncation error its ball proves: 17 when as tight as the assumed
        resolution (or not finite: flagged), else those its radius leaves."""
        if not trunc.is_finite() or trunc.rad() <= res:
            return 17.0
        mid = abs(trunc.mid())
        return 0.0 if mid == 0 else float((mid / trunc.rad()).log() / arb(10).log())

    rows: list[tuple[Any, ...]] = []
    digits = np.empty(run.coords.size * run.steps.size)
    with working_precision(ctx.prec + 32):
        for a, i in enumerate(run.coords):
            g, g_proven = ctx.grad_ball(int(i))
            gf = float(g)
            d_k = None if d_all is None else float(d_all[derivs[int(i)]])
            for b, hf in enumerate(run.steps.tolist()):
                den_h = arb(hf) * (1 if scheme.complex_step else scheme.denominator)  # exact
                d_exact = quotient(exact_pts.nominal[a, b], den_h)
                d_real = quotient(exact_pts.realised[a, b], den_h)
                d_f = arb_from_mpf(in_fmt.quotient[a, b])
                total, trunc, step, rnd = d_f - g, d_exact - g, d_real - d_exact, d_f - d_real
                proven = g_proven and bool(exact_pts.proven[a, b])
                res = floor(a, b, hf, den_h, g)
                radii = [_upper(p) for p in (total, trunc, step, rnd) if p.is_finite()]
                bound = max(radii, default=0.0)
                digits[len(rows)] = known_digits(trunc, res)
                rows.append((
                    int(i), hf, float(ctx.theta[i]), gf, float(d_f),
                    float(total), float(trunc), float(step), float(rnd),
                    _model_trunc(scheme, hf, d_k),
                    model_round(scheme, hf, ctx.sigma, ctx.fmt.u, gf),
                    _flags(in_fmt, exact_pts, a, b, float(d_f),
                           d_exact.is_finite() and d_real.is_finite()),
                    bound if proven else max(bound, arb_upper(res)),
                    proven,
                ))
    return rows, digits


def _scheme_table(ctx: _FormatContext, scheme: schs.Scheme, run: _Run, events: Counter[str]
                  ) -> tuple[pd.DataFrame, np.ndarray]:
    """The per-coordinate table of one format and scheme (fd_errors' rows, unverified), and
    the digits each row's truncation error is known to."""
    in_fmt = _in_format(ctx, scheme, run, events)
    exact_pts = _exact_points(ctx, scheme, run, in_fmt)
    rows, digits = _decomposed_rows(ctx, scheme, run, in_fmt, exact_pts)
    df = pd.DataFrame(rows, columns=_ROW_COLUMNS)
    df.insert(0, "scheme", scheme.name)
    df.insert(0, "format", ctx.fmt.name)
    df.insert(0, "n_params", ctx.obj.n_params)
    df.insert(0, "objective", ctx.obj.name)
    df["ref_prec"] = ctx.prec
    return df, digits


def _verify(ctx: _FormatContext, scheme: schs.Scheme, df: pd.DataFrame, digits: np.ndarray) -> float:
    """Digits err_trunc is known to at the smallest step, and at the largest if it exceeds 1
    (where the sums cancel most): proven by the balls' radii (``digits``, per row) or, where
    some row there is not proven, by surviving 64 more bits of precision in mpmath."""
    if scheme.complex_step:
        return 17.0  # no cancellation: nothing to verify beyond the exact gradient
    steps = {float(df["h"].min())}
    if float(df["h"].max()) > 1:  # steps above 1 cancel too, as J grows along the stencil
        steps.add(float(df["h"].max()))
    worst = 17.0
    for h in steps:
        at = (df["h"] == h).to_numpy()
        worst = min(worst, float(digits[at].min()))
        if not df["proven"].to_numpy()[at].all():
            worst = min(worst, _verify_step(ctx, scheme, df, h))
    return worst


def _verify_step(ctx: _FormatContext, scheme: schs.Scheme, df: pd.DataFrame, h: float) -> float:
    """Digits on which err_trunc at the step h survives 64 more bits of precision."""
    sub = df[df["h"] == h]
    hi = ctx.prec + 64
    ref_hi = Evaluator.reference(ctx.obj, ctx.fmt, hi)
    worst = 17.0  # float64 agreement to the last bit
    coords = sub["coord"].to_numpy()
    pts = []
    for i in coords:
        for k in scheme.offsets:
            p = list(ctx.theta)
            p[i] = _exact_offset(ctx.theta[i], k, h)
            pts.append(p)
    vals, _ = mp_values(ref_hi, ref_hi.convert(np.asarray(pts, dtype=object)))
    mp = mpmath.MPContext()
    mp.prec = hi + 32
    j_n = len(scheme.offsets)
    tols = sub["ref_tol"].to_numpy()
    for r, (i, trunc) in enumerate(zip(coords, sub["err_trunc"].to_numpy(), strict=True)):
        s = mp.fsum(mp.mpf(c.numerator) / c.denominator * mp.make_mpf(vals[r * j_n + j]._mpf_)
                    for j, c in enumerate(scheme.weights))
        t_hi = float(s / mp.mpf(h) - mp.make_mpf(fmts.exact_mpf(ctx.ref.grad[i])._mpf_))
        if t_hi == trunc or (math.isnan(t_hi) and math.isnan(trunc)) or abs(t_hi - trunc) <= tols[r]:
            continue  # equal (or non-finite alike at both precisions), or within the resolution
        if not (math.isfinite(t_hi) and math.isfinite(trunc)):
            worst = 0.0  # finite at one precision only
            continue
        rel = abs(t_hi - trunc) / max(abs(t_hi), 1e-300)
        worst = min(worst, -math.log10(rel) if rel > 0 else 17.0)
    return worst


_PROBE_STEP = 2**-32  # the probes' spacing: their truncation, ~2**-64 relative, is far below their test
_PROBE_TOL = 24  # bits on which a probe must agree with the reference


def _agrees(a: Any, b: Any, tol: Any) -> bool:
    """|a - b| <= tol, with a and b taken exactly."""
    d = mpmath.fsub(fmts.exact_mpf(a), fmts.exact_mpf(b), exact=True)
    return bool(mpmath.isfinite(d) and abs(d) <= tol)


def _probes_agree(ref: ExactResult, obj: Objective, fmt: fmts.Format, theta: list[Any], prec: int,
                  floor: Any, orders: Sequence[int], coords: np.ndarray) -> bool:
    """The reference's diagonal derivatives (and a numerical gradient) at every coordinate of
    ``coords`` against central differences of this objective's exact J, spaced 2**-32 at
    enough bits that only their truncation, about 2**-64 relatively, remains.

    A derivative the reference itself verified to fewer than 12 digits (at a kink) is not
    probed: it says nothing either way.
    """
    pos = {int(c): j for j, c in enumerate(ref.coords.tolist())}
    probes: list[tuple[Any, int, int, tuple[int, ...], Any]] = []  # (value, coord, order, offsets, weights)
    if obj.grad is None:
        probes += [(ref.grad[i], i, 1, (-1, 1), schs.fd_weights((-1, 1), 1)) for i in coords.tolist()]
    for k in orders:
        digits = ref.derivative_digits.get(k)
        ks = tuple(range(-(k // 2 + 1), k // 2 + 2))
        ws = schs.fd_weights(ks, k)
        probes += [(ref.derivatives[k][pos[i]], i, k, ks, ws) for i in coords.tolist()
                   if digits is not None and digits[pos[i]] >= 12]
    if not probes:
        return True
    bits = prec + 32 * max(k for _, _, k, _, _ in probes) + 64
    rows = []
    for _, i, _, ks, _ in probes:
        for j in ks:
            row = list(theta)
            row[i] = mpmath.fadd(theta[i], mpmath.fmul(j, _PROBE_STEP, exact=True), exact=True)
            rows.append(row)
    ev = Evaluator.reference(obj, fmt, bits)
    vals, _ = mp_values(ev, ev.convert(np.asarray(rows, dtype=object)))
    at = 0
    with mpmath.workprec(bits + 64):
        for want, _, k, ks, ws in probes:
            got = mpmath.fsum(mpmath.mpf(w.numerator) / w.denominator * fmts.exact_mpf(vals[at + j])
                              for j, w in enumerate(ws)) / mpmath.mpf(_PROBE_STEP) ** k
            at += len(ks)
            tol = mpmath.ldexp(max(abs(fmts.exact_mpf(want)), abs(got)), -_PROBE_TOL) + floor
            if not _agrees(want, got, tol):
                return False
    return True


def _enclosures_agree(ref: ExactResult, obj: Objective, fmt: fmts.Format, orders: Sequence[int],
                      coords: np.ndarray) -> bool:
    """Whether a proven reference's balls meet this objective's own: J(theta), ``dJ/dv`` along a
    random direction against ``grad . v``, and the diagonal derivatives at ``coords``. Balls that
    miss each other prove a different objective; their radii prove the digits."""
    assert ref.grad_radius is not None
    try:
        if not enclose_value(obj, fmt, ref.prec).overlaps(arb_ball(ref.value, ref.value_radius)):
            return False
        v = np.random.default_rng(1).standard_normal((1, obj.n_params))
        grad = [arb_ball(g, r) for g, r in zip(ref.grad, ref.grad_radius, strict=True)]
        dot, _, slope = gradient_along(obj, fmt, grad, v, ref.prec)[0]
        if not dot.overlaps(slope):
            return False
        if not orders:
            return True
        mine = enclose_derivatives(obj, fmt, tuple(orders), coords, digits=6)
    except (KinkError, ValueError):
        return False
    pos = {int(c): j for j, c in enumerate(ref.coords.tolist())}
    for k in orders:
        radius = ref.derivative_radius.get(k)
        if radius is None:
            return False
        for i, b in zip(coords.tolist(), mine.derivatives[k], strict=True):
            if not b.overlaps(arb_ball(ref.derivatives[k][pos[i]], float(radius[pos[i]]))):
                return False
    return True


def _reference_serves(
    ref: ExactResult, obj: Objective, fmt: fmts.Format, theta: list[Any], prec: int, j_theta: Any,
    orders: Sequence[int], coords: np.ndarray,
) -> bool:
    """Whether a given reference holds everything fd_errors needs, verified, and is this
    objective's by content (its name proves nothing: objectives share the default name).

    Content: the format and theta rounded to it; J(theta) and, for an analytic gradient,
    the objective's gradient at theta, both evaluated exactly here, agreeing to half the
    working precision; then, at every coordinate, the derivatives the engine takes from
    the reference, probed by :func:`_probes_agree`. A proven reference is checked by its balls
    instead (:func:`_enclosures_agree`).
    """
    if not (
        ref.format == fmt.name and ref.digits_verified >= bits_to_digits(prec)
        and ref.method == ("analytic" if obj.grad is not None else "numerical")
        and len(ref.theta) == len(theta) and all(a == b for a, b in zip(ref.theta, theta, strict=True))
        and all(k in ref.derivatives for k in orders)
        and set(coords.tolist()) <= set(ref.coords.tolist())
    ):
        return False
    if computed_from(ref, obj):
        return True  # gradlab computed it from this very objective (and theta matched above)
    if ref.proven and ref.grad_radius is not None:
        return _enclosures_agree(ref, obj, fmt, orders, coords)
    half = prec // 2
    scale = max([abs(fmts.exact_mpf(g)) for g in ref.grad] + [abs(fmts.exact_mpf(j_theta))])
    floor = mpmath.ldexp(scale, -half)  # what "zero" means for values of this size
    if not _agrees(ref.value, j_theta, mpmath.ldexp(abs(fmts.exact_mpf(j_theta)), -half)):
        return False
    if obj.grad is not None:
        ns = Evaluator.reference(obj, fmt, prec).namespace()
        g = call_grad(obj, np.asarray(theta, dtype=object), ns)
        if g.shape != ref.grad.shape or not all(
                _agrees(a, b, floor) for a, b in zip(g, ref.grad, strict=True)):
            return False
    return _probes_agree(ref, obj, fmt, theta, prec, floor, orders, coords)


def _model_trunc(scheme: schs.Scheme, h: float, derivative: float | None) -> float:
    """:func:`model_trunc`, infinite (0 for a zero derivative) where h**q overflows float64."""
    try:
        return model_trunc(scheme, h, derivative)
    except OverflowError:  # (a None derivative returns NaN before h**q is formed)
        c = float(scheme.leading) * (derivative or 0.0)
        return c * math.inf if c != 0 else 0.0


def _format_context(obj: Objective, fmt: fmts.Format, v: _Validated, events: Counter[str]
                    ) -> _FormatContext:
    """The reference, noise level and centre values of one format (events of J(theta) counted)."""
    order = max(s.order for s in v.schemes)
    # steps above 1 cancel too, as J grows along the stencil: the mirror of reference_bits'
    # (q + 2) log2(1 / h_min) for steps below 1
    prec = (reference_bits(fmt, float(v.steps.min()), order)
            + (order + 2) * max(0, math.ceil(math.log2(float(v.steps.max())))))
    theta_mp = fmts.round_to_mpf(obj.theta0, fmt)
    j_theta, sig_c = exact_at_theta(obj, fmt, prec, theta_mp, record_branches=True)
    orders = sorted({s.truncation_derivative for s in v.schemes})
    given = v.references.get(fmt.name)
    if given is not None and _reference_serves(given, obj, fmt, theta_mp, prec, j_theta, orders, v.coords):
        ref = given
    else:
        ref = exact(obj, fmt, digits=bits_to_digits(prec), orders=orders, coords=v.coords.tolist())
    sigma = v.noise[fmt.name] if fmt.name in v.noise else noise_level(obj, fmt, seed=v.seed).sigma
    theta_f = namespace_for(fmt.storage).from_values(  # storage values, as the stencil's
        np.asarray([fmt.from_mpf(t) for t in theta_mp], dtype=object))
    with fp_events() as ev:
        j_center = Evaluator(obj, fmt)(theta_f[None, :])[0][0]
    events.update(ev)
    return _FormatContext(obj, fmt, theta_mp, theta_f, ref, j_center, sig_c, sigma, prec)


def fd_errors(
    obj: Objective,
    formats: Sequence[str | fmts.Format] | str = ("float64",),
    schemes: Sequence[str | schs.Scheme] | str = ("central",),
    steps: Any = None,
    coords: Any = None,
    *,
    noise: dict[str, float] | None = None,
    references: Mapping[str, ExactResult] | None = None,
    seed: int = 0,
    progress: bool = False,
    workers: int | None = None,
) -> pd.DataFrame:
    """Finite-difference errors per coordinate with their exact three-part decomposition.

    Parameters
    ----------
    obj : Objective
    formats : str or sequence
        Formats to evaluate in (see :func:`gradlab.arithmetic.formats.get`).
    schemes : str or sequence
        Schemes (see :func:`gradlab.arithmetic.schemes.get`).
    steps : array_like, optional
        Nominal steps h > 0, each within every format's range (default: 61 log-spaced
        steps from 1e-12 to 1). A step whose stencil points or denominator overflow the
        format gives rows flagged ``overflow``.
    coords : None, int or sequence of int
        All coordinates, a random sample of that size (drawn with ``seed``), or
        these coordinates (integers; floats are refused, not truncated).
    noise : dict, optional
        Noise level of J (finite, >= 0; 0 models a noiseless J) per format name for
        ``model_round``, keyed by some of ``formats`` only; by default it is measured with
        :func:`gradlab.noise_level` (direct estimate).
    references : dict, optional
        Exact references (:func:`gradlab.analysis.exact`) per format name, reused instead of
        computing them when they cover the coordinates and derivative orders, verify the
        digits the steps need (:func:`gradlab.analysis.exact.reference_bits`) and are this
        objective's by content, not by name: the same format and rounded theta, J(theta)
        and the gradient at theta recomputed here, and the diagonal derivatives probed at
        the coordinates (see ``_reference_serves``). Otherwise the reference is computed
        as usual.
    seed : int
    progress : bool
        Show progress bars.
    workers : int, optional
        Processes for the exact evaluations (default: all cores; 1 runs serially).

    Returns
    -------
    pandas.DataFrame
        One row per (format, scheme, h, coord) with the columns of docs/design.md
        (:data:`COLUMNS`), ``ref_prec``, the bits of the exact reference, and
        ``ref_tol``, the absolute resolution of the exact parts (an error part
        smaller than it is zero to the reference's precision).
        ``df.attrs`` holds the verified digits of the reference and the
        floating-point events counted per format.

    Raises
    ------
    TypeError, ValueError
        For a bad argument (the message names it), and ValueError when the exact J is not
        finite at theta0 rounded to a format.
    VerificationError
        When the truncation error at the smallest step changes in its first 6 digits
        at 64 more bits of working precision.

    Examples
    --------
    >>> import gradlab as gl
    >>> df = gl.fd_errors(gl.objectives.seed_net(), formats=["float32"],
    ...                   schemes=["central"], steps=[1e-3], coords=[0, 1])
    >>> bool((df.err_total - (df.err_trunc + df.err_step + df.err_round)).abs().max() < 1e-12)
    True
    """
    v = _validate(obj, formats, schemes, default_steps() if steps is None else steps, coords, noise,
                  references, seed, workers)
    run = _Run(v.steps, v.coords, progress, v.workers)
    tables = []
    attrs: dict[str, Any] = {"ref_digits": {}, "fp_events": {}, "noise": {}, "grad_digits": {}}
    for fmt in v.formats:
        events: Counter[str] = Counter()
        ctx = _format_context(obj, fmt, v, events)
        attrs["noise"][fmt.name] = ctx.sigma
        attrs["grad_digits"][fmt.name] = ctx.ref.digits_verified
        for scheme in v.schemes:
            df, row_digits = _scheme_table(ctx, scheme, run, events)
            digits = _verify(ctx, scheme, df, row_digits)
            if digits < 6:
                raise VerificationError(
                    f"{fmt.name}/{scheme.name}: the truncation error at the smallest step (or "
                    f"the largest, above 1) changed in its {digits:.1f}th digit at 64 more bits"
                )
            attrs["ref_digits"][f"{fmt.name}/{scheme.name}"] = digits
            tables.append(df)
        attrs["fp_events"][fmt.name] = dict(events)
    out = pd.concat(tables, ignore_index=True)
    out.attrs.update(attrs)
    return out


def fd_gradient(
    obj: Objective,
    format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central",
    h: Any = 1e-7,
    coords: Any = None,
) -> np.ndarray:
    """The FD gradient computed entirely in a format, at one step or one step per coordinate.

    The same arithmetic as ``approx`` in :func:`fd_errors` (points fl(theta_i +
    fl(k_j h_F)), J, the integer-weighted sum and the division in the format), without
    the exact decomposition: cheap enough to score many step rules.

    Parameters
    ----------
    obj : Objective
    format, scheme : str
    h : float or array_like of shape (N,) or (len(coords),)
        Nominal step(s), positive and finite.
    coords : sequence of int, optional
        Only these coordinates (default: all), sorted and without repeats (as every
        ``coords`` argument of gradlab).

    Returns
    -------
    ndarray of float64, shape (N,) or (number of distinct coords,)
        In increasing coordinate order. The format's results, converted exactly (non-finite
        values kept), and NaN where fl(h), a stencil point or the denominator fl(den fl(h))
        is beyond the format's range: there is no FD value there (a bounded J would give a
        silent 0 = x / inf).
    """
    validation.objective("obj", obj)
    fmt, sch = validation.one_format("format", format), validation.one_scheme("scheme", scheme)
    if fmt.dtype is None:
        raise ValueError("format: fd_gradient runs in hardware formats; use fd_errors for binary{p}")
    idx = (np.arange(obj.n_params) if coords is None
           else validation.indices("coords", coords, obj.n_params))
    n = idx.size
    hs = validation.steps("h", h)
    if hs.size not in (1, n):
        raise ValueError(f"h must be one step or one per coordinate ({n}), got {hs.size}")
    hs = np.broadcast_to(hs, (n,)).copy()
    theta = fmts.round_array(obj.theta0, fmt)
    h_f = fmts.round_array(hs, fmt)
    if sch.complex_step:
        if fmt.complex_dtype is None:
            raise ValueError(f"scheme: the complex step is not available in format {fmt.name}")
        base = theta.astype(fmt.complex_dtype)
        rows = np.repeat(base[None, :], n, axis=0)
        rows[np.arange(n), idx] = theta[idx] + 1j * h_f
        with fp_events():
            vals, _ = Evaluator(obj, fmt, is_complex=True)(rows)
            approx = np.asarray(_quotient(sch, vals[:, None], h_f, fmt), dtype=np.float64)
        return np.where(np.isinf(h_f), np.nan, approx)
    need = _evaluated(sch)
    in_fmt = Evaluator(obj, fmt)
    with fp_events():
        pts = stencil(theta[idx], hs, sch.offsets, fmt).points  # (n, J)
        rows = np.repeat(theta[None, :], n * len(need), axis=0)
        coord = np.repeat(idx, len(need))
        rows[np.arange(rows.shape[0]), coord] = pts[:, need].reshape(-1)
        vals, _ = in_fmt(rows)
        jv = np.empty((n, len(sch.offsets)), dtype=fmt.dtype)
        jv[:, need] = vals.reshape(n, len(need))
        if len(need) < len(sch.offsets):
            center = in_fmt(theta[None, :])[0][0]
            for j in set(range(len(sch.offsets))) - set(need):
                jv[:, j] = center
        approx = np.asarray(_quotient(sch, jv, h_f, fmt), dtype=np.float64)
        beyond = ~np.isfinite(pts).all(axis=-1) | np.isinf(sch.denominator * h_f)
    return np.where(beyond, np.nan, approx)
