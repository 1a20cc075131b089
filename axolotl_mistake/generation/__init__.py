"""Generation backends behind one interface (see `base`), plus the call cache."""

from axolotl_mistake.generation.base import (
    Backend,
    Completion,
    GenerationRequest,
    SamplingParams,
    request_key,
)

__all__ = ["Backend", "Completion", "GenerationRequest", "SamplingParams", "request_key"]
