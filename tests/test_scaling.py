"""Scaling cells: h* and E* measured against the exact gradient, and the u laws."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gradlab.sweeps.fits import fit_power_law
from gradlab.sweeps.scaling import (
    CellSpec,
    build_objective,
    implied_exponent,
    measure_cell,
    n_madds,
    optimum,
)

NET = {"family": "mlp", "widths": [3, 4, 1], "batch": 4, "seed": 1}


def test_cell_row_brackets_the_minimum_and_agrees_with_the_model() -> None:
    row = measure_cell({"objective": NET, "format": "float32", "scheme": "central", "n_coords": 6,
                        "label": "tiny"}).iloc[0]
    assert row["label"] == "tiny" and row["N"] == 21 and row["n_coords"] == 6
    assert not row["edge"] and row["n_flagged_at_opt"] == 0
    assert row["h_opt_low"] <= row["h_opt"] <= row["h_opt_high"]
    assert row["e_opt_low"] <= row["e_opt"] <= row["e_opt_high"]
    assert 0.5 < row["h_model"] / row["h_opt"] < 2  # the model's h* is right to within 2x
    assert 0.3 < row["e_model"] / row["e_opt"] < 3
    # at the optimum both parts are of the same size (neither dominates by 10x)
    assert 0.1 < row["trunc_at_opt"] / row["round_at_opt"] < 10
    assert row["ref_digits"] >= 20 and 0.1 < row["noise_u"] < 10


def test_quadratic_central_is_pure_rounding() -> None:
    row = measure_cell({"objective": {"family": "quadratic", "n": 4}, "format": "float32",
                        "scheme": "central"}).iloc[0]
    # no third derivative: D_exact - g vanishes (to the reference's precision)
    assert row["trunc_at_opt"] < 1e-25 * row["round_at_opt"]
    assert math.isinf(row["h_model"])  # the model has no minimum ...
    # ... and the measured one lies where |J(theta + h)| starts to grow (h of order 1),
    # far above the u^(1/3) of a truncating objective
    assert row["h_opt"] > 30 * (2.0**-24) ** (1 / 3) or row["edge"]


def test_u_exponents_match_theory() -> None:
    """h* ~ u^(1/3) and E* ~ u^(2/3) for central differences across emulated formats."""
    rows = [measure_cell({"objective": NET, "format": f"binary{p}", "scheme": "central",
                          "n_coords": 6, "n_boot": 0}) for p in (12, 18, 24, 30, 36)]
    df = pd.concat(rows, ignore_index=True)
    h = fit_power_law(df, "h_opt", ["u"], n_boot=300)
    e = fit_power_law(df, "e_opt", ["u"], n_boot=300)
    assert abs(h.exponents["u"] - 1 / 3) < 0.08
    assert abs(e.exponents["u"] - 2 / 3) < 0.08


def test_bad_cells_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="'scheme'"):
        measure_cell({"objective": NET, "format": "float32"})
    with pytest.raises(ValueError, match="family"):
        build_objective({"family": "resnet"})
    with pytest.raises(ValueError, match="scheme"):
        measure_cell({"objective": NET, "format": "float32", "scheme": "complex"})


def test_optimum_edges_and_madds() -> None:
    h = np.logspace(-4, 0, 9)
    assert optimum(h, h)[2] and optimum(h, 1 / h)[2]  # monotone: on an edge
    assert math.isnan(optimum(h, np.full(9, np.inf))[0])
    assert n_madds(build_objective(NET)) == 4 * (3 * 4 + 4 * 1)


@pytest.mark.parametrize("q", [1, 2])
def test_implied_exponents_reduce_to_the_u_theory(q: int) -> None:
    assert implied_exponent("h_opt", "u", q, 1, 0, 0) == pytest.approx(1 / (q + 1))
    assert implied_exponent("e_opt", "u", q, 1, 0, 0) == pytest.approx(q / (q + 1))
    # N: the sqrt(N) of the norm cancels against ||g|| ~ sqrt(N) when nothing else moves
    assert implied_exponent("e_opt", "N", q, 0, 0, 0.5) == pytest.approx(0.0)


def test_a_minimum_on_the_grid_edge_widens_the_grid_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A grid that starts two decades below the optimum is extended upwards on its lattice."""
    import gradlab.sweeps.scaling as scaling

    real = scaling._step_grid

    def low_grid(centre: float, per_decade: int, decades: float, max_step: float, u: float):
        return real(centre / 100, per_decade, 0.5, max_step, u)  # 5 steps, all far too small

    monkeypatch.setattr(scaling, "_step_grid", low_grid)
    # all 65 coordinates of a wider net: an rms over few coordinates of a tiny net's quantised
    # rounding errors need not fall monotonically two decades below h*
    wider = {"family": "mlp", "widths": [6, 8, 1], "batch": 16, "seed": 1}
    row = measure_cell({"objective": wider, "format": "float32", "scheme": "central", "n_coords": 65,
                        "n_boot": 0}).iloc[0]
    assert row["n_steps"] == 5 + 8 and not row["edge"]
    assert 0.5 < row["h_model"] / row["h_opt"] < 2  # found where the unpatched grid finds it


