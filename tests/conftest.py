"""Shared fixtures: offline environment, the embedded model, a tiny random model, shared data.

Everything runs on CPU and offline (`HF_HUB_OFFLINE=1`). The tiny model reuses the embedded
model's real tokenizer with a 2-layer random-weight Llama so strategy and training tests are fast.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The read-only public data beside the checkout (`../shared/data`), or an override."""
    override = os.environ.get("AXOLOTL_MISTAKE_SHARED_DATA")
    return Path(override) if override else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path}")
    return path


@pytest.fixture(scope="session")
def embedded_model_dir() -> Path:
    """The real SmolLM2-135M-Instruct as an HF folder (converted once per cache)."""
    from axolotl_mistake.models import ensure_embedded_model

    return ensure_embedded_model()


@pytest.fixture(scope="session")
def embedded_tokenizer(embedded_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_model_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(embedded_model_dir, tmp_path_factory) -> Path:
    """A 2-layer random-weight Llama with the embedded model's tokenizer (fast tests)."""
    from benchmarks.shapes import build_tiny_model

    return build_tiny_model(embedded_model_dir, tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def fresh_plugin_manager():
    """Axolotl's PluginManager is a process-wide singleton: give a test a clean registry and
    restore the previous one afterwards."""
    from axolotl.integrations.base import PluginManager

    manager = PluginManager.get_instance()
    saved = dict(manager.plugins)
    manager.plugins.clear()
    yield manager
    manager.plugins.clear()
    manager.plugins.update(saved)
