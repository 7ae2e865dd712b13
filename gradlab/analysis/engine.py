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
orders, and checked by recomputing the smallest step at 64 more bits.
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
from tqdm.auto import tqdm

from gradlab.analysis.exact import ExactResult, VerificationError, exact
from gradlab.analysis.models import model_round, model_trunc
from gradlab.analysis.noise import noise_level
from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic.evaluator import Evaluator
from gradlab.arithmetic.namespaces import namespace_for
from gradlab.arithmetic.objective import Objective, fp_events
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


@dataclass
class _Validated:
    formats: list[fmts.Format]
    schemes: list[schs.Scheme]
    steps: np.ndarray
    coords: np.ndarray


def _validate(
    obj: Objective,
    formats: Sequence[str | fmts.Format] | str,
    schemes: Sequence[str | schs.Scheme] | str,
    steps: Any,
    coords: Any,
    seed: int,
) -> _Validated:
    if not isinstance(obj, Objective):
        raise TypeError(f"obj must be a gradlab.Objective, got {type(obj).__name__}")
    fl = [fmts.get(f) for f in ([formats] if isinstance(formats, (str, fmts.Format)) else formats)]
    sl = [schs.get(s) for s in ([schemes] if isinstance(schemes, (str, schs.Scheme)) else schemes)]
    if not fl:
        raise ValueError("formats must name at least one format")
    if not sl:
        raise ValueError("schemes must name at least one scheme")
    for f in fl:
        for s in sl:
            if s.complex_step and f.dtype is not None and f.complex_dtype is None:
                raise ValueError(
                    f"schemes: the complex step is not available in format {f.name} "
                    "(numpy has no complex type for it); drop 'complex' or the format"
                )
    try:
        st = np.atleast_1d(np.asarray(steps, dtype=np.float64))
    except (TypeError, ValueError):
        raise TypeError(f"steps must be an array of positive numbers, got {steps!r}") from None
    if st.ndim != 1 or st.size == 0:
        raise ValueError(f"steps must be a non-empty 1-D array, got shape {st.shape}")
    if not np.all(np.isfinite(st)) or np.any(st <= 0):
        raise ValueError(f"steps must be positive and finite; got {st[~(np.isfinite(st) & (st > 0))][:3]}")
    n = obj.n_params
    if coords is None:
        ca = np.arange(n)
    elif isinstance(coords, (int, np.integer)):
        if coords < 1:
            raise ValueError(f"coords as a sample size must be at least 1, got {coords}")
        rng = np.random.default_rng(seed)
        ca = np.sort(rng.choice(n, size=min(int(coords), n), replace=False))
    else:
        ca = np.unique(np.asarray(coords, dtype=int))
        if ca.size == 0 or ca.min() < 0 or ca.max() >= n:
            raise ValueError(f"coords must be indices in [0, {n}), got {coords!r}")
    return _Validated(fl, sl, np.unique(st), ca)


def _reference_bits(fmt: fmts.Format, steps: np.ndarray, sl: list[schs.Scheme]) -> int:
    """Working precision for the exact sums: cancellation in D_exact - g is bounded by
    about (q + 2) log2(1/h) bits at the smallest h, on top of twice the format's."""
    small = max(0, math.ceil(-math.log2(float(steps.min()))))
    q = max(s.order for s in sl)
    return 2 * fmt.p + 64 + (q + 2) * small


def _rows(base: np.ndarray, coord: np.ndarray, value: np.ndarray, start: int, stop: int) -> np.ndarray:
    rows = np.repeat(base[None, :], stop - start, axis=0)
    rows[np.arange(stop - start), coord[start:stop]] = value[start:stop]
    return rows


_FORKED: dict[str, Any] = {}  # the work of a forked pool, inherited by its workers


def _raw(v: Any) -> Any:
    """An mpmath number as plain tuples (its class belongs to a context and won't pickle)."""
    return (v.real._mpf_, v.imag._mpf_) if hasattr(v, "_mpc_") else v._mpf_


def _forked_chunk(bounds: tuple[int, int]) -> tuple[list[Any], list[bytes] | None]:
    ev, base, coord, value = _FORKED["args"]
    vals, sigs = ev(_rows(base, coord, value, *bounds))
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
                    out[a:b] = [
                        ctx.make_mpc(v) if isinstance(v[0], tuple) else ctx.make_mpf(v)
                        for v in vals
                    ]
                    if s is not None:
                        recorded = True
                        sigs.extend(s)
                    bar.update(b - a)
        finally:
            _FORKED.clear()
    else:
        for a, b in bounds:
            chunk_vals, chunk_sigs = ev(_rows(base, coord, value, a, b))
            out[a:b] = chunk_vals
            if chunk_sigs is not None:
                recorded = True
                sigs.extend(chunk_sigs)
            bar.update(b - a)
    bar.close()
    return out, (sigs if recorded else None)


