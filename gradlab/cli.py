"""Command line: ``gradlab demo`` (the studies arrive with the seed study issue)."""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from gradlab.engine import fd_errors
from gradlab.objectives import seed_net
from gradlab.summary import summarize

DEMO_STEPS = (1e-10, 1e-7, 1e-5, 1e-3, 1e-1)


def _demo(args: argparse.Namespace) -> int:
    """The exercise's network: FD error and its three parts, per format and step."""
    t0 = time.perf_counter()
    obj = seed_net(stable=args.stable)
    df = fd_errors(obj, formats=args.formats, schemes=["central"], steps=list(DEMO_STEPS),
                   progress=not args.quiet)
    sm = summarize(df)
    cols = ["format", "h", "rel_course", "err_norm", "trunc_norm", "step_norm", "round_norm",
            "n_flagged"]
    with pd.option_context("display.width", 160, "display.float_format", "{:.3g}".format):
        print(f"{obj.name}: central differences, E = ||g_fd - g|| / (||g_fd|| + ||g||)")
        print(sm[cols].to_string(index=False))
        print("noise level of J per format:",
              {k: f"{v:.3g}" for k, v in df.attrs["noise"].items()})
    print(f"({time.perf_counter() - t0:.1f} s; every number against an mpmath reference)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gradlab`` console script."""
    parser = argparse.ArgumentParser(prog="gradlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="decompose the seed network's FD error in a few formats")
    demo.add_argument("--formats", nargs="+", default=["float64", "float32", "float16"])
    demo.add_argument("--stable", action="store_true", help="use the stable-loss twin")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except ValueError as exc:
        print(f"gradlab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
