"""Regression: the steps several rules choose on a small objective, pinned bit for bit.

The expected values were computed with the rules as they stood at commit 94006ed (the
single-module ``gradlab/steps/rules/__init__.py``, before it was split into one module
per rule family) by running this file's CASES through ``gradlab.steps.rules.RULES``
with that commit's ``gradlab`` on PYTHONPATH (numpy 2.4.6, x86_64, glibc 2.36). The
refactor kept every one of them: none of these cases forms a point at a multiple k h
with k not a power of two (where ``fl(theta + fl(3 fl(h)))`` may now differ from the old
``fl(theta + fl(3h))``) except Shi et al.'s central stencil, whose points here happen to
round alike, and none reaches a search's cap (whose semantics were unified).

J is built from IEEE +, *, / and a hash, so its values are the same on every platform;
the steps also pass through libm's pow (``**``), so another libm may move a last bit.
Steps are compared as float.hex strings, with status and nfev.
"""

import hashlib

import numpy as np
import pytest

from gradlab.steps.rules import RULES

A = (0.7, -1.3, 2.0, 0.9)
THETA = np.array([0.6, -0.75, 0.9, 3.0])
SIGMA = 1e-9


def rational(x: np.ndarray) -> np.floating:
    """sum_i a_i x_i + x_i**3 / (1 + x_i**2) plus hash noise of size SIGMA, in x's dtype,
    term by term."""
    dt = x.dtype.type
    acc = dt(0)
    for a, xi in zip(A, x, strict=True):
        acc = dt(acc + (dt(a) * xi + xi * xi * xi / (dt(1) + xi * xi)))
    digest = hashlib.blake2b(np.ascontiguousarray(x).tobytes(), digest_size=8).digest()
    u = int.from_bytes(digest, "little") / 2.0**64
    return dt(acc + dt(SIGMA * (2 * u - 1)))


