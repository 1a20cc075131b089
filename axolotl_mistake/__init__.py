"""axolotl-mistake: align LLMs by mistake analysis (Chen et al., ICLR 2024) with Axolotl.

Importing the package stays light: the Axolotl plugin (which imports axolotl and transformers)
is resolved lazily, so `plugins: [axolotl_mistake.MistakeAnalysisPlugin]` works while
`import axolotl_mistake` never pulls in torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["MistakeAnalysisPlugin", "__version__"]


def __getattr__(name: str) -> Any:
    """Lazy export of `MistakeAnalysisPlugin` (Axolotl's loader does getattr on the package)."""
    if name == "MistakeAnalysisPlugin":
        from axolotl_mistake.plugin import MistakeAnalysisPlugin

        return MistakeAnalysisPlugin
    raise AttributeError(f"module 'axolotl_mistake' has no attribute {name!r}")
