"""gradlab: the numerical analysis of finite-difference gradients."""

from gradlab import formats, objectives
from gradlab.objective import Objective

__all__ = ["Objective", "formats", "objectives"]
__version__ = "0.1.0"
