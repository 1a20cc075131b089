"""A small OpenAI-compatible HTTP server in front of any generation backend.

`python -m axolotl_mistake.serve --model embedded --port 8000` serves /v1/models,
/v1/completions and /v1/chat/completions so a judge, the builder or any OpenAI client can talk
to the embedded model or a trained adapter. Parts: `schemas` (what a request may hold, bounded),
`batcher` (concurrent requests share one backend call), `app` (the HTTP API), `cli`. It never
logs request bodies or API keys, never runs a prompt that cannot fit the model, and binds
127.0.0.1 by default.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MicroBatcher", "OpenAIServer", "ServerConfig", "main"]


def __getattr__(name: str) -> Any:
    """Lazy exports: `python -m axolotl_mistake.serve --help` need not import the web stack."""
    if name == "OpenAIServer":
        from axolotl_mistake.serve.app import OpenAIServer

        return OpenAIServer
    if name == "MicroBatcher":
        from axolotl_mistake.serve.batcher import MicroBatcher

        return MicroBatcher
    if name == "ServerConfig":
        from axolotl_mistake.serve.schemas import ServerConfig

        return ServerConfig
    if name == "main":
        from axolotl_mistake.serve.cli import main

        return main
    raise AttributeError(f"module 'axolotl_mistake.serve' has no attribute {name!r}")
