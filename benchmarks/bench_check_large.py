"""gl.check's directional mode on a million parameters: time, evaluations and power.

Run: .venv/bin/python benchmarks/bench_check_large.py [N]. Reports, from one run, the
seconds and evaluations of a check of a correct gradient and of one with a 10% error in
a single component, beside the time of one evaluation of J (the ratio is what to compare
between machines), and the power the check states: the smallest ||e|| it detects with
probability 0.95.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import gradlab as gl


def main(n: int = 10**6) -> None:
    rng = np.random.default_rng(0)
    a, theta = rng.standard_normal(n), rng.standard_normal(n)

    def f(x: np.ndarray) -> float:
        return np.sum(np.sin(a.astype(x.dtype) * x))

    def grad(x: np.ndarray) -> np.ndarray:
        return a.astype(x.dtype) * np.cos(a.astype(x.dtype) * x)

    def wrong(x: np.ndarray) -> np.ndarray:
        g = grad(x).copy()
        g[n // 3] *= 1.1
        return g

    t0 = time.perf_counter()
    f(theta)
    one = time.perf_counter() - t0
    for fmt in ("float64", "float32"):
        for name, g in (("correct", grad), ("one component x1.1", wrong)):
            t0 = time.perf_counter()
            res = gl.check(f, g, theta=theta, format=fmt, mode="directional")
            dt = time.perf_counter() - t0
            print(f"N={n} {fmt} {name}: passed={res.passed} in {dt:.1f} s = {dt / one:.0f} "
                  f"evaluations' time; {res.nfev} evaluations of J, {res.ngev} of the gradient")
            if g is grad:  # the power the check of the correct gradient states
                norm = float(np.linalg.norm(grad(theta)))
                print(f"  power: {res.power}; ||g|| = {norm:.3g}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10**6)