def test_cell_spec_validates_once_and_keeps_the_labels() -> None:
    spec = CellSpec.from_params({"objective": NET, "format": "binary12", "scheme": "forward",
                                 "n_coords": 8.0, "max_step": 4, "sweep": "u", "label": "tiny"})
    assert spec.format.p == 12 and spec.scheme.order == 1
    assert spec.n_coords == 8 and isinstance(spec.n_coords, int) and spec.max_step == 4.0
    assert spec.labels == {"sweep": "u", "label": "tiny"} and spec.decades == 2.0 and spec.n_boot == 200


@pytest.mark.parametrize("key,value", [
    ("n_coords", 0), ("n_coords", 2.5), ("n_coords", True), ("steps_per_decade", "4"), ("seed", -1),
    ("workers", math.inf), ("decades", 0.0), ("max_step", math.nan), ("level", 1.0), ("n_boot", -1),
    ("format", "float8"), ("scheme", "central3"), ("objective", {"widths": [3, 1]}),
])
def test_a_bad_cell_parameter_is_named(key: str, value: object) -> None:
    params = {"objective": NET, "format": "float32", "scheme": "central", key: value}
    with pytest.raises(ValueError, match=f"'{key}'"):
        CellSpec.from_params(params)


def test_a_shared_noise_level_gives_the_cell_it_would_measure() -> None:
    from gradlab.sweeps.scaling import measure_noise, noise_cells, with_noise

    cells = [{"objective": {"family": "quadratic", "n": 4, "seed": 1}, "format": "float32",
              "scheme": s, "n_coords": 4, "n_boot": 20} for s in ("central", "forward")]
    stage = noise_cells(cells)
    assert len(stage) == 1  # one measurement for both schemes
    table = measure_noise(stage[0]).assign(status="ok")
    shared = with_noise(cells, table)
    assert all(c["j_noise"]["sigma"] == float(table.sigma[0]) for c in shared)
    for own, given in zip(cells, shared, strict=True):
        pd.testing.assert_frame_equal(measure_cell(own), measure_cell(given))
    for bad in (-1.0, math.nan):
        with pytest.raises(ValueError, match="'j_noise'"):
            measure_cell({**cells[0], "j_noise": {"sigma": bad, "sigma_ecnoise": 0.0, "value": 1.0}})
    # an infinite noise level (J not finite along the lines) is data, not an error
    assert CellSpec.from_params({**cells[0], "j_noise": {"sigma": math.inf, "sigma_ecnoise": math.nan,
                                                         "value": 1.0}}).j_noise is not None
    failed = table.assign(status="error")
    assert "j_noise" not in with_noise(cells, failed)[0]  # it measures (and fails) on its own
