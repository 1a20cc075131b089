"""The tokenizer a vLLM analyst will encode with, known before vLLM is loaded (or installed).

vLLM's `tokenizer_mode: auto` takes mistral-common's tokenizer for a repo with Mistral's own
weights and tokenizer files, where transformers' `AutoTokenizer` can give its own class (a
Mistral-7B-Instruct-v0.3 folder: `tokenizer.json` beside `tokenizer.model.v3` and
`consolidated.safetensors`). The dry run counts with that tokenizer, and the builder sends
anchored chat analyses to such an analyst as a prefilled reply, not as rendered text the engine
would refuse. The Hub is faked only where it is the network (`list_repo_files`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from axolotl_mistake.generation.config import BackendConfig
from axolotl_mistake.generation.vllm import engine_picks_mistral_common
from axolotl_mistake.mistral_common import is_mistral_common
from tests.mistral_support import shipped


def _folder(root: Path, names: list[str]) -> Path:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    return root


@pytest.mark.parametrize(
    ("names", "picks"),
    [
        (["consolidated.safetensors", "tekken.json", "tokenizer.json"], True),
        (["consolidated-00001-of-00002.safetensors", "tokenizer.model.v3"], True),
        (["original/consolidated.safetensors", "tekken.json"], True),  # vLLM looks recursively
        (["model.safetensors", "tekken.json"], False),  # no Mistral-format weights
        (["consolidated.safetensors", "tokenizer.model", "tokenizer.json"], False),
    ],
)
def test_vllms_auto_rule_on_a_local_folder(tmp_path, names, picks):
    assert engine_picks_mistral_common(str(_folder(tmp_path, names)), None) is picks


def test_vllms_auto_rule_on_a_hub_repo_and_when_the_hub_cannot_answer(monkeypatch):
    import huggingface_hub

    asked = []

    def listing(repo_id, revision=None, **_):
        asked.append((repo_id, revision))
        if repo_id == "org/mistral":
            return ["consolidated.safetensors", "params.json", "tokenizer.model.v3"]
        raise huggingface_hub.errors.OfflineModeIsEnabled("offline")

    monkeypatch.setattr(huggingface_hub, "list_repo_files", listing)
    assert engine_picks_mistral_common("org/mistral", "abc") is True
    assert engine_picks_mistral_common("org/other", None) is False  # vLLM, too, reads "none"
    assert asked == [("org/mistral", "abc"), ("org/other", None)]
    assert engine_picks_mistral_common("embedded", None) is False


@pytest.fixture
def v03_folder(tmp_path, embedded_model_dir) -> Path:
    """A Mistral-7B-Instruct-v0.3-shaped tokenizer folder: transformers' own tokenizer files
    with a chat template (the embedded model's), mistral-common's v3 SentencePiece model, and
    a (zero-byte) `consolidated.safetensors`: only the names count for vLLM's rule."""
    folder = tmp_path / "v03"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(embedded_model_dir / name, folder / name)
    shutil.copy(
        shipped("mistral_instruct_tokenizer_240323.model.v3"), folder / "tokenizer.model.v3"
    )
    (folder / "consolidated.safetensors").write_bytes(b"")
    return folder


def test_each_local_kind_loads_the_tokenizer_its_engine_will(v03_folder):
    vllms = BackendConfig(kind="vllm", model=str(v03_folder)).load_tokenizer()
    transformers = BackendConfig(kind="transformers", model=str(v03_folder)).load_tokenizer()
    assert is_mistral_common(vllms) and not is_mistral_common(transformers)


@pytest.mark.parametrize(
    ("mode", "folder", "mistral"),
    [
        ("hf", "v03", False),  # the user overrides the rule on a v0.3-shaped folder
        ("mistral", "embedded", True),  # ... or asks for mistral-common where it would not pick it
        ("auto", "embedded", False),
    ],
)
def test_a_tokenizer_mode_set_is_the_one_read_and_the_one_the_engine_gets(
    v03_folder, embedded_model_dir, tmp_path, mode, folder, mistral
):
    model = v03_folder if folder == "v03" else embedded_model_dir
    if folder == "embedded" and mistral:  # mistral-common needs its own tokenizer file
        model = tmp_path / "with_v3"
        shutil.copytree(embedded_model_dir, model)
        shutil.copy(
            shipped("mistral_instruct_tokenizer_240323.model.v3"), model / "tokenizer.model.v3"
        )
    cfg = BackendConfig(kind="vllm", model=str(model), tokenizer_mode=mode)
    assert is_mistral_common(cfg.load_tokenizer()) is mistral
    assert cfg.backend_kwargs()["tokenizer_mode"] == mode  # reaches vllm.LLM's engine arguments
    with pytest.raises(ValueError, match="tokenizer_mode"):
        BackendConfig(kind="vllm", tokenizer_mode="slow")
    with pytest.raises(ValueError, match="tokenizer_mode"):  # a vLLM key only
        BackendConfig(kind="transformers", tokenizer_mode="hf")


def test_mistral_mode_without_mistral_commons_file_is_refused_with_the_config(
    embedded_model_dir, tmp_path
):
    with pytest.raises(ValueError, match="embedded model has not"):
        BackendConfig(kind="vllm", tokenizer_mode="mistral")
    with pytest.raises(ValueError, match="holds none"):
        BackendConfig(kind="vllm", model=str(embedded_model_dir), tokenizer_mode="mistral")
    with_v3 = _folder(tmp_path / "v3", ["sub/tokenizer.model.v3", "config.json"])
    assert BackendConfig(kind="vllm", model=str(with_v3), tokenizer_mode="mistral")
    # a Hub id lists nothing offline: left to vLLM, as its own rule leaves it
    assert BackendConfig(kind="vllm", model="mistralai/Some-Model", tokenizer_mode="mistral")
    assert BackendConfig(kind="vllm", model=str(embedded_model_dir), tokenizer_mode="hf")


def test_an_adapters_saved_tokenizer_is_the_transformers_backends_not_vllms(
    tmp_path, embedded_model_dir, embedded_tokenizer
):
    """Axolotl saves the trained tokenizer beside the adapter; the transformers backend encodes
    with it, vLLM with the engine's (the model's)."""
    import copy

    adapter = tmp_path / "adapter"
    trained = copy.deepcopy(embedded_tokenizer)
    trained.add_tokens(["<added_by_training>"])
    trained.save_pretrained(adapter)
    keys = {"model": str(embedded_model_dir), "adapter": str(adapter)}
    ours = BackendConfig(kind="transformers", **keys).load_tokenizer()
    engines = BackendConfig(kind="vllm", **keys).load_tokenizer()
    assert len(ours) == len(embedded_tokenizer) + 1 and len(engines) == len(embedded_tokenizer)


def _anchored_chat_config(tmp_path: Path, kind: str, model: Path):
    import json

    from dataset_builders.config import load_config
    from tests.build_support import fast_build_argv, origin_source

    red = tmp_path / "red.jsonl"
    rows = ({"prompt": f"How do I do bad thing {i}?", "response": "Do X."} for i in range(3))
    red.write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = fast_build_argv(
        origin_source(red),
        tmp_path / f"out-{kind}",
        *["--model.kind", kind, "--model.model", str(model)],
        *["--prompt_format", "chat", "--analyses.anchored", "true"],
    )
    return load_config(argv)[0]


def test_a_vllm_analyst_gets_prefilled_replies_and_the_dry_run_counts_its_ids(tmp_path, v03_folder):
    """Before, both read the folder with `AutoTokenizer`: the build rendered transformers' chat
    template to text, which the engine's mistral-common tokenizer refuses at every call, and
    the dry run counted tokens of a tokenizer the engine never loads."""
    from axolotl_mistake import templates
    from axolotl_mistake.mistral_common import reply_opening_ids
    from dataset_builders.dryrun import load_tokenizer, plan
    from dataset_builders.pipeline import analyst_chat_renderer
    from dataset_builders.selection import read_and_select

    vllm_cfg = _anchored_chat_config(tmp_path, "vllm", v03_folder)
    assert analyst_chat_renderer(vllm_cfg, None) is None  # the verdict goes as `prefill`
    hf_cfg = _anchored_chat_config(tmp_path, "transformers", v03_folder)
    assert callable(analyst_chat_renderer(hf_cfg, None))  # its own template, as before

    tok, label = load_tokenizer(vllm_cfg.model)
    assert is_mistral_common(tok) and label == str(v03_folder)
    planned = {p.stage: p for p in plan(vllm_cfg, read_and_select(vllm_cfg, None).records, tok)}
    verdict = templates.analysis_verdict(True) + " "
    sent = [
        reply_opening_ids(
            tok, templates.guided_analysis_messages(f"How do I do bad thing {i}?", "Do X."), verdict
        )
        for i in range(3)
    ]
    assert planned["analyses"].calls == 3 and planned["analyses"].exact
    assert planned["analyses"].prompt_tokens == sum(map(len, sent))
