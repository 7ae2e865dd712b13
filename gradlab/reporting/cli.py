"""Command line: run studies, list them, build their papers, and a quick demo.

    gradlab study NAME [--out DIR] [--quick] [--no-paper] [--workers N | --scheduler ADDRESS]
    gradlab studies
    gradlab paper build NAME [--results DIR]
    gradlab demo

A usage error (a bad argument, an unknown study, a missing template, an output folder that cannot be
written) is one line on stderr and exit code 2, found before anything is computed; so is a sweep folder
that another run holds, found as the sweep starts. Any other error is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import ast
import importlib.resources
import importlib.util
import inspect
import os
import re
import socket
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pandas as pd

from gradlab.analysis.engine import fd_errors
from gradlab.analysis.summary import summarize
from gradlab.arithmetic import formats
from gradlab.objectives import seed_net
from gradlab.reporting.html import maybe_write_index
from gradlab.reporting.paper import PaperError, build
from gradlab.reporting.tables import read_table
from gradlab.sweeps.runner import SweepLockedError

DEMO_STEPS = (1e-10, 1e-7, 1e-5, 1e-3, 1e-1)
# a dask scheduler address: [protocol://]host:port, the host a name, an IPv4 or a bracketed IPv6 address
_ADDRESS = re.compile(r"^(?:(?P<protocol>[a-z]+)://)?(?P<host>\[[0-9a-fA-F:.]+\]|[^:/\[\]\s]+):(?P<port>\d+)$")
_TCP_PROTOCOLS = ("tcp", "tls", "ws", "wss")  # the protocols whose scheduler can be probed by a TCP connect


class CLIError(Exception):
    """A usage error: reported as one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (argparse prints the usage first); it still exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"gradlab: error: {message} (see `{self.prog} --help`)\n")


def _installed(package: str) -> Path:
    """The folder of an installed package of gradlab's: the repository's own folder in a source
    checkout or an editable install, the copy in site-packages from a wheel."""
    return Path(str(importlib.resources.files(package)))


def studies_dir() -> Path:
    """Where study scripts live: $GRADLAB_STUDIES, else the installed gradlab.studies (the
    repository's studies/)."""
    return Path(os.environ.get("GRADLAB_STUDIES", _installed("gradlab.studies")))


def papers_dir() -> Path:
    """Where paper templates live: $GRADLAB_PAPERS, else the installed gradlab.papers (the
    repository's papers/)."""
    return Path(os.environ.get("GRADLAB_PAPERS", _installed("gradlab.papers")))


def _studies() -> dict[str, str]:
    """Study name -> its one-line DESCRIPTION, read without importing the scripts."""
    out = {}
    for p in sorted(studies_dir().glob("*.py")):
        if p.name.startswith("_"):
            continue
        desc = ""
        for node in ast.parse(p.read_text()).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "DESCRIPTION" for t in node.targets
            ) and isinstance(node.value, ast.Constant):
                desc = str(node.value.value)
        out[p.stem] = desc
    return out