def _scheme_table(
    obj: Objective,
    fmt: fmts.Format,
    scheme: schs.Scheme,
    steps: np.ndarray,
    coords: np.ndarray,
    theta_mp: list[Any],
    ref: ExactResult,
    j_center: Any,
    sig_center: bytes,
    sigma: float,
    prec: int,
    events: Counter[str],
    progress: bool,
    workers: int,
) -> pd.DataFrame:
    c_n, s_n, j_n = coords.size, steps.size, len(scheme.offsets)
    cplx = scheme.complex_step
    mp_ctx = mpmath.MPContext()
    mp_ctx.prec = prec + 32

    # --- in the format ---------------------------------------------------------
    ns0 = namespace_for(fmt)
    h_f_mp = [fmt.round(h) for h in steps]
    h_f = ns0.from_values(np.asarray([fmt.from_mpf(v) for v in h_f_mp], dtype=object))
    theta_f = ns0.from_values(np.asarray([fmt.from_mpf(t) for t in theta_mp], dtype=object))
    theta_c = theta_f[coords]
    if cplx:
        pts_f = np.broadcast_to(theta_c[:, None, None], (c_n, s_n, 1))
    else:
        st = stencil(theta_c[:, None], steps[None, :], scheme.offsets, fmt)
        pts_f = ns0.from_values(st.points) if fmt.dtype is None else st.points
    need = [j for j, k in enumerate(scheme.offsets) if k != 0]
    coord_rows = np.repeat(coords, s_n * len(need))
    vals_rows = pts_f[:, :, need].reshape(-1)
    if cplx:
        assert fmt.complex_dtype is not None or fmt.dtype is None
        ns_c = namespace_for(fmt, is_complex=True)
        base = ns_c.from_values(theta_f) if fmt.dtype is None else theta_f.astype(fmt.complex_dtype)
        im = np.broadcast_to(h_f[None, :], (c_n, s_n)).reshape(-1)
        if fmt.dtype is not None:
            vals_rows = np.repeat(theta_c, s_n) + 1j * im
        else:
            mpc = ns_c.ctx.mpc  # type: ignore[attr-defined]
            vals_rows = np.asarray(
                [mpc(a, b) for a, b in zip(np.repeat(theta_c, s_n), im, strict=True)], dtype=object
            )
    else:
        base = theta_f
    in_fmt = Evaluator(obj, fmt, is_complex=cplx)
    dtype_f = in_fmt.dtype
    with fp_events() as ev:
        jf_rows, _ = _eval_rows(in_fmt, base, coord_rows, vals_rows,
                                f"{fmt.name}/{scheme.name} in format", progress)
        jf = np.empty((c_n, s_n, j_n), dtype=dtype_f)
        jf[:, :, need] = jf_rows.reshape(c_n, s_n, len(need))
        for j in range(j_n):
            if j not in need:
                jf[:, :, j] = j_center
        if cplx:
            num = np.imag(jf[:, :, 0]) if fmt.dtype is not None else np.asarray(
                np.frompyfunc(lambda z: z.imag, 1, 1)(jf[:, :, 0]), dtype=object)
            d_f = num / h_f[None, :]
        else:
            acc = scheme.numerators[0] * jf[:, :, 0]
            for j in range(1, j_n):
                acc = acc + scheme.numerators[j] * jf[:, :, j]
            d_f = acc / (scheme.denominator * h_f)[None, :]
    events.update(ev)

    # --- exact evaluations: nominal and realised points, deduplicated --------------
    t_nominal = [mpmath.mpf(float(h)) for h in steps]
    keys: dict[tuple[int, Any], int] = {}
    row_coord: list[int] = []
    row_value: list[Any] = []

    def slot(i: int, v: Any) -> int:
        key = (i, v)
        if key not in keys:
            keys[key] = len(row_coord)
            row_coord.append(i)
            row_value.append(v)
        return keys[key]

    idx_exact = np.empty((c_n, s_n, j_n), dtype=np.int64)
    idx_real = np.empty((c_n, s_n, j_n), dtype=np.int64)
    for a, i in enumerate(coords):
        ti = theta_mp[i]
        for b in range(s_n):
            for j, k in enumerate(scheme.offsets):
                if cplx:
                    idx_exact[a, b, j] = slot(int(i), mpmath.mpc(ti, t_nominal[b]))
                    idx_real[a, b, j] = slot(int(i), mpmath.mpc(ti, h_f_mp[b]))
                elif k == 0:
                    idx_exact[a, b, j] = idx_real[a, b, j] = -1
                else:
                    idx_exact[a, b, j] = slot(int(i), mpmath.fadd(ti, k * t_nominal[b], exact=True))
                    idx_real[a, b, j] = slot(int(i), fmts.exact_mpf(pts_f[a, b, j]))
    ref_ev = Evaluator.reference(obj, fmt, prec, is_complex=cplx, record_branches=True)
    base_x = ref_ev.convert(np.asarray(theta_mp, dtype=object))
    jx, sigs = _eval_rows(
        ref_ev, base_x, np.asarray(row_coord), ref_ev.convert(np.asarray(row_value, dtype=object)),
        f"{fmt.name}/{scheme.name} exact", progress, workers,
    )
    jx_c = mp_ctx.make_mpf(fmts.exact_mpf(ref.value)._mpf_)
    sigs_a = np.asarray(sigs if sigs is not None else [b""] * len(row_coord), dtype=object)

    def exact_val(idx: int) -> Any:
        """Exact J at a stencil point (its imaginary part for the complex step)."""
        if idx < 0:
            return jx_c
        v = jx[idx]
        return mp_ctx.make_mpf((v.imag if cplx else v)._mpf_)

    # --- combine ---------------------------------------------------------------
    # (a plain loop: np.vectorize would report the FPU flag that a Python NaN comparison
    # raises inside mpmath's conversion as if the computation had raised it)
    jf_parts = np.imag(jf) if (cplx and fmt.dtype is not None) else jf
    j_exact_f = [fmts.exact_mpf(v.imag if (cplx and fmt.dtype is None) else v)
                 for v in jf_parts.reshape(-1)]
    j_inf = np.any(np.array([mpmath.isinf(v) for v in j_exact_f]).reshape(jf.shape), axis=-1,
                   keepdims=True)[..., 0]
    j_nan = np.any(np.array([mpmath.isnan(v) for v in j_exact_f]).reshape(jf.shape), axis=-1,
                   keepdims=True)[..., 0]
    resolution = mp_ctx.ldexp(1, 16 - prec)  # relative accuracy assumed of exact J; checked
    abs_w = sum(abs(mp_ctx.mpf(c.numerator) / c.denominator) for c in scheme.weights)
    nums = [mp_ctx.mpf(c.numerator) / c.denominator for c in scheme.weights]
    rows = []
    derivs = dict(zip(ref.coords.tolist(), range(ref.coords.size), strict=True))
    dorder = scheme.truncation_derivative
    for a, i in enumerate(coords):
        g = mp_ctx.make_mpf(fmts.exact_mpf(ref.grad[i])._mpf_)
        d_k = ref.derivatives[dorder][derivs[int(i)]] if dorder in ref.derivatives else None
        for b in range(s_n):
            h = mp_ctx.make_mpf(t_nominal[b]._mpf_)
            if cplx:
                d_exact = exact_val(int(idx_exact[a, b, 0])) / h
                d_real = exact_val(int(idx_real[a, b, 0])) / h
            else:
                d_exact = mp_ctx.fsum(
                    w * exact_val(int(idx_exact[a, b, j])) for j, w in enumerate(nums)
                ) / h
                d_real = mp_ctx.fsum(
                    w * exact_val(int(idx_real[a, b, j])) for j, w in enumerate(nums)
                ) / h
            d_fx = mp_ctx.make_mpf(fmts.exact_mpf(d_f[a, b])._mpf_)
            flags = []
            if j_nan[a, b] or mpmath.isnan(d_fx):
                flags.append("nonfinite")
            if j_inf[a, b] or mpmath.isinf(d_fx):
                flags.append("overflow")
            if not cplx and any(
                scheme.offsets[j] != 0 and pts_f[a, b, j] == theta_c[a] for j in range(j_n)
            ):
                flags.append("zero_step")
            if cplx and h_f_mp[b] == 0:
                flags.append("zero_step")
            branch_sigs = {sigs_a[int(x)] for x in (*idx_exact[a, b], *idx_real[a, b]) if x >= 0}
            if branch_sigs - {sig_center}:
                flags.append("kink")
            hf = float(steps[b])
            rows.append(
                (
                    int(i), hf, float(theta_mp[i]), float(g), float(d_fx),
                    float(d_fx - g),
                    float(d_exact - g),
                    float(d_real - d_exact),
                    float(d_fx - d_real),
                    model_trunc(scheme, hf, None if d_k is None else float(d_k)),
                    model_round(scheme, hf, sigma, fmt.u, float(g)),
                    ",".join(flags),
                    float(resolution * (abs_w * abs(jx_c) / h + abs(g))),
                )
            )
    df = pd.DataFrame(
        rows,
        columns=["coord", "h", "theta", "exact", "approx", "err_total", "err_trunc",
                 "err_step", "err_round", "model_trunc", "model_round", "flag", "ref_tol"],
    )
    df.insert(0, "scheme", scheme.name)
    df.insert(0, "format", fmt.name)
    df.insert(0, "n_params", obj.n_params)
    df.insert(0, "objective", obj.name)
    df["ref_prec"] = prec
    return df


