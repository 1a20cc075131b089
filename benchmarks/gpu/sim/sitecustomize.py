"""Make this Python see only the packages the GPU image has plus the wheels we carry.

Loaded at start-up when this folder is on PYTHONPATH (`sitecustomize`), in every subprocess
too. `GPU_IMAGE_SIM_ALLOW` names files listing allowed distributions, one per line (`#`
comments; `os.pathsep`-separated). A top-level module every installed distribution of which is
outside the list is hidden: `import` raises ModuleNotFoundError, `importlib.util.find_spec`
returns None and `importlib.metadata` does not list the distribution — what the GPU machine would
do. Modules of no distribution (the standard library, the working tree) stay visible.

Used by `benchmarks/gpu/prepare.sh --simulate` to check on CPU that the carried wheel list
covers what Axolotl imports; it simulates the package *set*, not the image's versions.
"""

from __future__ import annotations

import importlib.metadata as _md
import os
import re
import sys


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _allowed() -> set[str]:
    names: set[str] = set()
    for file in filter(None, os.environ.get("GPU_IMAGE_SIM_ALLOW", "").split(os.pathsep)):
        with open(file, encoding="utf-8") as fh:
            for line in fh:
                line = line.split("#", 1)[0].strip()
                if line:
                    names.add(_canon(re.split(r"[=<>! ;\[]", line, maxsplit=1)[0]))
    return names


def owners_map() -> tuple[dict[str, set[str]], set[str]]:
    """{module prefix (one or two levels): distributions owning files under it}, all dists."""
    # two levels deep: namespace packages such as `opentelemetry` are split between
    # distributions at the second level
    owners: dict[str, set[str]] = {}
    names: set[str] = set()
    for dist in _md.distributions():
        name = _canon(dist.metadata["Name"] or "")
        if not name:
            continue
        names.add(name)
        for file in dist.files or ():
            parts = file.parts
            if not parts or parts[0].endswith((".dist-info", ".data")) or parts[0] == "..":
                continue
            if len(parts) == 1:
                if not parts[0].endswith(".py"):
                    continue
                parts = (parts[0][:-3],)
            elif parts[-1] == "__init__.py" or not parts[-1].endswith(".py"):
                parts = parts[:-1]
            else:
                parts = parts[:-1] + (parts[-1][:-3],)
            for depth in (1, 2):
                if len(parts) >= depth and all(p.isidentifier() for p in parts[:depth]):
                    owners.setdefault(".".join(parts[:depth]), set()).add(name)
    return owners, names


def owners_of(module: str, owners: dict[str, set[str]]) -> tuple[str, set[str]]:
    """The prefix of `module` that decides its owner, and the distributions owning it."""
    parts = module.split(".")
    key = ".".join(parts[:2]) if ".".join(parts[:2]) in owners else parts[0]
    return key, owners.get(key, set())


def _install() -> None:
    allowed = _allowed()
    if not allowed:
        return
    owners, names = owners_map()
    blocked_dists = names - allowed
    blocked_modules = {m for m, d in owners.items() if not d & allowed}
    blocked_modules.discard("sitecustomize")
    hits: list[str] = []
    log = os.environ.get("GPU_IMAGE_SIM_LOG")

    def note(module: str) -> None:
        if module not in hits:
            hits.append(module)
            if log:
                with open(log, "a", encoding="utf-8") as fh:
                    fh.write(f"{module}\n")

    class HidingFinder:
        """Wraps the path finder: hides blocked top-level modules and their metadata."""

        def __init__(self, inner):
            self.inner = inner

        def find_spec(self, fullname, path=None, target=None):
            key, _ = owners_of(fullname, owners)
            if key in blocked_modules:
                note(key)
                return None
            return self.inner.find_spec(fullname, path, target)

        def find_distributions(self, context=None):
            if context is None:
                context = _md.DistributionFinder.Context()
            for dist in self.inner.find_distributions(context):
                if _canon(dist.metadata["Name"] or "") not in blocked_dists:
                    yield dist

        def invalidate_caches(self):
            return self.inner.invalidate_caches()

    for i, finder in enumerate(sys.meta_path):
        if getattr(finder, "__name__", "") == "PathFinder":
            sys.meta_path[i] = HidingFinder(finder)
            break
    for name in list(sys.modules):
        if owners_of(name, owners)[0] in blocked_modules:
            del sys.modules[name]


_install()
