"""What produced a number: the versions of everything that computes one, the config and
the time. The lowest layer: every table writer, the sweep runner included, records it."""

from __future__ import annotations

import platform
import sys
from datetime import datetime, timezone
from typing import Any

import flint
import matplotlib
import ml_dtypes
import mpmath
import numpy
import pandas
import scipy

from gradlab._version import __version__

__all__ = ["provenance"]


def provenance(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Versions of everything that computes a number, the config and the time."""
    return {
        "gradlab": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "mpmath": mpmath.__version__,
        "mpmath_backend": mpmath.libmp.BACKEND,
        "ml_dtypes": ml_dtypes.__version__,
        "python_flint": flint.__version__,
        "pandas": pandas.__version__,
        "matplotlib": matplotlib.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": config or {},
    }
