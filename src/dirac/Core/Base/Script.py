"""The one base of every ``dirac-*`` command.

Each command builds a ``Script``, adds its own arguments to ``script.parser`` and calls
``script.parseArgs()``, which also handles the switches every command shares:

* ``-o /Path=value``  override a configuration option (repeatable)
* ``--cfg FILE``      load an extra local configuration file (repeatable)
* ``-d``              debug logging (``-dd`` for more)
* ``--json``          machine-readable output, where the command prints data

Exit codes: 0 success, 1 the operation failed, 2 bad usage, 3 authentication or
authorization failure, 4 not found, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from dirac.Core.Config import gConfig
from dirac.Core.Utilities import JEncode
from dirac.Core.Utilities.Logging import setupLogging

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_INTERRUPTED = 130


def _override(text: str) -> tuple[str, str]:
    path, sep, value = text.partition("=")
    if not sep or not path.startswith("/"):
        raise argparse.ArgumentTypeError(f"expected /Path/To/Option=value, got {text!r}")
    return path, value


class Script:
    """Argument parsing, configuration loading, logging and output for a command."""

    def __init__(self, description: str, jsonOutput: bool = False, epilog: str | None = None,
                 fetchRemote: bool = True):
        self.parser = argparse.ArgumentParser(description=description, epilog=epilog,
                                              formatter_class=argparse.RawDescriptionHelpFormatter)
        common = self.parser.add_argument_group("common options")
        common.add_argument("-o", "--option", dest="overrides", action="append", type=_override, default=[],
                            metavar="/Path=value", help="override a configuration option (repeatable)")
        common.add_argument("--cfg", dest="cfgFiles", action="append", default=[], metavar="FILE",
                            help="load this local configuration file (repeatable)")
        common.add_argument("-d", "--debug", action="count", default=0, help="debug logging")
        if jsonOutput:
            common.add_argument("--json", action="store_true", help="print the result as JSON")
        self.fetchRemote = fetchRemote
        self.args: argparse.Namespace | None = None

    def parseArgs(self, argv: list[str] | None = None) -> argparse.Namespace:
        """Parse the command line, then set up logging and the configuration."""
        args = self.parser.parse_args(argv)
        setupLogging("DEBUG" if args.debug else "WARNING")
        gConfig.initialize(cfgFiles=args.cfgFiles, options=dict(args.overrides), fetchRemote=self.fetchRemote)
        if args.debug:
            setupLogging("DEBUG")
        self.args = args
        return args

    @property
    def wantsJSON(self) -> bool:
        return bool(self.args is not None and getattr(self.args, "json", False))

    def output(self, data: Any, text: str | Callable[[Any], str] | None = None) -> None:
        """Print ``data`` as JSON with --json, else ``text`` (a string or a formatter of data)."""
        if self.wantsJSON:
            print(json.dumps(json.loads(JEncode.encode(data)), indent=2, sort_keys=True))
        elif callable(text):
            print(text(data))
        elif text is not None:
            print(text)
        else:
            print(data)

    def fail(self, message: str, code: int = EXIT_FAILED) -> int:
        """Report an error on stderr (or as JSON) and return the exit code to use."""
        if self.wantsJSON:
            print(json.dumps({"OK": False, "Message": message}))
        else:
            print(f"ERROR: {message}", file=sys.stderr)
        return code

    def run(self, body: Callable[[argparse.Namespace], int | None], argv: list[str] | None = None) -> int:
        """Parse arguments and run ``body(args)``; turns Ctrl-C into exit code 130."""
        args = self.parseArgs(argv)
        try:
            return int(body(args) or EXIT_OK)
        except KeyboardInterrupt:
            return self.fail("interrupted", EXIT_INTERRUPTED)


def exitCodeFor(result: dict) -> int:
    """The exit code for an S_ERROR, from its errno (authorization, not found, other)."""
    import errno

    from DIRACCommon.Core.Utilities import DErrno

    code = result.get("Errno", 0)
    if code in (errno.EACCES, errno.EPERM, DErrno.ENOAUTH):
        return EXIT_AUTH
    if code == errno.ENOENT:
        return EXIT_NOT_FOUND
    return EXIT_FAILED
