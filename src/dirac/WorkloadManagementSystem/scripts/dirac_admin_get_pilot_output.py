"""dirac-admin-get-pilot-output: the stdout and stderr of ended pilots, written to pilot_<id>/std.out and std.err."""

from __future__ import annotations

import sys
from pathlib import Path

from dirac.Core.Base.Script import EXIT_FAILED, EXIT_OK, Script
from dirac.WorkloadManagementSystem.Client.PilotManagerClient import PilotManagerClient, pilotExitCode


def outputDirectory(base: Path, reference: str) -> Path:
    """``<base>/pilot_<last part of the reference>``, as DIRAC names it."""
    return base / f"pilot_{reference.rstrip('/').split('/')[-1] or 'reference'}"


def main(argv: list[str] | None = None) -> int:
    script = Script("Retrieve the standard output and error of pilots: into pilot_<id>/std.out and std.err, "
                    "or printed with --print or --json.", jsonOutput=True,
                    epilog="Example: dirac-admin-get-pilot-output local://ce.example.org/5f0c1e2d3a4b5c6d")
    script.parser.add_argument("references", nargs="+", metavar="reference", help="pilot reference(s)")
    script.parser.add_argument("--dir", default=".", type=Path, help="where to create pilot_<id>/ (default: here)")
    script.parser.add_argument("--print", dest="printOutput", action="store_true",
                               help="print the output instead of writing files")
    args = script.parseArgs(argv)
    client = PilotManagerClient()
    exitCode, outputs = EXIT_OK, {}
    for reference in args.references:
        result = client.getPilotOutput(reference)
        if not result["OK"]:
            print(f"ERROR {reference}: {result['Message']}", file=sys.stderr)
            exitCode = exitCode or pilotExitCode(result)
            continue
        stdout, stderr = result["Value"].get("StdOut", ""), result["Value"].get("StdErr", "")
        outputs[reference] = {"StdOut": stdout, "StdErr": stderr}
        if script.wantsJSON:
            continue
        if args.printOutput:
            print(f"== {reference}: standard output ==\n{stdout.rstrip()}\n"
                  f"== {reference}: standard error ==\n{stderr.rstrip()}")
            continue
        directory = outputDirectory(args.dir, reference)
        if directory.exists():
            print(f"ERROR {reference}: {directory} exists: remove it and retry", file=sys.stderr)
            exitCode = exitCode or EXIT_FAILED
            continue
        directory.mkdir(parents=True)
        (directory / "std.out").write_text(stdout)
        (directory / "std.err").write_text(stderr)
        print(f"{reference}: output in {directory}")
    if script.wantsJSON:
        script.output(outputs)
    return exitCode


if __name__ == "__main__":
    sys.exit(main())
