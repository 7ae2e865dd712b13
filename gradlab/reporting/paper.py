"""Papers whose numbers are generated: a Markdown template filled from a numbers table.

A template (``papers/NAME/paper.md``) writes every reported number as a
placeholder ``{{name}}``; :func:`build` fills them from the ``numbers`` table a
study wrote, and :func:`check_numbers` verifies that the built text holds no number
the build did not produce (numbers inside code or math spans and in the
References section are exempt: formulas and citations are not measurements).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from gradlab.reporting.html import write_paper_html

__all__ = ["NUMBER", "build", "check_numbers", "render", "sci"]

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
NUMBER = re.compile(r"(?<![A-Za-z_\d.])[-+−]?\d+(?:\.\d+)?(?:[eE][-+−]?\d+)?(?:\s*×\s*10\^?[-−]?\d+)?"
                    r"(?![A-Za-z_\d])")
_EXEMPT = re.compile(
    r"`[^`]*`|\$[^$]*\$|!\[[^\]]*\]\([^)]*\)|\[[^\]]*\]\([^)]*\)|^\s*\d+\.\s",
    flags=re.MULTILINE,
)


def sci(x: float, digits: int = 2) -> str:
    """A number for prose, to ``digits`` significant digits: 1.2e-7, 0.034, 47, inf.

    Examples
    --------
    >>> sci(1.234e-7), sci(0.0341), sci(47.0), sci(298.7), sci(float("inf"))
    ('1.2e-7', '0.034', '47', '300', 'inf')
    """
    if not np.isfinite(x):
        return "inf" if x > 0 else ("-inf" if x < 0 else "NaN")
    if x == 0:
        return "0"
    if float(x).is_integer() and abs(x) < 1e6:
        return str(int(x))
    if 1e-3 <= abs(x) < 1e4:
        v = float(f"{x:.{digits}g}")  # round to significant digits, print without exponent
        return str(int(v)) if v.is_integer() else f"{v:g}"
    mant, exp = f"{x:.{digits - 1}e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp)}"


class PaperError(ValueError):
    """A template that cannot be built, or a built paper with an unproduced number."""


def render(template: str, values: dict[str, str]) -> str:
    """Fill ``{{name}}`` placeholders; a name missing from ``values`` raises."""
    missing = sorted({m.group(1) for m in PLACEHOLDER.finditer(template)} - set(values))
    if missing:
        raise PaperError(f"the numbers table lacks {missing}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _checked_part(text: str) -> str:
    body = re.split(r"^#+\s*References\s*$", text, flags=re.MULTILINE)[0]
    return _EXEMPT.sub(" ", body)


def check_numbers(built: str, produced: list[str]) -> list[str]:
    """Numbers in ``built`` (outside exempt spans) that no produced value contains."""
    allowed: set[str] = set()
    for v in produced:
        allowed.update(m.group(0).strip() for m in NUMBER.finditer(v))
    found = [m.group(0).strip() for m in NUMBER.finditer(_checked_part(built))]
    return [n for n in found if n not in allowed]


def build(template_path: Path | str, numbers: pd.DataFrame, out: Path | str, html: bool = True) -> Path:
    """Build a paper: fill the template from ``numbers`` (columns name, text) and check it;
    writes ``out`` and, with ``html``, beside it the page ``paper.html``
    (:mod:`gradlab.reporting.html`), with the numbers table's provenance.

    Raises
    ------
    PaperError
        If a placeholder has no number, or the built text holds a number that the
        build did not produce (a number typed into the template by hand).
    FileNotFoundError
        With ``html``, for a figure the paper shows that is missing (after ``out`` is written).
    """
    template = Path(template_path).read_text()
    values = dict(zip(numbers["name"], numbers["text"], strict=True))
    built = render(template, values)
    stray = check_numbers(built, [values[m.group(1)] for m in PLACEHOLDER.finditer(template)])
    if stray:
        raise PaperError(f"numbers not produced by the build: {sorted(set(stray))[:10]}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(built)
    if html:
        write_paper_html(out, {str(k): v for k, v in numbers.attrs.items()} or None)
    return out
