"""J's noise under a precision policy, split into its storage and accumulation parts.

A policy rounds in two kinds of places: elementwise operations and the results of
reductions (in the compute format; the storage format's rounding of theta and data is
fixed, not noise), and the partial sums and products inside the reductions (in the
accumulator). The split is measured, not modelled: the same objective is evaluated under
the policy with its accumulator replaced by float64 (:func:`storage_only`), which keeps
every storage rounding and removes the accumulation's, and

    sigma_accumulation**2 = sigma**2 - sigma_storage**2

(the two are independent to first order; a negative difference, within the estimates'
sampling error, is reported as 0 with ``split_ok`` False).

The effective unit roundoff ``u_eff = u_32 sigma / sigma_32`` is the unit roundoff of a
strict format whose noise on this objective would be the policy's (rounding noise is
linear in u). The linear model predicts it from float32 alone: with
``A = sigma_storage,32**2 / u_32**2`` and ``B = sigma_accumulation,32**2 / u_32**2``
(format-independent sensitivities), a policy computing in u_c and accumulating in u_a has

    sigma_model**2 = u_c**2 A + u_a**2 B,      u_eff,model = sqrt((u_c**2 A + u_a**2 B) / (A + B)).

A strict format has ``u_eff,model = u``; float32 accumulation makes B's term vanish
beside A's. The rounding of matrix-product inputs (TF32) is not in the model
(``u_eff_model`` is NaN for such policies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gradlab.analysis.noise import noise_level
from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import validation
from gradlab.arithmetic.objective import Objective

__all__ = ["PolicyNoise", "policy_noise", "storage_only"]


def storage_only(fmt: fmts.Format | str) -> fmts.Format:
    """The policy with every rounding of ``fmt`` but its accumulation's (accumulator float64).

    Examples
    --------
    >>> storage_only("bfloat16").name
    'policy(storage=bfloat16, accumulate=float64)'
    """
    f = fmts.get(fmt)
    if f.dtype is None or f.compute.p > 53 or f.accumulate.p >= 53:
        raise ValueError(f"format {f.name!r}: the storage-only split needs a hardware format "
                         "whose accumulator is narrower than float64")
    return fmts.policy(f.storage, compute=f.compute, accumulate="float64",
                       matmul_inputs=f.matmul_inputs, data=f.data if f.data != f.storage else None)


@dataclass(frozen=True)
class PolicyNoise:
    """J's noise under one format or policy, and its parts.

    Attributes
    ----------
    objective, format : str
    value : float
        |J| at theta.
    sigma, sigma_storage, sigma_accumulation : float
        The noise (direct estimate, :func:`gradlab.noise_level`), its storage part (the policy
        with a float64 accumulator) and the accumulation part (by difference).
    split_ok : bool
        ``sigma_storage <= sigma``: the difference is a variance.
    sigma_32, sigma_storage_32 : float
        The same for float32 (the calibration of ``u_eff`` and of the model).
    u, u_compute, u_accumulate : float
        Unit roundoffs of the storage, compute and accumulator formats.
    u_eff, u_eff_model : float
        Measured and modelled effective unit roundoff (module docstring).
    """

    objective: str
    format: str
    value: float
    sigma: float
    sigma_storage: float
    sigma_accumulation: float
    split_ok: bool
    sigma_32: float
    sigma_storage_32: float
    u: float
    u_compute: float
    u_accumulate: float
    u_eff: float
    u_eff_model: float

    def to_row(self) -> dict[str, Any]:
        """The fields as one table row."""
        return dict(self.__dict__)


def _split(obj: Objective, fmt: fmts.Format, **kw: Any) -> tuple[float, float, float]:
    """(|J|, sigma, sigma_storage) of ``fmt``."""
    full = noise_level(obj, fmt, **kw)
    store = noise_level(obj, storage_only(fmt), **kw)
    return full.value, full.sigma_direct, store.sigma_direct


def policy_noise(obj: Objective, format: fmts.Format | str, *, reference: fmts.Format | str = "exact",
                 n_lines: int = 4, nf: int = 9, seed: int = 0,
                 calibration: tuple[float, float] | None = None) -> PolicyNoise:
    """Measure J's noise under ``format`` and split it into storage and accumulation parts.

    Parameters
    ----------
    obj : Objective
    format : str or Format
        A hardware format or a policy whose accumulator is narrower than float64.
    reference, n_lines, nf, seed
        As for :func:`gradlab.noise_level` (``reference="float64"`` for large networks).
    calibration : (float, float), optional
        float32's ``(sigma, sigma_storage)`` on this objective with the same sample, when
        already measured (several formats of one objective share them).

    Returns
    -------
    PolicyNoise

    Examples
    --------
    >>> import gradlab as gl
    >>> from gradlab.objectives import families
    >>> r = policy_noise(families.mlp((256, 8, 1), batch=8), "bfloat16", reference="float64")
    >>> r.sigma_accumulation > r.sigma_storage  # strict bfloat16 sums of 256 terms dominate
    True
    """
    validation.objective("obj", obj)
    fmt = validation.one_format("format", format)
    kw: dict[str, Any] = {"reference": reference, "n_lines": n_lines, "nf": nf, "seed": seed}
    value, sigma, store = _split(obj, fmt, **kw)
    if calibration is None:
        _, sigma_32, store_32 = _split(obj, fmts.get("float32"), **kw)
    else:
        sigma_32, store_32 = calibration
    u32 = fmts.get("float32").u
    a, b = (store_32 / u32) ** 2, max(sigma_32**2 - store_32**2, 0.0) / u32**2
    uc, ua = fmt.compute.u, fmt.accumulate.u
    model = (math.nan if fmt.matmul_inputs is not None or a + b == 0
             else math.sqrt((uc**2 * a + ua**2 * b) / (a + b)))
    return PolicyNoise(
        objective=obj.name, format=fmt.name, value=value, sigma=sigma, sigma_storage=store,
        sigma_accumulation=math.sqrt(max(sigma**2 - store**2, 0.0)), split_ok=store <= sigma,
        sigma_32=sigma_32, sigma_storage_32=store_32, u=fmt.u, u_compute=uc, u_accumulate=ua,
        u_eff=u32 * sigma / sigma_32 if sigma_32 > 0 else math.inf, u_eff_model=model,
    )
