"""Papers as self-contained HTML pages, and an index of a results folder.

A built paper (Markdown) becomes ``paper.html`` beside it: rendered by markdown-it-py
(CommonMark with tables), ``$...$`` formulas converted to MathML by latex2mathml (browsers
render it with no script and no network), every figure embedded as a data URI (the page
survives being moved or mailed), a table of contents from the section headings, and the
provenance of the numbers (versions, configuration, date) at the end.
:func:`write_index` writes ``index.html`` for a folder of studies: each one's paper and tables.
"""

from __future__ import annotations

import base64
import html
import json
import mimetypes
from pathlib import Path
from typing import Any

from latex2mathml.converter import convert as latex_to_mathml
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin

__all__ = ["maybe_write_index", "paper_html", "write_index", "write_paper_html"]

_CSS = """
body { font: 16px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f;
       margin: 0; background: #fafafa; }
main, nav, footer { max-width: 60rem; margin: 0 auto; padding: 0 1.5rem; }
main { background: #fff; padding: 1.5rem 2.5rem 2rem; box-shadow: 0 0 0.4rem #0001; }
h1 { font-size: 1.7rem; line-height: 1.25; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
nav { font-size: 0.9rem; padding: 1rem 1.5rem; }
nav ol { columns: 2; margin: 0.3rem 0; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.55rem; text-align: left; }
th { background: #f0f0f3; } tr:nth-child(even) td { background: #fafafc; }
code { font-size: 0.88em; background: #f3f3f6; padding: 0 0.2em; border-radius: 3px; }
pre code { display: block; padding: 0.6rem; overflow-x: auto; }
img { max-width: 100%; height: auto; display: block; margin: 1rem auto 0.3rem; }
.caption { display: block; text-align: center; font-size: 0.88rem; color: #444; margin-bottom: 1.2rem; }
footer { font-size: 0.8rem; color: #555; padding: 1.5rem; }
footer td, footer th { font-size: 0.8rem; }
table.config td code { white-space: normal; word-break: break-word; }
"""


def _math(content: str, display: bool) -> str:
    try:
        return str(latex_to_mathml(content, display="block" if display else "inline"))
    except Exception:  # an unknown macro: show the source rather than fail the page
        return f"<code>{html.escape(content)}</code>"


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.use(dollarmath_plugin, allow_space=True, double_inline=True,
           renderer=lambda content, opts: _math(content, bool(opts.get("display_mode"))))
    md.use(anchors_plugin, min_level=2, max_level=3)
    def captioned(self: RendererHTML, tokens: Any, idx: int, options: Any, env: Any) -> str:
        # a figure's alt text is its caption, shown under it
        img = RendererHTML.image(self, tokens, idx, options, env)
        alt = html.escape(tokens[idx].content)
        return f'{img}<span class="caption">{alt}</span>' if alt else img

    md.add_render_rule("image", captioned)
    return md


def _data_uri(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _provenance(meta: dict[str, Any]) -> str:
    rows = [(k, v) for k, v in meta.items() if k not in ("attrs", "config")]
    config = meta.get("config", {})
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    conf = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td><code>{html.escape(json.dumps(v))}</code></td></tr>"
        for k, v in (config.items() if isinstance(config, dict) else []))
    return (f"<h2 id=\"provenance\">Provenance</h2><table>{cells}</table>"
            f"<p>Configuration of the run:</p><table class=\"config\">{conf}</table>")


def paper_html(markdown: str, folder: Path, meta: dict[str, Any] | None = None) -> str:
    """The page of a built paper whose figures' paths are relative to ``folder``.

    Raises
    ------
    FileNotFoundError
        For a figure the paper shows that is not there (a page with a broken image is not
        written).
    """
    md = _markdown()
    env: dict[str, Any] = {}
    tokens = md.parse(markdown, env)
    title, toc = "gradlab paper", []
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            text = tokens[i + 1].content
            if tok.tag == "h1":
                title = text
            elif tok.tag == "h2":
                toc.append(f"<li><a href=\"#{tok.attrs.get('id', '')}\">{html.escape(text)}</a></li>")
        for child in tok.children or []:
            if child.type == "image":
                src = str(child.attrs.get("src", ""))
                if not src.startswith(("data:", "http:", "https:")):
                    path = folder / src
                    if not path.exists():
                        raise FileNotFoundError(f"the paper shows {src}, which is not in {folder}")
                    child.attrs["src"] = _data_uri(path)
    body = md.renderer.render(tokens, md.options, env)
    nav = f"<nav><strong>Contents</strong><ol>{''.join(toc)}</ol></nav>" if toc else ""
    footer = f"<footer>{_provenance(meta)}</footer>" if meta else ""
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n"
            f"<body>{nav}<main>{body}</main>{footer}</body></html>\n")


def write_paper_html(paper_md: Path, meta: dict[str, Any] | None = None) -> Path:
    """``paper.html`` beside a built ``paper.md``; returns its path."""
    paper_md = Path(paper_md)
    out = paper_md.with_suffix(".html")
    out.write_text(paper_html(paper_md.read_text(), paper_md.parent, meta), encoding="utf-8")
    return out


_INDEX_MARK = '<meta name="generator" content="gradlab results index">'


def maybe_write_index(results: Path) -> Path | None:
    """:func:`write_index` for a folder named ``results`` (gradlab's default) or one that already
    holds gradlab's index: never a new file in an arbitrary parent of a user's ``--out``."""
    results = Path(results)
    index = results / "index.html"
    ours = index.exists() and _INDEX_MARK in index.read_text(encoding="utf-8", errors="replace")
    return write_index(results) if results.name == "results" or ours else None


def write_index(results: Path) -> Path:
    """``index.html`` of a folder of study results: each study's paper and tables."""
    results = Path(results)
    items = []
    for study in sorted(p for p in results.iterdir() if p.is_dir()):
        paper = study / "paper.html"
        tables = sorted((study / "tables").glob("*.parquet")) if (study / "tables").is_dir() else []
        if not paper.exists() and not tables:
            continue
        link = (f"<a href=\"{study.name}/paper.html\">paper</a>" if paper.exists() else "no paper yet")
        tabs = ", ".join(f"<a href=\"{study.name}/tables/{t.name}\">{html.escape(t.stem)}</a> "
                         f"(<a href=\"{study.name}/tables/{t.stem}.csv\">csv</a>)" for t in tables)
        items.append(f"<tr><th>{html.escape(study.name)}</th><td>{link}</td><td>{tabs}</td></tr>")
    page = (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{_INDEX_MARK}"
            f"<title>gradlab results</title><style>{_CSS}</style></head><body><main><h1>gradlab results</h1>"
            "<table><tr><th>study</th><th>paper</th><th>tables (parquet, csv)</th></tr>"
            f"{''.join(items)}</table></main></body></html>\n")
    out = results / "index.html"
    out.write_text(page, encoding="utf-8")
    return out
