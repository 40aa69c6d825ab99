"""dirac-dms-filecatalog-cli: an interactive shell on the File Catalog (ls, cd, pwd, mkdir, meta, find, size, replicas).

Each shell command runs the matching COMDIRAC command (``dls``, ``dcd``, ...) in this process,
so the shell and the short commands share their current directory and behaviour. Commands may
also come on standard input, one per line (``echo 'ls -l' | dirac-dms-filecatalog-cli``).
"""

from __future__ import annotations

import cmd
import os
import shlex
import sys
from collections.abc import Callable

from dirac.Core.Base.Script import EXIT_FAILED, EXIT_OK, Script
from dirac.Interfaces.scripts import dcommands

#: shell commands that are COMDIRAC commands as they are: name -> (command, what it does)
SIMPLE: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "ls": (dcommands.dls, "list a directory: ls [-l] [PATH...]"),
    "cd": (dcommands.dcd, "change directory: cd [DIR] (no DIR: home)"),
    "pwd": (dcommands.dpwd, "print the current directory"),
    "mkdir": (dcommands.dmkdir, "create directories: mkdir PATH..."),
    "find": (dcommands.dfind, "files whose metadata match: find PATH Field<op>value..."),
    "size": (dcommands.dsize, "size of files and directories: size [PATH...]"),
}


class CatalogShell(cmd.Cmd):
    """The File Catalog, a command at a time."""

    intro = "File Catalog shell: 'help' lists the commands, 'exit' or Ctrl-D leaves."

    def __init__(self, stdin=None) -> None:  # noqa: ANN001
        super().__init__(stdin=stdin)
        self.failures = 0
        self.prompt = "FC> "
        if stdin is not None:  # commands from a pipe or a file: no prompt, no banner
            self.use_rawinput = False
            self.intro = None
            self.prompt = ""

    def _run(self, command: Callable[[list[str]], int], line: str) -> None:
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            print(f"ERROR: {exc}", file=sys.stderr)
            self.failures += 1
            return
        try:
            code = command(argv)
        except SystemExit as exit_:  # argparse: usage errors and --help
            code = int(exit_.code or 0)
        self.failures += code != EXIT_OK

    def default(self, line: str) -> bool:
        print(f"ERROR: unknown command {line.split()[0]!r}: 'help' lists the commands", file=sys.stderr)
        self.failures += 1
        return False

    def emptyline(self) -> bool:
        return False

    def do_meta(self, line: str) -> None:
        """metadata: meta get [PATH] | meta set PATH Field=value..."""
        words = shlex.split(line)
        if words[:1] == ["get"]:
            self._run(dcommands.dmeta, shlex.join(words[1:2]))
        elif words[:1] == ["set"] and len(words) >= 3:
            self._run(dcommands.dmeta, shlex.join(words[1:]))
        else:
            print("usage: meta get [PATH] | meta set PATH Field=value...", file=sys.stderr)
            self.failures += 1

    def do_replicas(self, line: str) -> None:
        """replicas of files: replicas LFN..."""
        from dirac.Interfaces.scripts import dirac_dms_lfn_replicas

        paths = [dcommands.resolve(path) for path in shlex.split(line)]
        self._run(dirac_dms_lfn_replicas.main, shlex.join(paths))

    def do_exit(self, _line: str) -> bool:
        """leave the shell"""
        return True

    do_quit = do_exit
    do_EOF = do_exit  # noqa: N815 - cmd's name for end of input


def _simple(name: str, command: Callable[[list[str]], int], text: str) -> None:
    def run(self: CatalogShell, line: str) -> None:
        self._run(command, line)

    run.__doc__ = text
    setattr(CatalogShell, f"do_{name}", run)


for _name, (_command, _text) in SIMPLE.items():
    _simple(_name, _command, _text)


def main(argv: list[str] | None = None) -> int:
    script = Script(__doc__.split("\n")[0].split(": ", 1)[1])
    script.parser.add_argument("--cwd-file", default="", help="keep the current directory there instead of the "
                               "short commands' file (a shell of its own)")
    args = script.parseArgs(argv)
    if args.cwd_file:
        os.environ["DCOMMANDS_CWD_FILE"] = args.cwd_file
    interactive = sys.stdin.isatty()
    shell = CatalogShell(None if interactive else sys.stdin)
    try:
        shell.cmdloop()
    except KeyboardInterrupt:
        print()
    return EXIT_OK if shell.failures == 0 or interactive else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