def load_study(name: str) -> ModuleType:
    """The module of ``studies/NAME.py``, freshly loaded (its ``run``, grid and helpers)."""
    known = _studies()
    if name not in known:
        raise ValueError(f"unknown study {name!r}; available: {', '.join(known) or 'none'} "
                         f"(in {studies_dir()})")
    spec = importlib.util.spec_from_file_location(f"gradlab_study_{name}", studies_dir() / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _positive_int(text: str) -> int:
    """An argparse type: a positive int."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return n


def _check_scheduler(address: str) -> None:
    """Refuse a malformed scheduler address, or a TCP one where nothing listens (5 s to connect)."""
    m = _ADDRESS.match(address)
    if m is None:
        raise CLIError(f"--scheduler {address!r} is not a scheduler address like tcp://HOST:PORT")
    if (m["protocol"] or "tcp") in _TCP_PROTOCOLS:
        try:
            socket.create_connection((m["host"].strip("[]"), int(m["port"])), timeout=5).close()
        except OSError as e:
            raise CLIError(f"--scheduler {address}: nothing listens there ({e.strerror or e})") from None


def _check_out(out: Path, option: str, paper: bool) -> None:
    """Create the output folder ``out`` if need be and check that files can be written in it, so that
    a study fails before it computes, not when it writes its first table."""
    if out.exists() and not out.is_dir():
        raise CLIError(f"{option} {out} is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as e:
        raise CLIError(f"{option} {out} is not a writable directory ({e.strerror or e})") from None
    written = {out / "tables": "folder", out / "figures": "folder"}  # what every study writes
    if paper:
        written[out / "paper.md"] = "file"
    for path, kind in written.items():
        if path.exists() and path.is_dir() != (kind == "folder"):
            raise CLIError(f"{option} {out}: {path} is in the way of the {kind} the study writes there")


def _build_paper(name: str, results: Path) -> Path:
    template = papers_dir() / name / "paper.md"
    if not template.exists():
        raise CLIError(f"no paper template {template}")
    numbers = results / "tables" / "numbers.parquet"
    if not numbers.exists():
        raise CLIError(f"no numbers table at {numbers}: run `gradlab study {name}` first")
    try:
        table = read_table(numbers)
    except ValueError as e:  # a damaged table
        raise CLIError(str(e)) from None
    try:
        paper = build(template, table, results / "paper.md")
        maybe_write_index(results.resolve().parent)  # every study's paper and tables, side by side
    except FileNotFoundError as e:  # a figure the paper shows is missing
        raise CLIError(f"cannot write {results / 'paper.html'}: {e}") from None
    except OSError as e:
        raise CLIError(f"cannot write {results / 'paper.md'} ({e.strerror or e})") from None
    return paper


def _load_checked(args: argparse.Namespace) -> ModuleType:
    """The study's module, once its name and its options for sweeps are checked."""
    known = _studies()
    if args.name not in known:
        raise CLIError(f"unknown study {args.name!r}; available: {', '.join(known) or 'none'} "
                       f"(in {studies_dir()})")
    if args.workers is not None and args.scheduler is not None:
        raise CLIError("give --workers (local processes) or --scheduler (dask), not both")
    module = load_study(args.name)
    accepts = inspect.signature(module.run).parameters
    if any(getattr(args, k) is not None and k not in accepts for k in ("workers", "scheduler")):
        raise CLIError(f"study {args.name!r} runs in one process: it takes no --workers or --scheduler")
    if args.scheduler is not None:
        _check_scheduler(args.scheduler)
    return module


def _cmd_study(args: argparse.Namespace) -> int:
    module = _load_checked(args)
    out = Path(args.out) if args.out else Path("results") / args.name
    paper = not args.no_paper and (papers_dir() / args.name / "paper.md").exists()
    _check_out(out, "--out", paper)
    extra = {k: getattr(args, k) for k in ("workers", "scheduler") if getattr(args, k) is not None}
    info = module.run(out, quick=args.quick, progress=not args.quiet, **extra)
    print(f"study {args.name}: {len(info['tables'])} tables and {len(info['figures'])} figure "
          f"files in {out} ({info['seconds']:.0f} s)")
    if paper:
        print(f"paper: {_build_paper(args.name, out)}")
    return 0


def _cmd_studies(args: argparse.Namespace) -> int:
    for name, desc in _studies().items():
        print(f"{name:12s} {desc}")
    return 0


def _cmd_paper(args: argparse.Namespace) -> int:
    results = Path(args.results) if args.results else Path("results") / args.name
    print(f"paper: {_build_paper(args.name, results)}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """The exercise's network: FD error and its three parts, per format and step."""
    for name in args.formats:
        try:
            formats.get(name)
        except ValueError as e:
            raise CLIError(f"--formats: {e}") from None
    t0 = time.perf_counter()
    obj = seed_net(stable=args.stable)
    df = fd_errors(obj, formats=args.formats, schemes=["central"], steps=list(DEMO_STEPS),
                   progress=not args.quiet)
    sm = summarize(df)
    cols = ["format", "h", "rel_sum", "err_norm", "trunc_norm", "step_norm", "round_norm",
            "n_flagged"]
    with pd.option_context("display.width", 160, "display.float_format", "{:.3g}".format):
        print(f"{obj.name}: central differences, E = ||g_fd - g|| / (||g_fd|| + ||g||)")
        print(sm[cols].to_string(index=False))
        print("noise level of J per format:",
              {k: f"{v:.3g}" for k, v in df.attrs["noise"].items()})
    print(f"({time.perf_counter() - t0:.1f} s; every number against an mpmath reference)")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gradlab", description="gradlab: finite-difference gradients, measured exactly.")
    sub = parser.add_subparsers(dest="command", required=True)
    study = sub.add_parser("study", help="run a study: tables, figures and its paper")
    study.add_argument("name")
    study.add_argument("--out", help="output folder (default results/NAME)")
    study.add_argument("--quick", action="store_true", help="a coarse grid, for a first look")
    study.add_argument("--no-paper", action="store_true", help="do not build the paper")
    study.add_argument("--quiet", action="store_true", help="no progress bars")
    study.add_argument("--workers", type=_positive_int,
                       help="local processes for a sweep study (default: all cores)")
    study.add_argument("--scheduler", help="dask.distributed scheduler address for a sweep study")
    study.set_defaults(run=_cmd_study)
    sub.add_parser("studies", help="list the studies").set_defaults(run=_cmd_studies)
    paper = sub.add_parser("paper", help="papers built from generated results")
    paper_sub = paper.add_subparsers(dest="paper_command", required=True)
    pbuild = paper_sub.add_parser("build", help="fill a paper's numbers from a study's tables")
    pbuild.add_argument("name")
    pbuild.add_argument("--results", help="the study's output folder (default results/NAME)")
    pbuild.set_defaults(run=_cmd_paper)
    demo = sub.add_parser("demo", help="decompose the seed network's FD error in a few formats")
    demo.add_argument("--formats", nargs="+", default=["float64", "float32", "float16"])
    demo.add_argument("--stable", action="store_true", help="use the stable-loss twin")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(run=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gradlab`` console script: 0 on success, 2 on a usage error (a bad
    command line exits through SystemExit(2), as argparse does)."""
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (CLIError, PaperError, SweepLockedError) as exc:
        print(f"gradlab: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
