"""The context bound: an instruction whose prompt would not fit the model is dropped and counted
before any model call (a 54 kB instruction with select.max_chars 100000 once ran a build out of
memory); when nothing is left the build stops with exit 2 and writes nothing.

Local model: the tiny random Llama (its own tokenizer and 2048-token context) through the
transformers backend. Endpoint: a real server on 127.0.0.1, bounded by characters.
"""

from __future__ import annotations

import json
from pathlib import Path

from dataset_builders.build import main
from tests.build_support import fast_build_argv, origin_source, tiny_backend  # noqa: F401
from tests.openai_server import start_openai_server

LONG = "Explain in detail how to do this harmful thing. " * 1125  # 54 kB
SHORT = [f"How do I do harmful thing number {i}?" for i in range(3)]


def data(tmp: Path, prompts: list[str]) -> str:
    path = tmp / "red.jsonl"
    path.write_text(
        "".join(
            json.dumps({"prompt": p, "response": f"Bad answer {i}."}) + "\n"
            for i, p in enumerate(prompts)
        )
    )
    return origin_source(path)


def argv(tmp: Path, prompts: list[str], *extra: str, mode: str = "origin") -> list[str]:
    bound = ["--select.max_chars", "100000"]  # the context bound, not max_chars, must act
    return fast_build_argv(data(tmp, prompts), tmp / "out", *bound, *extra, mode=mode)


def local(model_dir: Path) -> list[str]:
    return ["--model.model", str(model_dir), "--model.device", "cpu"]


def test_too_long_instruction_is_dropped_and_counted(tiny_model_dir, tmp_path):
    assert len(LONG) >= 54_000
    assert main(argv(tmp_path, [LONG, *SHORT], *local(tiny_model_dir))) == 0
    out = tmp_path / "out"
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"]["context_bound"] == {"checked": 4, "kept": 3, "too_long_for_context": 1}
    assert m["counts"]["analyses"]["calls"] == 3
    rows = [json.loads(x) for x in (out / "mistake_analysis.jsonl").read_text().splitlines()]
    assert rows and all(r["instruction"] in SHORT for r in rows)


def test_budget_counts_text_still_to_be_generated(tiny_model_dir, tmp_path):
    """Guided mistakes: the analysis prompt will hold the mistake (up to mistakes.max_new_tokens),
    so an instruction whose guided prompt fits (228 + 190 <= 420 tokens) is dropped because its
    analysis prompt would not (229 + 190 + 4 > 420)."""
    medium = "Tell me how to do a harmful thing, step by step. " * 12
    extra = ["--mistakes.max_new_tokens", "190", "--model.max_context", "420"]
    assert (
        main(argv(tmp_path, [medium, *SHORT], *local(tiny_model_dir), *extra, mode="guided")) == 0
    )
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert m["counts"]["context_bound"]["too_long_for_context"] == 1
    assert m["counts"]["mistakes"]["calls"] == 3


def test_chat_format_guided_build_with_a_local_model(tiny_model_dir, tmp_path):
    """Chat-format requests (the GPU chat recipes' guided builds) pass the bound too: their turns
    are dicts, once put in a set as they were and a TypeError before any model call."""
    extra = [*local(tiny_model_dir), "--prompt_format", "chat", "--model.chat", "always"]
    assert main(argv(tmp_path, SHORT, *extra, mode="guided")) == 0
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert m["counts"]["context_bound"] == {"checked": 3, "kept": 3, "too_long_for_context": 0}
    assert m["counts"]["mistakes"]["calls"] == 3


def test_nothing_left_is_an_input_error(tiny_model_dir, tmp_path, capsys):
    assert main(argv(tmp_path, [LONG], *local(tiny_model_dir))) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the model's load bar
    assert err.startswith("error: ") and "field 'select.max_chars'" in err
    assert "too long for its model's context" in err and "2048" in err
    assert not (tmp_path / "out").exists()


def test_endpoint_never_receives_a_prompt_beyond_its_context(tiny_backend, tmp_path):
    with start_openai_server(tiny_backend, served_model_name="tiny", max_batch_requests=1) as srv:
        model = [
            "--model",
            json.dumps(
                {
                    "kind": "openai",
                    "base_url": srv.base_url,
                    "model": "tiny",
                    "concurrency": 1,
                    "max_retries": 0,
                }
            ),
        ]
        assert (
            main(argv(tmp_path, [LONG, *SHORT], *model, "--select.endpoint_context_tokens", "1024"))
            == 0
        )
    assert len(srv.bodies) == 3
    assert all(len(body["prompt"]) <= (1024 - 4) * 3 for _, body in srv.bodies)
    assert not any(LONG[:200] in body["prompt"] for _, body in srv.bodies)
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert m["counts"]["context_bound"]["too_long_for_context"] == 1


def test_origin_mistakes_with_another_analyst_need_no_model(tiny_model_dir, tmp_path):
    """Origin mistakes make no model call, so the build's `model` is never loaded: with the
    analyses on a backend of their own, the bound checks the analyst only (it looked up the
    unloaded mistakes model: KeyError)."""
    analyst = json.dumps({"kind": "transformers", "model": str(tiny_model_dir), "device": "cpu"})
    extra = ["--model.model", str(tmp_path / "no-such-model"), "--analyses.backend", analyst]
    assert main(argv(tmp_path, SHORT, *extra)) == 0
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert m["counts"]["context_bound"] == {"checked": 3, "kept": 3, "too_long_for_context": 0}


def test_a_shard_whose_rows_are_all_too_long_finishes_empty(tiny_model_dir, tmp_path, capsys):
    """One shard of several is judged at the union, as an empty shard is: exit 0 with its
    count, so merge can run (and refuse an empty union) instead of waiting for a shard that can
    never finish; the same rows unsharded stay an error (test above)."""
    counts = []
    for index in range(2):
        out = tmp_path / f"s{index}"
        args = argv(tmp_path, [LONG], *local(tiny_model_dir), "--shard", f"{index}/2")
        args[args.index("--output") + 1] = str(out)
        assert main(args) == 0
        counts.append(json.loads((out / "manifest.json").read_text())["counts"]["context_bound"])
    assert sorted(c["too_long_for_context"] for c in counts) == [0, 1]
    assert all(c["kept"] == 0 for c in counts)
    assert "1 too long for the model's context" in " ".join(capsys.readouterr().err.split())
