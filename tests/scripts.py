"""Loading the project's standalone scripts (under .ci/ and benchmarks/, not packages) as
modules, so tests call their functions directly. Never runs a script's `main`."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def load_script(name: str, path: Path) -> ModuleType:
    """Import the file at `path` as a module called `name` (not added to sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
