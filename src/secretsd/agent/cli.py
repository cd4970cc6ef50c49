"""``secretsd agent [--config FILE]``: the AWS agent's command line, unchanged."""

from __future__ import annotations

import os
import sys

from . import config as configuration
from . import messages


def _fail(message: str, usage: bool = False) -> int:
    if message:
        print(message, file=sys.stderr)
    if usage:
        print(messages.USAGE, file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    path: str | None = None
    args = iter(argv)
    for arg in args:
        if arg in ("-c", "--config"):
            path = next(args, None)
            if path is None:
                return _fail(messages.ARGUMENT_EXPECTED, usage=True)
        elif arg in ("-h", "--help"):
            print(messages.USAGE)
            return 0
        else:
            return _fail(messages.unknown_option(arg), usage=True)
    env = dict(os.environ)
    # Started by Lambda as an extension: its variables configure the agent, and it takes
    # part in the Extensions API lifecycle.
    as_extension = path is None and "AWS_LAMBDA_RUNTIME_API" in env
    try:
        if as_extension:
            settings = configuration.from_lambda_environment(env)
        else:
            settings = configuration.load(path, env)
    except configuration.ConfigError as exc:
        return _fail(str(exc))

    from .run import StartupError, run

    extension = None
    if as_extension:
        from .lambda_extension import Lifecycle

        extension = Lifecycle.from_environment(env, sys.argv[0])
    try:
        return run(settings, env, extension)
    except StartupError as exc:
        return _fail(str(exc))
