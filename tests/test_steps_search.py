"""The rules' shared machinery (gradlab.steps.rules.search) and the status codes: trial
points from the one stencil constructor, the active-set loop, the log-scale bracket and
its cap semantics, as the rules use them."""

import numpy as np
import pytest

from gradlab.arithmetic.coordinate import CoordinateFunction
from gradlab.arithmetic.stencil import stencil
from gradlab.steps import STATUS, Status
from gradlab.steps import rules as sr
from gradlab.steps.rules.search import LogBracket, active_set, probe


class Recording:
    """J = sum(x) in x's dtype, remembering every point it was given."""

    def __init__(self) -> None:
        self.points: list[np.ndarray] = []

    def __call__(self, x: np.ndarray) -> np.floating:
        self.points.append(x.copy())
        return np.sum(x)


def test_status_codes_and_messages() -> None:
    assert [int(s) for s in Status] == [0, 1, 2, 3, 4, 5]
    assert STATUS == {int(s): s.message for s in Status}
    assert STATUS[Status.NONFINITE] == "J not finite at a trial point"
    res = sr.more_wild(lambda x: np.sum(x**2), np.ones(2), noise=1e-10)
    assert res.status.dtype.kind == "i" and Status(int(res.status[0])) is Status.SUCCESS


def test_probe_forms_points_with_the_stencil() -> None:
    """A stencil k h is formed as fl(theta + fl(k fl(h))): in bfloat16 fl(3 fl(h)) is
    0.59375 where fl(3h) would be 0.58984375."""
    h = 0.19679896712654305
    f = Recording()
    cf = CoordinateFunction(f, np.zeros(2), "bfloat16")
    vals, offs = probe(cf, np.array([1]), np.array([h]), (-3, 1, 3))
    want = stencil(cf.theta[[1]], [h], (-3, 1, 3), "bfloat16")
    np.testing.assert_array_equal(offs, want.offsets)
    assert offs[0].tolist() == [-0.59375, 0.197265625, 0.59375]
    seen = np.array([p[1] for p in f.points], dtype=np.float64)
    np.testing.assert_array_equal(seen, want.points[0].astype(np.float64))
    assert all(p[0] == 0 for p in f.points) and vals.shape == (1, 3) and cf.nfev == 3
    # with `need`, only the points asked for are evaluated
    vals, _ = probe(cf, np.array([0, 1]), np.array([h, h]), (1, 3),
                    need=np.array([[True, False], [False, True]]))
    assert cf.nfev == 5 and np.isnan(vals[0, 1]) and np.isnan(vals[1, 0])


def test_active_set_batches_the_unfinished() -> None:
    batches = []

    def trial(idx: np.ndarray, it: int) -> np.ndarray:
        batches.append(idx.tolist())
        return idx <= it  # coordinate i finishes at iteration i

    unfinished, iters = active_set(np.array([True, True, False, True, True]), 3, trial)
    assert batches == [[0, 1, 3, 4], [1, 3, 4], [3, 4]]
    assert iters.tolist() == [1, 2, 0, 3, 3]
    assert unfinished.tolist() == [False, False, False, True, True]


def test_log_bracket_tries_its_caps() -> None:
    idx = np.arange(3)
    b = LogBracket(np.array([0.1, 0.1, 2.0]), np.full(3, 0.01), np.ones(3), 4.0)
    assert b.step.tolist() == [0.1, 0.1, 1.0]  # the start is clipped
    up, down, none = np.array([True, False, False]), np.array([False, True, False]), np.zeros(3, bool)
    m = b.move(idx, up, down)
    assert b.step.tolist() == [0.4, 0.025, 1.0] and m.grown.tolist() == [True, False, False]
    assert m.shrunk.tolist() == [False, True, False]
    m = b.move(idx, up, down)  # the moves past a cap stop at it: not by the factor
    assert b.step.tolist() == [1.0, 0.01, 1.0] and not m.grown.any() and not m.shrunk.any()
    assert not m.at_ceiling.any() and not m.at_floor.any()  # the caps are still to be tried
    m = b.move(idx, up, down)
    assert m.at_ceiling.tolist() == [True, False, False] and m.at_floor.tolist() == [False, True, False]
    c = LogBracket(np.array([0.1]), np.array([0.01]), np.array([1.0]), 4.0)
    c.move(np.arange(1), np.array([True]), np.array([False]))
    c.move(np.arange(1), np.array([False]), np.array([True]))  # 0.4 too large: bisect
    assert c.step.tolist() == [np.sqrt(0.1 * 0.4)] and (c.lower.tolist(), c.upper.tolist()) == ([0.1], [0.4])
    c.move(np.arange(1), none[:1], none[:1])  # accepted: the step stays
    assert c.step.tolist() == [np.sqrt(0.1 * 0.4)]


@pytest.mark.parametrize("rule", ["dumontet_vignes", "shi_xie_xuan_nocedal"])
def test_no_truncation_is_reported_at_the_largest_step(rule: str) -> None:
    """f''' = 0: both bracketed searches try the largest step max(1, |x_i|) itself before
    reporting status 5 (Shi et al.'s search used to stop up to a factor 3 short of it)."""
    theta = np.array([0.3, -2.5, 0.8])
    res = sr.RULES[rule](lambda x: np.sum(x * x), theta, noise=1e-9)
    np.testing.assert_array_equal(res.status, Status.TRUNCATION_NOT_DETECTED)
    last = res.info["k"] if rule == "dumontet_vignes" else res.h
    np.testing.assert_array_equal(last, np.maximum(1.0, np.abs(theta)))
