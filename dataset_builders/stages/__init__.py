"""The build's stages: select, then the registered ones (`stages/registry.py`), then emit."""
