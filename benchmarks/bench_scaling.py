"""Benchmark: the pieces of the scaling study. Prints times and ratios measured in one run.

1. The proven reference (value, all N gradient entries, third derivatives of 8 sampled
   coordinates, all enclosed in ball arithmetic) of MLPs with N = 101,121 and 1,050,625,
   against the issue's targets of 10 s and 2 minutes.
2. The reference matmul: exact integer dot products against mpmath op by op.
3. A resumed sweep: a second run over a finished dataset recomputes nothing.

Run: python benchmarks/bench_scaling.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

import gradlab as gl
from gradlab.arithmetic.namespaces import MPNamespace
from gradlab.sweeps.runner import run_sweep
from gradlab.sweeps.scaling import measure_cell


def exact_large() -> None:
    for widths, target in (([136, 256, 256, 1], 10), ([512, 1024, 512, 1], 120)):
        obj = gl.objectives.mlp(widths, "tanh", "bce", batch=8)
        coords = np.sort(np.random.default_rng(0).choice(obj.n_params, 8, replace=False)).tolist()
        t = time.perf_counter()
        ref = gl.exact(obj, "float32", digits=20, orders=(3,), coords=coords)
        dt = time.perf_counter() - t
        print(f"proven reference, MLP N={obj.n_params}: {dt:.1f} s, {dt / target:.2f} of the "
              f"{target} s target (proven: {ref.proven}, {ref.digits_verified} digits)")


def matmul_ratio() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((64, 256, 256)), rng.standard_normal((256, 8))
    times = {}
    for fast in (False, True):
        ns = MPNamespace(120, batch_ndim=1, exact_dot=fast)
        x, y = ns.from_values(a.astype(object)), ns.from_values(b.astype(object))[None]
        t = time.perf_counter()
        ns.matmul(x, y)
        times[fast] = time.perf_counter() - t
    print(f"reference matmul 64x(256x256)@(256x8), 120 bits: op by op {times[False]:.2f} s, "
          f"exact dot {times[True]:.2f} s, ratio {times[False] / times[True]:.1f}x")


def resumed_sweep() -> None:
    cells = [{"objective": {"family": "mlp", "widths": [4, 6, 1], "seed": s}, "format": f,
              "scheme": "central", "n_coords": 8}
             for s in range(3) for f in ("float32", "float64")]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cells"
        t = time.perf_counter()
        first = run_sweep(measure_cell, cells, out, workers=2, progress=False)
        t1 = time.perf_counter() - t
        t = time.perf_counter()
        second = run_sweep(measure_cell, cells, out, workers=2, progress=False)
        t2 = time.perf_counter() - t
    same = first.table.equals(second.table)
    print(f"sweep of {len(cells)} cells: {t1:.1f} s; resumed over the finished dataset: {t2:.2f} s "
          f"({second.n_computed} cells recomputed, {second.n_reused} reused, ratio {t1 / t2:.0f}x, "
          f"tables identical: {same})")


if __name__ == "__main__":
    matmul_ratio()
    resumed_sweep()
    exact_large()
