"""The vllm backend: a clear error without vLLM; real generation only where vLLM imports."""

from __future__ import annotations

import importlib.util
import json

import pytest

from axolotl_mistake.generation import GenerationRequest, SamplingParams
from axolotl_mistake.generation.config import BackendConfig
from axolotl_mistake.generation.factory import load_backend

HAVE_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.skipif(HAVE_VLLM, reason="vLLM is installed here")
def test_missing_vllm_gives_install_hint():
    with pytest.raises(ImportError, match=r"axolotl-mistake\[vllm\]"):
        load_backend(BackendConfig(kind="vllm", model="embedded"))


def test_config_validates_parallel_sizes():
    with pytest.raises(ValueError):
        BackendConfig(kind="vllm", tensor_parallel_size=0)
    cfg = BackendConfig(
        kind="vllm",
        tensor_parallel_size=2,
        data_parallel_size=2,
        distributed_executor_backend="ray",
    )
    assert cfg.distributed_executor_backend == "ray"


@pytest.mark.skipif(not HAVE_VLLM, reason="vLLM is not installed (extra axolotl-mistake[vllm])")
def test_vllm_generates_greedy_and_seeded(tiny_model_dir):
    pytest.importorskip("vllm")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a GPU")
    backend = load_backend(BackendConfig(kind="vllm", model=str(tiny_model_dir)))
    reqs = [
        GenerationRequest(prompt="Hello"),
        GenerationRequest(messages=({"role": "user", "content": "Hi"},)),
    ]
    out = backend.generate(reqs, SamplingParams(max_new_tokens=8))
    assert all(c.ok and c.completion_tokens <= 8 and c.prompt_tokens > 0 for c in out)
    sampled = SamplingParams(max_new_tokens=8, temperature=1.0, seed=3)
    a = backend.generate(
        [GenerationRequest(prompt="Hello", sample_index=i) for i in range(2)], sampled
    )
    b = backend.generate(
        [GenerationRequest(prompt="Hello", sample_index=i) for i in range(2)], sampled
    )
    assert [c.text for c in a] == [c.text for c in b]


@pytest.mark.parametrize(("rank", "expected"), [(8, 8), (16, 16), (32, 32), (64, 64), (48, 64)])
def test_an_adapter_above_vllms_default_rank_raises_max_lora_rank(tmp_path, rank, expected):
    """vLLM's default max_lora_rank (16) refuses the rank-32/64 adapters the GPU recipes
    train ("LoRA rank 64 is greater than max_lora_rank 16"); the backend raises it to the
    adapter's rank, rounded up to a value vLLM accepts, unless the config sets it."""
    from axolotl_mistake.generation.vllm import lora_engine_args

    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": rank, "lora_alpha": 16}))
    assert lora_engine_args(tmp_path, {}) == {"enable_lora": True, "max_lora_rank": expected}
    assert lora_engine_args(tmp_path, {"max_lora_rank": 128}) == {"enable_lora": True}
    assert lora_engine_args(tmp_path / "missing", {}) == {"enable_lora": True}
