"""Field factories for the shapes config keys keep taking: a count with a floor and a share in
(0, 1]. One place states each constraint, so a new key says only its default and its meaning.

Only builds pydantic `Field`s (every one with a description, which `--help` and the docs
print); never validates anything itself.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field


def count(default: int | None, description: str, *, minimum: int = 1) -> Any:
    """A whole number of things that must be at least `minimum` (sizes, limits, retries,
    n-gram lengths); None, where the type allows it, means no limit."""
    return Field(default, ge=minimum, description=description)


def share(default: float, description: str) -> Any:
    """A fraction in (0, 1] (thresholds and overlaps)."""
    return Field(default, gt=0, le=1, description=description)


MAX_SEED = 2**32 - 1
"""Seeds reach numpy (Hugging Face's set_seed), which takes 0 .. 2**32 - 1."""


def seed(default: int, description: str) -> Any:
    """A random seed: a whole number numpy, torch and Python's random all accept."""
    return Field(default, ge=0, le=MAX_SEED, description=description)
