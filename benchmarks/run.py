"""Run the benchmarks: ``python -m benchmarks.run [--only rpc,submission] [--backend sqlite|mysql|both] [--quick]``.

``dirac`` (DIRAC's own code on the same work) and ``matcher-scaling`` (``--sizes``) run on MariaDB
only and are not in the default set: name them with ``--only``.

Prints a table (measured next to target) and writes every figure as JSON (``--json FILE``,
default benchmarks/results.json). Results and how to read them: docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import bench_dirac, bench_filecatalog, bench_matcher, bench_rpc, bench_submit, bench_throughput
from benchmarks.common import Figure, runningGrid, serverRSS

#: in the order they run: throughput before the benchmarks that leave waiting jobs in the shared grid
BENCHMARKS = {"rpc": bench_rpc.run, "throughput": bench_throughput.run, "submission": bench_submit.run,
              "matcher": bench_matcher.run, "filecatalog": bench_filecatalog.run,
              "dirac": bench_dirac.run, "matcher-scaling": bench_matcher.runScaling}
#: long, MariaDB only: run when named in --only
ON_REQUEST = ("dirac", "matcher-scaling")


def table(figures: list[Figure]) -> str:
    rows = [("benchmark", "backend", "figure", "measured", "target", "")]
    for fig in figures:
        target = "" if fig.target is None else f"{'≥' if fig.better == 'higher' else '≤'} {fig.target:g}"
        verdict = {True: "ok", False: "MISSED", None: ""}[fig.met]
        rows.append((fig.benchmark, fig.backend, fig.name, f"{fig.value:,.1f} {fig.unit}", target,
                     verdict + (f"  ({fig.note})" if fig.note else "")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(name for name in BENCHMARKS if name not in ON_REQUEST),
                        help=f"comma-separated, of {', '.join(BENCHMARKS)} (default: all but {', '.join(ON_REQUEST)})")
    parser.add_argument("--backend", choices=("sqlite", "mysql", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and shorter runs (a smoke test)")
    parser.add_argument("--sizes", help="matcher-scaling: numbers of waiting jobs, e.g. 1k,10k,100k,1M "
                        "(default 1k,10k,100k; --quick 1k,10k)")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results.json"), help="where to write figures")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    chosen.sort(key=list(BENCHMARKS).index)
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    try:
        sizes = bench_matcher.parseSizes(args.sizes) if args.sizes else None
    except ValueError as exc:
        parser.error(str(exc))
    backends = ["sqlite", "mysql"] if args.backend == "both" else [args.backend]
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="dirac-bench-") as work:
        for backend in backends:
            with runningGrid(Path(work), backend) as grid:
                for name in chosen:
                    print(f">>> {name} on {backend} ...", file=sys.stderr, flush=True)
                    began = time.monotonic()
                    options = {"sizes": sizes} if name == "matcher-scaling" else {}
                    figures += BENCHMARKS[name](grid, quick=args.quick, **options)
                    print(f"    done in {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
                figures.append(Figure("memory", "server RSS after the benchmarks", serverRSS(grid), "MiB",
                                      better="lower", backend=backend))
    print(table(figures))
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": {"cpus": __import__("os").cpu_count(),
              "python": platform.python_version(), "platform": platform.platform()}, "quick": args.quick,
              "figures": [fig.asDict() for fig in figures]}
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(f"figures written to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