# (rule, format, scheme, options, h as float.hex, status, nfev), from commit 94006ed
CASES = [
    ("gmsw", "float64", "forward", {"noise": SIGMA},
        ["0x1.d9fe5a6ee7d74p-15", "0x1.0de0cb97214d0p-14",
         "0x1.486036b6af004p-14", "0x1.5e682c5cebb15p-12"], [0, 0, 0, 0], 11),
    ("gmsw", "float32", "forward", {"noise": "roundoff"},
        ["0x1.54dea92f4b522p-10", "0x1.858b81e9964e5p-10",
         "0x1.dbbf1a71eee91p-10", "0x1.feaaf6e2c095dp-8"], [0, 0, 0, 0], 11),
    ("gmsw", "float32", "central", {},
        ["0x1.b544329e137dcp-8", "0x1.de4296e554abdp-8",
         "0x1.03a07d964aecfp-7", "0x1.200cb8151220ep-4"], [0, 0, 0, 0], 29),
    ("stepleman_winarsky", "float64", "central", {},
        ["0x1.999999999999ap-12", "0x1.999999999999ap-12",
         "0x1.999999999999ap-12", "0x1.3333333333334p-10"], [0, 0, 0, 0], 48),
    ("stepleman_winarsky", "float32", "central", {},
        ["0x1.999999999999ap-8", "0x1.999999999999ap-10",
         "0x1.999999999999ap-10", "0x1.3333333333334p-8"], [0, 0, 0, 0], 38),
    ("dumontet_vignes", "float64", "central", {"noise": SIGMA},
        ["0x1.3372e1beaeac7p-10", "0x1.4ad8adc9696dfp-10",
         "0x1.20464fadd312fp-10", "0x1.5feb8bf0b4ab4p-8"], [0, 0, 0, 0], 57),
    ("dumontet_vignes", "float32", "central", {},
        ["0x1.285e8c039fdebp-7", "0x1.23a33a895a180p-7",
         "0x1.29c6a0b04e64ep-7", "0x1.60fd2c8cfe7ffp-5"], [0, 0, 0, 0], 95),
    ("more_wild", "float64", "forward", {"noise": SIGMA},
        ["0x1.8d8a355f29f90p-15", "0x1.c7b2d2d01c29ep-15",
         "0x1.11965fd8832bdp-14", "0x1.25e8103e24006p-12"], [0, 0, 0, 0], 9),
    ("more_wild", "float32", "backward", {},
        ["0x1.0185698f83a6ap-10", "0x1.276ed3ecc0fb8p-10",
         "0x1.621c59551ca8fp-10", "0x1.7d777876b8891p-8"], [0, 0, 0, 0], 27),
    ("more_wild_central", "float64", "central", {"noise": SIGMA},
        ["0x1.368e37311064fp-10", "0x1.289eb8744e5d2p-10",
         "0x1.3754c36f74f65p-10", "0x1.7151d06962bc3p-8"], [0, 0, 0, 0], 17),
    ("shi_xie_xuan_nocedal", "float64", "forward", {"noise": SIGMA},
        ["0x1.63f1d1d514626p-15", "0x1.63f1d1d514626p-14",
         "0x1.63f1d1d514626p-14", "0x1.798948ee9c450p-12"], [0, 0, 0, 0], 20),
    ("shi_xie_xuan_nocedal", "float64", "central", {"noise": SIGMA},
        ["0x1.3c26ebf33ba8dp-10", "0x1.3c26ebf33ba8dp-10",
         "0x1.3c26ebf33ba8dp-10", "0x1.9ab18c1ea3c44p-8"], [0, 0, 0, 0], 37),
    ("shi_xie_xuan_nocedal", "float32", "backward", {"noise": "roundoff"},
        ["0x1.0000000000000p-10", "0x1.0000000000000p-9",
         "0x1.0000000000000p-9", "0x1.8000000000000p-8"], [0, 0, 0, 0], 15),
    ("shi_xie_xuan_nocedal", "float32", "central", {},
        ["0x1.2a3d6269fb629p-7", "0x1.2a3d6269fb629p-7",
         "0x1.2a3d6269fb629p-7", "0x1.836cc27cf31acp-5"], [0, 0, 0, 0], 55),
    ("ridders", "float64", "central", {},
        ["0x1.2a8ad278e8dd0p-5", "0x1.2a8ad278e8dd0p-5",
         "0x1.2a8ad278e8dd0p-5", "0x1.bfd03bb55d4b8p-4"], [0, 0, 0, 0], 42),
    ("ridders", "float32", "central", {},
        ["0x1.2a8ad278e8dd0p-5", "0x1.aa7d2cacba605p-6",
         "0x1.aa7d2cacba605p-6", "0x1.bfd03bb55d4b8p-4"], [0, 0, 0, 0], 40),
    ("fdm_bound", "float64", "central4", {},
        ["0x1.0c8045029e043p-11", "0x1.9129c237039a5p-12",
         "0x1.d78495493f114p-12", "0x1.e2cf961afdb2ep-12"], [0, 0, 0, 0], 25),
    ("fdm_bound", "float32", "forward", {},
        ["0x1.c5bac3d3bb311p-10", "0x1.fc3abc0c47bbap-10",
         "0x1.3db47f49e12a8p-9", "0x1.0cb2397e5faf4p-7"], [0, 0, 0, 0], 13),
    ("fdm_bound", "float16", "central", {},
        ["0x1.a7712b4fc89cfp-3", "0x1.cae314833c10ep-3",
         "0x1.fe471ea2be79bp-3", "0x1.2a698aceaad0cp-2"], [0, 0, 0, 0], 17),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_rule_steps_are_pinned(case: tuple) -> None:
    name, fmt, scheme, options, h_hex, status, nfev = case
    res = RULES[name](rational, THETA, fmt, scheme, **options)
    assert [float(v).hex() for v in res.h] == h_hex
    assert res.status.tolist() == status
    assert res.nfev == nfev
