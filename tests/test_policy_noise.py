"""J's noise under policies: the storage/accumulation split, the float64 reference, attribution."""

from __future__ import annotations

import numpy as np
import pytest

import gradlab as gl
from gradlab.analysis.noise import line_points
from gradlab.analysis.policy_noise import policy_noise, storage_only
from gradlab.arithmetic import formats
from gradlab.objectives import families

WIDE = families.mlp((256, 8, 1), batch=8)


@pytest.mark.parametrize("fmt", ["float32", "bfloat16", "bf16-mixed", "tf32"])
def test_float64_reference_agrees_with_the_exact_one(fmt: str) -> None:
    obj = gl.objectives.seed_net(stable=True)
    a = gl.noise_level(obj, fmt)
    b = gl.noise_level(obj, fmt, reference="float64")
    assert b.sigma_direct == pytest.approx(a.sigma_direct, rel=1e-6)


def test_a_reference_too_narrow_for_the_format_is_refused() -> None:
    with pytest.raises(ValueError, match="reference"):
        gl.noise_level(gl.objectives.seed_net(), "float32", reference="float32")


def test_strict_accumulation_dominates_and_mixed_removes_it() -> None:
    strict = policy_noise(WIDE, "bfloat16", reference="float64")
    mixed = policy_noise(WIDE, "bf16-mixed", reference="float64")
    assert strict.sigma_accumulation > strict.sigma_storage  # 256-term bfloat16 sums
    # float32 accumulation: what is left is the storage part, the same rounding as strict's
    assert mixed.sigma_accumulation < 0.1 * mixed.sigma
    assert mixed.sigma_storage == pytest.approx(strict.sigma_storage, rel=1e-12)
    assert mixed.sigma < strict.sigma
    # the linear model from float32 alone predicts u_eff within a factor of 2
    for r in (strict, mixed):
        assert 0.5 < r.u_eff / r.u_eff_model < 2


def test_storage_only_keeps_every_rounding_but_the_accumulators() -> None:
    p = storage_only("tf32")
    assert p.accumulate.name == "float64" and p.matmul_inputs is not None
    assert p.storage.name == "float32"
    with pytest.raises(ValueError, match="accumulator"):
        storage_only("float64")


@pytest.mark.parametrize("fmt, share", [("float8_e4m3fn", 0.8), ("float8_e5m2", 0.4)])
def test_float8_lines_move_their_coordinates(fmt: str, share: float) -> None:
    # sqrt(u) |theta| spans a binade in float8: the points fall back to smaller steps (with
    # e5m2's 4 values per binade, 9 points one ulp apart fit for about half the coordinates)
    f = formats.get(fmt)
    theta = [f.round(t) for t in WIDE.theta0]
    block, rel = line_points(theta, f, 9, float(np.sqrt(f.u)), np.ones(len(theta), dtype=int))
    moved = np.mean([len(set(block[:, j])) > 1 for j in range(block.shape[1])])
    assert moved > share and rel > 0


def test_attribution_follows_the_formats_reduction() -> None:
    obj = families.mlp((16, 32, 1), batch=8)

    def reduction_share(fmt: str) -> float:
        t = gl.attribute_noise(obj, fmt).table
        return float(t[t.op.isin(["matmul", "sum"])].share.sum())

    # strict bfloat16 rounds every partial sum; float32 accumulation rounds once
    assert reduction_share("bfloat16") > reduction_share("bf16-mixed") + 0.2


@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "float8_e5m2", "bfloat16", "float16", "float32",
                                 "float64", "tf32"])
def test_vectorised_line_points_are_the_exact_ones(fmt: str) -> None:
    from gradlab.analysis.noise import _line_points_float64, _line_points_mp

    f = formats.get(fmt)
    rng = np.random.default_rng(0)
    vals = np.concatenate([rng.normal(size=60) * 10.0 ** rng.integers(-8, 4, 60),
                           [0.0, 1.0, -2.0, 0.5, 1e-30]])
    theta = [f.round(v) for v in np.clip(vals, -float(f.max_exact) / 16, float(f.max_exact) / 16)]
    signs = rng.choice([-1, 1], size=len(theta))
    for rel in (float(np.sqrt(f.u)), 1e-3):
        for halve in (False, True):
            a, ra = _line_points_float64(theta, f, 9, rel, signs, halve)
            b, rb = _line_points_mp(theta, f, 9, rel, signs, halve)
            assert ra == rb
            assert all(formats.exact_mpf(a[i, j]) == b[i, j] for i in range(9)
                       for j in range(len(theta)))
