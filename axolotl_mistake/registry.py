"""Resolving the project's registries: a kind -> "module:attribute" table, read on first use.

Sources, backends, judges and the builder's stages each keep one such table next to the code
that uses it, so adding one is a new module plus one line. This module only resolves and checks
entries; it never holds a registry of its own and imports nothing until asked.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def resolve(target: str) -> Any:
    """The attribute a "package.module:Name" entry points at (importing the module)."""
    module, sep, name = target.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"registry entry {target!r} is not 'package.module:Name'")
    return getattr(importlib.import_module(module), name)


def registered_classes(registry: Mapping[str, str], base: type[T]) -> dict[str, type[T]]:
    """kind -> class for every entry, each checked to subclass `base` and to declare, as the
    default of its `kind` field, the kind it is registered under (so a copied file that forgot
    to rename its kind fails at once, not as a silently shadowed union member)."""
    out: dict[str, type[T]] = {}
    for kind, target in registry.items():
        cls = resolve(target)
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise TypeError(f"{target} is not a {base.__name__} subclass")
        declared = cls.model_fields["kind"].default  # type: ignore[attr-defined]
        if declared != kind:
            raise TypeError(f"{target} declares kind {declared!r}, registered as {kind!r}")
        out[kind] = cls
    return out
