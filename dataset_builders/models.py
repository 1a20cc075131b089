"""`python -m dataset_builders.models`: materialise the embedded model (see axolotl_mistake.models)."""

from axolotl_mistake.models import ensure_embedded_model, main

__all__ = ["ensure_embedded_model", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
