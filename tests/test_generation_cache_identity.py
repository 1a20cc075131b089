"""The call cache never answers for other weights or another endpoint, and a cache file it
cannot read is one located error (exit 2), not a traceback.

Before: a local model folder's weights saved again in place (a re-merge, a retrained model)
and two endpoints serving one model name shared cache keys, so a rerun silently reported the
old model's answers; a garbage or hand-edited cache.sqlite crashed with a traceback.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import textwrap

import pytest

from axolotl_mistake.generation import GenerationRequest, SamplingParams, request_key
from axolotl_mistake.generation.cache import CachedBackend, CacheFileError, CallCache
from axolotl_mistake.generation.common import folder_fingerprint
from axolotl_mistake.generation.openai import OpenAIBackend, OpenAIConfig
from axolotl_mistake.generation.transformers import TransformersBackend

REQUEST = GenerationRequest(prompt="Name a colour.")
PARAMS = SamplingParams(max_new_tokens=3)


def _touch_later(path) -> None:
    """Rewrite a file as `save_pretrained` would: new content time."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_weights_saved_again_in_the_same_folder_change_the_key(tiny_model_dir, tmp_path):
    folder = tmp_path / "merged"
    shutil.copytree(tiny_model_dir, folder)
    before = TransformersBackend.load(str(folder), device="cpu")
    weights = next(folder.glob("*.safetensors"))
    _touch_later(weights)
    after = TransformersBackend.load(str(folder), device="cpu")
    assert before.model_id == after.model_id  # the name users see is unchanged
    assert request_key(before, REQUEST, PARAMS) != request_key(after, REQUEST, PARAMS)
    again = TransformersBackend.load(str(folder), device="cpu")
    assert request_key(after, REQUEST, PARAMS) == request_key(again, REQUEST, PARAMS)
    # the wrapper keys on the same identity
    with CallCache(tmp_path / "c.sqlite") as cache:
        assert CachedBackend(after, cache).key(REQUEST, PARAMS) == request_key(
            after, REQUEST, PARAMS
        )


def test_folder_fingerprint_is_none_for_a_hub_id_and_ignores_hidden_files(tmp_path):
    assert folder_fingerprint("org/model") is None
    (tmp_path / "config.json").write_text("{}")
    first = folder_fingerprint(tmp_path)
    (tmp_path / ".axolotl_mistake_dir").write_text("marker")
    assert folder_fingerprint(tmp_path) == first
    (tmp_path / "model.safetensors").write_bytes(b"x")
    assert folder_fingerprint(tmp_path) != first


def test_two_endpoints_serving_one_name_do_not_share_keys():
    a = OpenAIBackend(OpenAIConfig(base_url="http://127.0.0.1:8001/v1", model="model"))
    b = OpenAIBackend(OpenAIConfig(base_url="http://127.0.0.1:8002/v1/", model="model"))
    same = OpenAIBackend(OpenAIConfig(base_url="http://127.0.0.1:8001/v1/", model="model"))
    assert request_key(a, REQUEST, PARAMS) != request_key(b, REQUEST, PARAMS)
    assert request_key(a, REQUEST, PARAMS) == request_key(same, REQUEST, PARAMS)


def test_a_file_that_is_not_a_cache_is_named(tmp_path):
    path = tmp_path / "calls.sqlite"
    path.write_bytes(b"garbage " * 200)
    with pytest.raises(CacheFileError) as err:
        CallCache(path)
    assert str(err.value).startswith(f"{path}: the call cache cannot be read")
    assert "delete it" in str(err.value)
    assert path.read_bytes() == b"garbage " * 200  # left as found


def test_another_tools_database_is_not_written_into(tmp_path):
    path = tmp_path / "calls.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE calls (id INTEGER, note TEXT)")
    with pytest.raises(CacheFileError, match="not this tool's"):
        CallCache(path)


def test_a_row_that_is_not_a_completion_is_named(tmp_path):
    from axolotl_mistake.generation import Completion

    path = tmp_path / "calls.sqlite"
    with CallCache(path) as cache:
        cache.put("k", Completion(text="hi"))
    with sqlite3.connect(path) as db:
        db.execute("UPDATE calls SET completion = '{bad' WHERE key = 'k'")
    with CallCache(path) as cache:
        with pytest.raises(CacheFileError, match="a stored row is not a completion"):
            cache.get("k")
        with pytest.raises(CacheFileError):
            cache.get_many(["k"])


def test_evaluate_with_a_corrupt_cache_is_exit_2_in_one_line(tmp_path, capsys, tiny_model_dir):
    from axolotl_mistake.evaluate.__main__ import main

    run = tmp_path / "run"
    cfg = tmp_path / "eval.yml"
    cfg.write_text(
        textwrap.dedent(f"""\
        name: t
        output_dir: {run}
        model: {{kind: transformers, model: {tiny_model_dir}, device: cpu}}
        modes: [plain]
        sampling: {{max_new_tokens: 2}}
        bootstrap: {{samples: 100}}
        prompt_sets:
          harmful: {{source: {{kind: builtin, name: redteam}}, limit: 2}}
        judges:
          - kind: refusal
        """)
    )
    assert main(["--config", str(cfg), "--quiet"]) == 0
    capsys.readouterr()
    caches = list(run.glob("*.sqlite"))
    assert caches, "the run keeps a call cache"
    # the run closed its caches (the last connection checkpoints and removes its WAL): one left
    # open made the corrupt file below readable through the old connection, exit 0
    assert not list(run.glob("*.sqlite-wal")), sorted(p.name for p in run.iterdir())
    for cache in caches:
        cache.write_bytes(b"garbage " * 200)
        for journal in run.glob(cache.name + "-*"):  # WAL pages would restore it
            journal.unlink()
    assert main(["--config", str(cfg), "--quiet", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    assert "the call cache cannot be read" in errors[0] and str(caches[0]) in errors[0]
