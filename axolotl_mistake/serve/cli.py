"""`python -m axolotl_mistake.serve`: flags from the backend config classes and `ServerConfig`.

Every key of a backend block (`--kind`, `--model`, `--adapter`, `--max-context`, ...) and every
server setting is a flag, documented from the same field descriptions as the YAML keys; bad
values exit 2 with a message naming the flag. It never prints or logs the API key.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import typing
from collections.abc import Collection, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from axolotl_mistake.generation.config import (
    BACKENDS,
    BackendConfig,
    backend_fields,
    parse_backend_config,
)
from axolotl_mistake.serve.schemas import ServerConfig

_BACKEND, _SERVER = "backend__", "server__"


def _flag(name: str, taken: Collection[str] = ()) -> str:
    """`--max-context`; a backend key that is also a server setting gets `--backend-` first."""
    stem = name.replace("_", "-")
    return f"--backend-{stem}" if name in taken else f"--{stem}"


class _Once(argparse.Action):
    """Store a flag's value, refusing the flag a second time (the last one would silently win)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if hasattr(namespace, self.dest):
            parser.error(f"{option_string} given twice: give each flag once")
        setattr(namespace, self.dest, values)


def _add(group: Any, flag: str, dest: str, info: FieldInfo) -> None:
    choices = None
    if typing.get_origin(info.annotation) is typing.Literal:
        choices = [str(c) for c in typing.get_args(info.annotation)]
    if dest == _BACKEND + "kind":
        choices = list(BACKENDS)
    default = "" if info.default is None else f" (default: {info.default})"
    group.add_argument(
        flag,
        dest=dest,
        action=_Once,
        default=argparse.SUPPRESS,
        choices=choices,
        metavar=None if choices else dest.split("__", 1)[1].upper(),
        help=(info.description or "").replace("%", "%%") + default,
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m axolotl_mistake.serve",
        description="Serve a model (default: the embedded SmolLM2-135M-Instruct) over an "
        "OpenAI-compatible HTTP API: /v1/models, /v1/completions, /v1/chat/completions.",
    )
    model = p.add_argument_group(
        "model", "the keys of a backend block (as in a build or eval config's `model:`)"
    )
    server_keys = set(ServerConfig.model_fields)
    for name, info in backend_fields().items():
        _add(model, _flag(name, server_keys), _BACKEND + name, info)
    server = p.add_argument_group("server")
    for name, info in ServerConfig.model_fields.items():
        _add(server, _flag(name), _SERVER + name, info)
    p.add_argument("--verbose", action="store_true", help="log every HTTP request")
    return p


def _problem(exc: ValidationError, prefix: str, data: dict) -> str:
    """The first validation problem, naming the flag."""
    err = exc.errors(include_url=False)[0]
    message = err["msg"].removeprefix("Value error, ")
    if not err["loc"] and prefix == _SERVER:
        return message  # a check across several flags: its message names them all
    field = str(err["loc"][0]) if err["loc"] else "kind"
    taken = set(ServerConfig.model_fields) if prefix == _BACKEND else set()
    flag = _flag(field, taken)
    if err["type"] == "extra_forbidden":
        return f"{flag} is not an option of backend kind {data.get('kind', 'transformers')!r}"
    return f"{flag}: {message}"


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    verbose = args.pop("verbose")
    picked = {
        p: {k[len(p) :]: v for k, v in args.items() if k.startswith(p)} for p in (_BACKEND, _SERVER)
    }
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    try:
        settings = ServerConfig.model_validate(picked[_SERVER])
    except ValidationError as exc:
        print(f"error: {_problem(exc, _SERVER, picked[_SERVER])}", file=sys.stderr)
        return 2
    api_key = None
    if settings.api_key_env:
        api_key = os.environ.get(settings.api_key_env)
        if not api_key:
            print(
                f"error: --api-key-env {settings.api_key_env}: that environment variable is empty",
                file=sys.stderr,
            )
            return 2
    try:
        cfg: BackendConfig = parse_backend_config(picked[_BACKEND])
    except ValidationError as exc:
        print(f"error: {_problem(exc, _BACKEND, picked[_BACKEND])}", file=sys.stderr)
        return 2
    try:
        backend = cfg.load()
    except (OSError, ValueError, ImportError) as exc:
        print(f"error: cannot load model {cfg.model!r}: {exc}", file=sys.stderr)
        return 2

    from axolotl_mistake.serve.app import OpenAIServer  # the web stack, once a model is loaded

    try:
        server = OpenAIServer(backend, settings, api_key=api_key)
    except OSError as exc:
        print(f"error: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 2
    # uvicorn stops gracefully on SIGTERM, then re-raises it: a no-op handler keeps exit code 0
    signal.signal(signal.SIGTERM, lambda *_: None)
    print(f"serving {server.served_model_name} at {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
