"""Which code a ``RotationLambdaARN`` names, and how to invoke it.

A name is a built-in function (``secretsd-mysql-single-user`` ...), or a function registered
in the server's configuration: a Python entry point (``package.module:function``) called in
the server process, or a command that reads the event as JSON on its standard input and
fails with a non-zero exit. Each name is accepted bare or as a Lambda ARN,
``arn:aws:lambda:<region>:<account>:function:<name>``.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secretsd.rotation.functions import FUNCTIONS as BUILT_IN
from secretsd.rotation.functions.common import current_service_environment

Handler = Callable[[dict[str, Any], Any], Any]
LAMBDA_ARN_PREFIX = "arn:aws:lambda:"
COMMAND_TIMEOUT_SECONDS = 60.0


class FunctionError(Exception):
    """A rotation function failed; the message names the cause and carries no secret."""


class ConfigError(Exception):
    """The rotation function configuration is invalid (message shown to the user)."""


def function_name(arn_or_name: str) -> str:
    if arn_or_name.startswith(LAMBDA_ARN_PREFIX):
        parts = arn_or_name.split(":")
        # arn:aws:lambda:region:account:function:name[:qualifier]
        if len(parts) >= 7 and parts[5] == "function":
            return parts[6]
    return arn_or_name


@dataclass(frozen=True)
class CommandFunction:
    argv: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=dict)

    def __call__(self, event: dict[str, Any], context: Any = None) -> None:
        service = current_service_environment()
        env = {**os.environ, **service, **self.environment}
        if "AWS_ACCESS_KEY_ID" in service:
            # The service's own key: no profile or session token of this process may mix in.
            for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
                if name not in service and name not in self.environment:
                    env.pop(name, None)
        try:
            done = subprocess.run(
                self.argv,
                input=json.dumps(event).encode(),
                capture_output=True,
                env=env,
                timeout=COMMAND_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FunctionError(f"command {self.argv[0]} could not run: {exc}") from None
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-5:]
            raise FunctionError(
                f"command {self.argv[0]} exited with {done.returncode}: " + " | ".join(tail)
            )


class FunctionRegistry:
    """Built-in functions plus those of the configuration, looked up by name or ARN."""

    def __init__(
        self,
        configured: Mapping[str, Handler] | None = None,
        secret_fields: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self._configured = dict(configured or {})
        self._loaded: dict[str, Handler] = {}
        # Fields of the secret each function declares secret, beyond those named like one.
        self._secret_fields = dict(secret_fields or {})

    def secret_fields(self, arn_or_name: str | None) -> frozenset[str]:
        """The fields (lower case) that the function declares secret, to mask in history."""
        if arn_or_name is None:
            return frozenset()
        return self._secret_fields.get(function_name(arn_or_name), frozenset())

    @property
    def has_entry_points(self) -> bool:
        """Whether a configured function runs in this process as user code (not a command)."""
        return any(not isinstance(h, CommandFunction) for h in self._configured.values())

    def knows(self, arn_or_name: str) -> bool:
        name = function_name(arn_or_name)
        return name in self._configured or name in BUILT_IN

    def resolve(self, arn_or_name: str) -> Handler:
        name = function_name(arn_or_name)
        if name in self._configured:
            return self._configured[name]
        if name not in BUILT_IN:
            raise FunctionError(f"no rotation function is named {name!r}")
        handler = self._loaded.get(name)
        if handler is None:
            module = importlib.import_module(f"secretsd.rotation.functions.{BUILT_IN[name]}")
            handler = self._loaded[name] = module.lambda_handler
        return handler

    @classmethod
    def from_config(cls, path: Path | None) -> FunctionRegistry:
        """Read ``[functions.<name>]`` tables: ``entry_point = "mod:func"`` or ``command = [...]``.

        An optional ``environment`` table is passed to commands; an optional ``secret_fields``
        list names the secret's fields that history must mask beyond those named like a
        credential.
        """
        if path is None:
            return cls()
        try:
            data = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        unknown = set(data) - {"functions"}
        if unknown:
            raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
        configured: dict[str, Handler] = {}
        secret_fields: dict[str, frozenset[str]] = {}
        for name, spec in data.get("functions", {}).items():
            configured[name] = _configured_function(path, name, spec)
            secret_fields[name] = _secret_fields(path, name, spec)
        return cls(configured, secret_fields)


def _secret_fields(path: Path, name: str, spec: dict[str, Any]) -> frozenset[str]:
    fields = spec.get("secret_fields", [])
    if not isinstance(fields, list) or not all(isinstance(f, str) and f for f in fields):
        raise ConfigError(f"{path}: functions.{name}: secret_fields must be a list of field names")
    return frozenset(f.lower() for f in fields)


def _configured_function(path: Path, name: str, spec: Any) -> Handler:
    where = f"{path}: functions.{name}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(spec) - {"entry_point", "command", "environment", "secret_fields"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    if ("entry_point" in spec) == ("command" in spec):
        raise ConfigError(f"{where} needs exactly one of entry_point or command")
    if "entry_point" in spec:
        target = spec["entry_point"]
        module_name, _, attribute = str(target).partition(":")
        if not module_name or not attribute:
            raise ConfigError(f"{where}: entry_point must look like package.module:function")
        try:
            handler = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"{where}: cannot load {target}: {exc}") from None
        if not callable(handler):
            raise ConfigError(f"{where}: {target} is not callable")
        return handler
    argv = spec["command"]
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ConfigError(f"{where}: command must be a non-empty list of strings")
    environment = spec.get("environment", {})
    if not isinstance(environment, dict) or not all(
        isinstance(v, str) for v in environment.values()
    ):
        raise ConfigError(f"{where}: environment must be a table of strings")
    return CommandFunction(tuple(argv), environment)
