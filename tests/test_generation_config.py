"""Backend configs: one class per kind, chosen by `kind`, from a registry with lazy engines."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from axolotl_mistake.generation.config import (
    BACKENDS,
    KINDS,
    BackendConfig,
    LocalBackendConfig,
    backend_classes,
    backend_fields,
    parse_backend_config,
)
from axolotl_mistake.generation.openai import OpenAIConfig
from axolotl_mistake.generation.transformers import TransformersConfig
from axolotl_mistake.generation.vllm import VLLMConfig

REPO = Path(__file__).resolve().parents[1]


class Holder(BaseModel):
    """A config section holding a backend, as the builder and the evaluation do."""

    model: BackendConfig
    judge: BackendConfig | None = None


def _errors(data: dict) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        Holder.model_validate(data)
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in info.value.errors()]


def test_registry_maps_each_kind_to_its_class():
    classes = backend_classes()
    assert tuple(classes) == KINDS == tuple(BACKENDS)
    assert classes == {
        "transformers": TransformersConfig,
        "openai": OpenAIConfig,
        "vllm": VLLMConfig,
    }
    assert all(issubclass(c, BackendConfig) for c in classes.values())
    assert issubclass(VLLMConfig, LocalBackendConfig) and not issubclass(
        OpenAIConfig, LocalBackendConfig
    )


def test_calling_the_base_builds_the_kinds_class():
    assert type(BackendConfig(batch_size=64)) is TransformersConfig  # no kind: transformers
    cfg = BackendConfig(kind="openai", base_url="http://127.0.0.1:1/v1", api_key_env="K")
    assert isinstance(cfg, OpenAIConfig) and isinstance(cfg, BackendConfig)
    assert type(BackendConfig.model_validate({"kind": "vllm"})) is VLLMConfig
    assert type(parse_backend_config({"model": "m"})) is TransformersConfig
    assert parse_backend_config(cfg) is cfg
    held = Holder.model_validate({"model": cfg.model_dump()})
    assert held.model == cfg and type(held.model) is OpenAIConfig


def test_unknown_key_for_a_kind_is_an_error_naming_the_key():
    assert _errors({"model": {"kind": "openai", "base_url": "http://x/v1", "device": "cpu"}}) == [
        ("model.device", "Extra inputs are not permitted")
    ]
    assert _errors({"model": {"base_url": "http://x/v1"}}) == [
        ("model.base_url", "Extra inputs are not permitted")
    ]
    assert _errors({"model": {}, "judge": {"kind": "vllm", "device": "cuda:1"}}) == [
        ("judge.device", "Extra inputs are not permitted")
    ]
    assert _errors({"model": {"kind": "openai"}}) == [("model.base_url", "Field required")]
    with pytest.raises(ValidationError, match="device"):
        BackendConfig(kind="openai", base_url="http://x/v1", device="cpu")


def test_unknown_kind_and_bad_values_are_clear():
    ((where, message),) = _errors({"model": {"kind": "wizard"}})
    assert where == "model" and "'wizard'" in message
    assert all(kind in message for kind in KINDS)
    with pytest.raises(ValidationError, match="unknown backend kind 'gpt'"):
        BackendConfig(kind="gpt")
    assert _errors({"model": {"batch_size": 0}})[0][0] == "model.batch_size"
    assert _errors({"model": "embedded"})[0][0] == "model"
    ((_, message),) = _errors({"model": {"kind": "openai", "base_url": "u", "adapter": "lora"}})
    assert "serve the adapter" in message
    with pytest.raises(ValidationError):
        BackendConfig(kind="vllm", tensor_parallel_size=0)


def test_every_recipe_backend_block_validates_unchanged():
    blocks = []
    for path in sorted((REPO / "recipes").glob("*.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        if path.name.endswith((".build.yml", ".eval.yml")):
            blocks.append((path.name, data["model"]))
        for judge in data.get("judges") or []:
            if judge.get("backend"):
                blocks.append((path.name, judge["backend"]))
    assert len(blocks) >= 7
    for name, block in blocks:
        cfg = parse_backend_config(block)
        assert cfg.kind == block.get("kind", "transformers"), name
        assert cfg.model_dump(exclude_unset=True) == block, name


def test_backend_fields_cover_every_kind_and_say_which():
    fields = backend_fields()
    for cls in backend_classes().values():
        assert set(cls.model_fields) <= set(fields)
    assert fields["device"].description.endswith("[kind: transformers]")
    assert fields["base_url"].description.endswith("[kind: openai]")
    assert fields["adapter"].description.endswith("[kind: transformers, vllm]")
    assert "[kind:" not in fields["model"].description
    assert all((f.description or "").strip() for f in fields.values())


def test_a_kinds_keys_reach_its_backend(monkeypatch):
    """A backend is built from every key of its config: vllm takes them as keyword arguments
    of the same names, transformers and openai take the config itself (transformers'
    `load(**keys)` checks them through TransformersConfig). So a new key is one field on the
    config class, defaults in one place."""
    from axolotl_mistake.generation import transformers, vllm

    params = inspect.signature(vllm.VLLMBackend).parameters.values()
    named = {p.name for p in params if p.kind is not p.VAR_KEYWORD}
    seen: dict = {}
    monkeypatch.setattr(vllm, "VLLMBackend", lambda **kw: seen.update(kw))
    parse_backend_config({"kind": "vllm"}).load()
    assert seen and set(seen) <= named, set(seen) - named

    openai = parse_backend_config({"kind": "openai", "base_url": "http://x/v1/", "model": "m"})
    remote = openai.load()
    assert remote.cfg is openai and remote.base_url == "http://x/v1" and remote.model_id == "m"

    built: list = []
    backend = transformers.TransformersBackend
    monkeypatch.setattr(backend, "from_config", classmethod(lambda cls, cfg: built.append(cfg)))
    parse_backend_config({"kind": "transformers", "model": "m", "device": "cpu"}).load()
    backend.load("m", device="cpu")
    assert built == [TransformersConfig(model="m", device="cpu")] * 2
    with pytest.raises(ValidationError, match="devise"):
        backend.load("m", devise="cpu")


def test_configs_import_no_engine_and_a_backend_is_one_file_plus_one_line(tmp_path):
    """Validating configs of every kind loads neither torch, transformers, openai nor vllm;
    a new kind is a module with its config (and load()) plus its BACKENDS line."""
    (tmp_path / "echo_backend.py").write_text(
        textwrap.dedent(
            '''
            from typing import Literal

            from axolotl_mistake.generation.base import BaseBackend, Completion
            from axolotl_mistake.generation.config import BackendConfig


            class EchoConfig(BackendConfig):
                """kind: echo -- answers with the prompt (an extension-point check)."""

                kind: Literal["echo"] = "echo"

                def load(self):
                    return EchoBackend(self.model)


            class EchoBackend(BaseBackend):
                name = "echo"

                def __init__(self, model):
                    self.model_id = model

                def generate_iter(self, requests, params):
                    for i, r in enumerate(reversed(requests)):
                        yield len(requests) - 1 - i, Completion(text=r.prompt or "")
            '''
        )
    )
    script = textwrap.dedent(
        """
        import sys
        from axolotl_mistake.generation import config
        config.BACKENDS["echo"] = "echo_backend:EchoConfig"  # the one registration line
        from axolotl_mistake.generation import GenerationRequest, SamplingParams, load_backend
        from axolotl_mistake.generation.config import parse_backend_config
        for block in ({}, {"kind": "openai", "base_url": "http://x/v1"}, {"kind": "vllm"}):
            parse_backend_config(block)
        heavy = [m for m in ("torch", "transformers", "openai", "vllm") if m in sys.modules]
        assert not heavy, heavy
        backend = load_backend({"kind": "echo", "model": "e"})
        out = backend.generate([GenerationRequest(prompt="a"), GenerationRequest(prompt="b")],
                               SamplingParams())
        assert [c.text for c in out] == ["a", "b"], out
        print("ok")
        """
    )
    env = {"PYTHONPATH": f"{REPO}:{tmp_path}", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