def _verify(
    obj: Objective, fmt: fmts.Format, scheme: schs.Scheme, df: pd.DataFrame,
    theta_mp: list[Any], ref: ExactResult, prec: int,
) -> float:
    """Digits on which err_trunc at the smallest step survives 64 more bits of precision."""
    if scheme.complex_step:
        return 17.0  # no cancellation: nothing to verify beyond the exact gradient
    h = float(df["h"].min())
    sub = df[df["h"] == h]
    hi = prec + 64
    ref_hi = Evaluator.reference(obj, fmt, hi)
    worst = 17.0  # float64 agreement to the last bit
    coords = sub["coord"].to_numpy()
    pts = []
    for i in coords:
        for k in scheme.offsets:
            p = list(theta_mp)
            p[i] = mpmath.fadd(theta_mp[i], k * mpmath.mpf(h), exact=True)
            pts.append(p)
    vals, _ = ref_hi(ref_hi.convert(np.asarray(pts, dtype=object)))
    ctx = mpmath.MPContext()
    ctx.prec = hi + 32
    j_n = len(scheme.offsets)
    tols = sub["ref_tol"].to_numpy()
    for r, (i, trunc) in enumerate(zip(coords, sub["err_trunc"].to_numpy(), strict=True)):
        s = ctx.fsum(ctx.mpf(c.numerator) / c.denominator * ctx.make_mpf(vals[r * j_n + j]._mpf_)
                     for j, c in enumerate(scheme.weights))
        t_hi = float(s / ctx.mpf(h) - ctx.make_mpf(fmts.exact_mpf(ref.grad[i])._mpf_))
        if abs(t_hi - trunc) <= tols[r]:
            continue  # equal to the reference's resolution
        rel = abs(t_hi - trunc) / max(abs(t_hi), 1e-300)
        worst = min(worst, -math.log10(rel) if rel > 0 else 17.0)
    return worst


