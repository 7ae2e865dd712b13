"""Benchmark: the batched engine against the exercise's per-coordinate loop, and the
exact decomposition of the same grid. Prints ratios measured in one run.

Grid: seed_net, 61 steps, schemes forward/central/central4, formats float64/float32/float16.
Run: python benchmarks/bench_engine.py
"""

from __future__ import annotations

import time

import numpy as np

import gradlab as gl
from gradlab.analysis.engine import default_steps
from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic.evaluator import Evaluator
from gradlab.arithmetic.namespaces import namespace_for
from gradlab.arithmetic.stencil import stencil

FORMATS = ["float64", "float32", "float16"]
SCHEMES = ["forward", "central", "central4"]


def exercise_loop(obj: gl.Objective, fmt: str, scheme: str, h: float) -> np.ndarray:
    """The exercise's style: copy theta, perturb one coordinate, call J, one at a time."""
    s = gl.schemes.get(scheme)
    f = fmts.get(fmt)
    theta = fmts.round_array(obj.theta0, f)
    ns = namespace_for(f)
    hf = f.dtype.type(h)
    out = np.empty(theta.size, dtype=f.dtype)
    for i in range(theta.size):
        acc = f.dtype.type(0)
        for k, n in zip(s.offsets, s.numerators, strict=False):
            t = theta.copy()
            t[i] = t[i] + k * hf
            acc = acc + n * obj.fn(t, ns)
        out[i] = acc / (s.denominator * hf)
    return out


def batched(obj: gl.Objective, fmt: str, scheme: str, steps: np.ndarray) -> np.ndarray:
    """All coordinates and steps of one (format, scheme) in one array evaluation."""
    s = gl.schemes.get(scheme)
    f = fmts.get(fmt)
    theta = fmts.round_array(obj.theta0, f)
    st = stencil(theta[:, None], steps[None, :], s.offsets, f)
    h_f, pts = st.h, st.points  # (N, S, J)
    n, n_s, n_j = pts.shape
    rows = np.repeat(theta[None, :], n * n_s * n_j, axis=0)
    rows[np.arange(rows.shape[0]), np.repeat(np.arange(n), n_s * n_j)] = pts.reshape(-1)
    vals, _ = Evaluator(obj, f)(rows)
    vals = vals.reshape(n, n_s, n_j)
    acc = s.numerators[0] * vals[..., 0]
    for j in range(1, n_j):
        acc = acc + s.numerators[j] * vals[..., j]
    return acc / (s.denominator * h_f)  # h_f: (1, S), broadcast over the coordinates


def main() -> None:
    obj = gl.objectives.seed_net()
    steps = default_steps()
    with np.errstate(all="ignore"):
        t0 = time.perf_counter()
        loop = {(f, s): np.stack([exercise_loop(obj, f, s, h) for h in steps], axis=1)
                for f in FORMATS for s in SCHEMES}
        t_loop = time.perf_counter() - t0
        t0 = time.perf_counter()
        fast = {(f, s): batched(obj, f, s, steps) for f in FORMATS for s in SCHEMES}
        t_batch = time.perf_counter() - t0
    same = all(np.array_equal(loop[k], fast[k], equal_nan=True) for k in loop)
    print(f"FD gradients, {len(steps)} steps x {len(SCHEMES)} schemes x {len(FORMATS)} formats:")
    print(f"  exercise-style loop {t_loop:.2f} s, batched {t_batch:.3f} s, "
          f"ratio {t_loop / t_batch:.1f}x (identical results: {same})")
    t0 = time.perf_counter()
    df = gl.fd_errors(obj, formats=FORMATS, schemes=SCHEMES, steps=steps)
    t_exact = time.perf_counter() - t0
    print(f"  exact decomposition of the grid: {t_exact:.1f} s for {len(df)} rows "
          f"({t_exact / t_batch:.0f}x the batched FD alone)")


if __name__ == "__main__":
    main()
