"""The one command: ``secretsd <subcommand> ...``.

Each subcommand lives with the part it runs and is imported only when used, so that
``secretsd agent`` never loads the server's modules and start-up stays quick.
"""

from __future__ import annotations

import importlib
import sys

from secretsd import __version__

SUBCOMMANDS = {
    "server": ("secretsd.server", "Run the Secrets Manager API server."),
    "agent": ("secretsd.agent.cli", "Run the caching agent (drop-in AWS Secrets Manager Agent)."),
    "up": ("secretsd.up", "Run a server and an agent in front of it (the quick start)."),
    "status": ("secretsd.status", "Check server, agent and rotations (exit 0 OK, 1 warn, 2 crit)."),
    "rotation": ("secretsd.rotation.cli", "Inspect rotations: history of attempts."),
    "keys": ("secretsd.keys_cli", "Rotate the master key that seals stored values."),
    "audit": ("secretsd.audit_cli", "Verify the audit chain; tail the audit log, filtered."),
}


def usage() -> str:
    lines = ["usage: secretsd <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in SUBCOMMANDS.items()]
    lines.append("")
    lines.append("Run `secretsd <command> --help` for the options of a command,")
    lines.append("`secretsd --version` for the version.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        # A command was expected: say which, and fail, so a script notices.
        print(usage(), file=sys.stderr)
        return 2
    if args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args[0] in ("-V", "--version", "version"):
        print(f"secretsd {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"secretsd: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