def _reference_serves(
    ref: ExactResult, obj: Objective, fmt: fmts.Format, theta: list[Any], digits: int,
    orders: Sequence[int], coords: np.ndarray,
) -> bool:
    """Whether a given reference holds everything fd_errors needs of it, verified."""
    return (
        ref.objective == obj.name and ref.format == fmt.name and ref.digits_verified >= digits
        and len(ref.theta) == len(theta) and all(a == b for a, b in zip(ref.theta, theta, strict=True))
        and all(k in ref.derivatives for k in orders)
        and set(coords.tolist()) <= set(ref.coords.tolist())
    )


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
        Nominal steps h > 0 (default: 61 log-spaced steps from 1e-12 to 1).
    coords : None, int or sequence of int
        All coordinates, a random sample of that size (drawn with ``seed``), or
        these coordinates.
    noise : dict, optional
        Noise level of J per format name for ``model_round``; by default it is
        measured with :func:`gradlab.noise_level` (direct estimate).
    references : dict, optional
        Exact references (:func:`gradlab.analysis.exact`) per format name, reused instead of
        computing them when they are of this objective (name and point) and format, cover the
        coordinates and derivative orders, and verify the digits the steps need
        (otherwise the reference is computed as usual).
    seed : int
    progress : bool
        Show progress bars.
    workers : int, optional
        Processes for the exact evaluations (default: all cores; 1 runs serially).

    Returns
    -------
    pandas.DataFrame
        One row per (format, scheme, h, coord) with the columns of DESIGN.md
        (:data:`COLUMNS`), ``ref_prec``, the bits of the exact reference, and
        ``ref_tol``, the absolute resolution of the exact parts (an error part
        smaller than it is zero to the reference's precision).
        ``df.attrs`` holds the verified digits of the reference and the
        floating-point events counted per format.

    Examples
    --------
    >>> import gradlab as gl
    >>> df = gl.fd_errors(gl.objectives.seed_net(), formats=["float32"],
    ...                   schemes=["central"], steps=[1e-3], coords=[0, 1])
    >>> bool((df.err_total - (df.err_trunc + df.err_step + df.err_round)).abs().max() < 1e-12)
    True
    """
    v = _validate(obj, formats, schemes, default_steps() if steps is None else steps, coords, seed)
    n_workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if n_workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    tables = []
    attrs: dict[str, Any] = {"ref_digits": {}, "fp_events": {}, "noise": {}, "grad_digits": {}}
    for fmt in v.formats:
        prec = _reference_bits(fmt, v.steps, v.schemes)
        theta_mp = [fmt.round(t) for t in obj.theta0]
        if not all(mpmath.isfinite(t) for t in theta_mp):
            raise ValueError(f"obj.theta0 overflows format {fmt.name}")
        orders = sorted({s.truncation_derivative for s in v.schemes})
        ref_digits = math.ceil(prec / math.log2(10))
        given = (references or {}).get(fmt.name)
        if given is not None and _reference_serves(given, obj, fmt, theta_mp, ref_digits, orders,
                                                   v.coords):
            ref = given
        else:
            ref = exact(obj, fmt, digits=ref_digits, orders=orders, coords=v.coords.tolist())
        if noise is not None and fmt.name in noise:
            sigma = float(noise[fmt.name])
        else:
            sigma = noise_level(obj, fmt, seed=seed).sigma
        attrs["noise"][fmt.name] = sigma
        attrs["grad_digits"][fmt.name] = ref.digits_verified
        ns0 = namespace_for(fmt)
        theta_f = ns0.from_values(np.asarray([fmt.from_mpf(t) for t in theta_mp], dtype=object))
        ref_ev = Evaluator.reference(obj, fmt, prec, record_branches=True)
        _, sig_c = ref_ev(ref_ev.convert(np.asarray([theta_mp], dtype=object)))
        events: Counter[str] = Counter()
        with fp_events() as ev:
            j_center = Evaluator(obj, fmt)(theta_f[None, :])[0][0]
        events.update(ev)
        for scheme in v.schemes:
            df = _scheme_table(obj, fmt, scheme, v.steps, v.coords, theta_mp, ref, j_center,
                               (sig_c or [b""])[0], sigma, prec, events, progress, n_workers)
            digits = _verify(obj, fmt, scheme, df, theta_mp, ref, prec)
            if digits < 6:
                raise VerificationError(
                    f"{fmt.name}/{scheme.name}: the truncation error at the smallest step "
                    f"changed in its {digits:.1f}th digit at 64 more bits"
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
) -> np.ndarray:
    """The FD gradient computed entirely in a format, at one step or one step per coordinate.

    The same arithmetic as ``approx`` in :func:`fd_errors` (points fl(theta_i +
    fl(k_j h_F)), J, the integer-weighted sum and the division in the format), without
    the exact decomposition: cheap enough to score many step rules.

    Parameters
    ----------
    obj : Objective
    format, scheme : str
    h : float or array_like of shape (N,)
        Nominal step(s), positive and finite.

    Returns
    -------
    ndarray of float64, shape (N,)
        The format's results, converted exactly (non-finite values kept).
    """
    fmt, sch = fmts.get(format), schs.get(scheme)
    if fmt.dtype is None:
        raise ValueError("fd_gradient runs in hardware formats; use fd_errors for binary{p}")
    n = obj.n_params
    hs = np.broadcast_to(np.asarray(h, dtype=np.float64), (n,)).copy()
    if not np.all(np.isfinite(hs)) or np.any(hs <= 0):
        raise ValueError("h must be positive and finite")
    theta = fmts.round_array(obj.theta0, fmt)
    h_f = fmts.round_array(hs, fmt)
    idx = np.arange(n)
    if sch.complex_step:
        if fmt.complex_dtype is None:
            raise ValueError(f"scheme: the complex step is not available in format {fmt.name}")
        base = theta.astype(fmt.complex_dtype)
        rows = np.repeat(base[None, :], n, axis=0)
        rows[idx, idx] = theta + 1j * h_f
        with fp_events():
            vals, _ = Evaluator(obj, fmt, is_complex=True)(rows)
            return np.asarray(np.imag(vals) / h_f, dtype=np.float64)
    need = [j for j, k in enumerate(sch.offsets) if k != 0]
    in_fmt = Evaluator(obj, fmt)
    with fp_events():
        pts = stencil(theta, hs, sch.offsets, fmt).points  # (N, J)
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
        acc = sch.numerators[0] * jv[:, 0]
        for j in range(1, len(sch.offsets)):
            acc = acc + sch.numerators[j] * jv[:, j]
        return np.asarray(acc / (sch.denominator * h_f), dtype=np.float64)
