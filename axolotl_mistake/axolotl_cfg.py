"""Reading one key of an Axolotl config, the same way in the plugin and the strategies.

Axolotl hands plugins and strategies a `DictDefault`, a plain dict, a pydantic model or None
(no dataset config); `cfg_get` reads all of them alike. Never writes to a config.
"""

from __future__ import annotations

from typing import Any


def cfg_get(cfg: Any, key: str, default: Any = None) -> Any:
    """`cfg[key]` (mapping) or `cfg.key` (object); `default` when the key is unset or None."""
    value = cfg.get(key) if hasattr(cfg, "get") else getattr(cfg, key, None)
    return default if value is None else value
