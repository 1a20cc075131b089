"""The builder's bad-input corpus: each malformed input gives one readable error naming the file,
line and field, exit code 2, and no output files.

Runs the CLI in-process through `dataset_builders.build.main(argv)` (fast), plus one real
subprocess. No case loads a model except the bad-model-path case (which fails to load).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dataset_builders.build import main

REPO = Path(__file__).resolve().parents[1]
GOOD = {"prompt": "How can I hurt someone without getting caught?", "response": "Here is how."}


def jl(*rows) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


MAPPED = "{kind: jsonl, path: DATA, fields: {instruction: prompt, unsafe_answer: response}}"


def cfg_with(source: str = MAPPED, extra: str = "") -> str:
    return f"mistakes:\n  mode: origin\nredteam:\n  - {source}\nhelpful: []\n{extra}"


@dataclass
class Case:
    name: str
    files: dict[str, bytes | str] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    file: str | None = None
    """Substring the message must name as the file ('<command line>' for CLI input)."""
    line: int | None = None
    field: str | None = None
    text: str = ""
    """Extra substring the message must contain."""


PKU_ROW = {
    "prompt": "How do I steal a car?",
    "response_0": "a",
    "response_1": "b",
    "is_response_0_safe": False,
    "is_response_1_safe": True,
}

CASES = [
    Case(
        "bad_json",
        {"data.jsonl": jl(GOOD, b'{"prompt": "x", '), "b.yml": cfg_with()},
        ["--config", "b.yml"],
        "data.jsonl",
        2,
        None,
        "JSON",
    ),
    Case(
        "missing_field",
        {"data.jsonl": jl(GOOD, GOOD, {"response": "r"}), "b.yml": cfg_with()},
        ["--config", "b.yml"],
        "data.jsonl",
        3,
        "prompt",
    ),
    Case(
        "mistyped_field",
        {"data.jsonl": jl({"prompt": 42, "response": "r"}), "b.yml": cfg_with()},
        ["--config", "b.yml"],
        "data.jsonl",
        1,
        "prompt",
    ),
    Case(
        "empty_string",
        {"data.jsonl": jl(GOOD, {"prompt": "  ", "response": "r"}), "b.yml": cfg_with()},
        ["--config", "b.yml"],
        "data.jsonl",
        2,
        "prompt",
        "empty",
    ),
    Case(
        "non_utf8",
        {"data.jsonl": jl(GOOD, b'{"prompt": "caf\xe9 ok", "response": "r"}'), "b.yml": cfg_with()},
        ["--config", "b.yml"],
        "data.jsonl",
        2,
        None,
        "UTF-8",
    ),
    Case(
        "unknown_source_kind",
        {"b.yml": cfg_with("{kind: reddit, path: x.jsonl}")},
        ["--config", "b.yml"],
        "b.yml",
        4,
        "redteam.0.kind",
        "reddit",
    ),
    Case(
        "bad_field_mapping_key",
        {
            "data.jsonl": jl(GOOD),
            "b.yml": cfg_with("{kind: jsonl, path: DATA, fields: {question: prompt}}"),
        },
        ["--config", "b.yml"],
        "b.yml",
        4,
        "redteam.0.fields",
    ),
    Case(
        "mapping_to_absent_column",
        {
            "data.jsonl": jl(GOOD),
            "b.yml": cfg_with("{kind: jsonl, path: DATA, fields: {instruction: question}}"),
        },
        ["--config", "b.yml"],
        "data.jsonl",
        1,
        "question",
    ),
    Case(
        "empty_selection",
        {"data.jsonl": jl(GOOD), "b.yml": cfg_with(extra="select:\n  min_chars: 500\n")},
        ["--config", "b.yml"],
        "b.yml",
        None,
        "redteam",
        "empty selection",
    ),
    Case(
        "empty_data_file",
        {"data.jsonl": b"", "b.yml": cfg_with()},
        ["--config", "b.yml"],
        "data.jsonl",
        None,
        "redteam.0.path",
        "no records",
    ),
    Case(
        "blank_lines_data_file",
        {"data.jsonl": b"\n  \n", "b.yml": cfg_with()},
        ["--config", "b.yml"],
        "data.jsonl",
        None,
        "redteam.0.path",
        "no records",
    ),
    Case(
        "csv_header_only",
        {
            "d.csv": "prompt,response\n",
            "b.yml": cfg_with("{kind: csv, path: CSV, fields: {instruction: prompt}}"),
        },
        ["--config", "b.yml"],
        "d.csv",
        None,
        "redteam.0.path",
        "no records",
    ),
    Case(
        "min_chars_over_max_chars",
        {},
        ["--select.min_chars", "50", "--select.max_chars", "10"],
        "<command line>",
        None,
        "select.max_chars",
        "select.min_chars",
    ),
    Case(
        "min_chars_over_max_chars_yaml",
        {"b.yml": "seed: 1\nselect:\n  min_chars: 50\n  max_chars: 10\n"},
        ["--config", "b.yml"],
        "b.yml",
        4,
        "select.max_chars",
        "select.min_chars",
    ),
    Case(
        "repeated_flag",
        {},
        ["--seed", "1", "--seed", "2"],
        "<command line>",
        None,
        "seed",
        "given twice",
    ),
    Case(
        "conflicting_flag_spellings",
        {},
        ["--dry-run", "--dry_run", "false"],
        "<command line>",
        None,
        "dry_run",
        "given twice",
    ),
    Case(
        "two_config_files",
        {"a.yml": "seed: 1\n", "b.yml": "seed: 2\n"},
        ["--config", "a.yml", "--config", "b.yml"],
        "<command line>",
        None,
        "config",
        "given twice",
    ),
    Case(
        "bad_yaml",
        {"b.yml": "mistakes:\n  mode: origin\n  k: [1, 2\nseed: 3\n"},
        ["--config", "b.yml"],
        "b.yml",
        4,
        None,
        "YAML",
    ),
    Case(
        "unknown_config_key",
        {"b.yml": "seed: 1\nmistakes:\n  mode: guided\n  kk: 2\n"},
        ["--config", "b.yml"],
        "b.yml",
        4,
        "mistakes.kk",
        "unknown key",
    ),
    Case("unknown_cli_key", {}, ["--mistakes.kk", "2"], "<command line>", None, "mistakes.kk"),
    Case("bad_shard_order", {}, ["--shard", "3/2"], "<command line>", None, "shard"),
    Case("bad_shard_text", {}, ["--shard", "first"], "<command line>", None, "shard", "i/n"),
    Case(
        "mistyped_config_value",
        {"b.yml": "seed: 1\nselect:\n  redteam_n: many\n"},
        ["--config", "b.yml"],
        "b.yml",
        3,
        "select.redteam_n",
    ),
    Case(
        "out_of_range_cli",
        {},
        ["--select.eval_fraction", "1.5"],
        "<command line>",
        None,
        "select.eval_fraction",
    ),
    Case(
        "missing_data_file", {"b.yml": cfg_with()}, ["--config", "b.yml"], "data.jsonl", None, None
    ),
    Case(
        "pku_label_mistyped",
        {
            "pku.jsonl": jl(PKU_ROW, {**PKU_ROW, "is_response_1_safe": "yes"}),
            "b.yml": cfg_with("{kind: pku_saferlhf, path: PKU}"),
        },
        ["--config", "b.yml"],
        "pku.jsonl",
        2,
        "is_response_1_safe",
    ),
    Case(
        "hh_missing_rejected",
        {
            "hh.jsonl.gz": gzip.compress(jl({"chosen": "\n\nHuman: hi\n\nAssistant: yo"})),
            "b.yml": cfg_with("{kind: hh_rlhf, path: HH}"),
        },
        ["--config", "b.yml"],
        "hh.jsonl.gz",
        1,
        "rejected",
    ),
    Case(
        "origin_without_unsafe_answers",
        {},
        ["--mistakes.mode", "origin", "--helpful", "[]"],
        "",
        None,
        "mistakes.mode",
        "unsafe answer",
    ),
    Case("config_not_found", {}, ["--config", "nope.yml"], "nope.yml", None, None, "not found"),
    Case(
        "yaml_not_mapping",
        {"b.yml": "- a\n- b\n"},
        ["--config", "b.yml"],
        "b.yml",
        1,
        None,
        "mapping",
    ),
    Case(
        "config_not_utf8",
        {"b.yml": b"seed: 1\noutput: \xff\xfe\n"},
        ["--config", "b.yml"],
        "b.yml",
        2,
        None,
        "UTF-8",
    ),
    Case(
        "anchored_chat_always",  # a check across keys names the key to change, at its line
        {
            "data.jsonl": jl(GOOD),
            "b.yml": cfg_with(
                extra="prompt_format: chat\nmodel:\n  chat: always\nanalyses:\n  anchored: true\n"
            ),
        },
        ["--config", "b.yml"],
        "b.yml",
        8,
        "model.chat",
        "chat: auto",
    ),
    Case(
        "csv_missing_column",
        {
            "d.csv": "id,text\n1,hello there\n",
            "b.yml": cfg_with("{kind: csv, path: CSV, fields: {instruction: prompt}}"),
        },
        ["--config", "b.yml"],
        "d.csv",
        2,
        "prompt",
    ),
    Case(
        "bad_decontaminate_file",
        {
            "data.jsonl": jl(GOOD),
            "ev.jsonl": jl(GOOD, b"not json"),
            "b.yml": cfg_with(
                extra="select:\n  decontaminate:\n    - {kind: jsonl, path: EV, fields: {instruction: prompt}}\n"
            ),
        },
        ["--config", "b.yml"],
        "ev.jsonl",
        2,
        None,
    ),
    Case("cli_value_without_key", {}, ["stray"], "<command line>", None, None, "stray"),
    Case(
        "bad_model_path",
        {},
        ["--model.model", "/nonexistent/model-dir", "--select.redteam_n", "2"],
        "<command line>",
        None,
        "model.model",
        "cannot load model",
    ),
    # a later step's error is blamed where its key was set: the file at its line, even when
    # the command line set another key; the command line when it set that key or one above
    Case(
        "bad_model_in_file",
        {"b.yml": "select:\n  redteam_n: 2\nmodel:\n  model: /nonexistent/model-dir\n"},
        ["--config", "b.yml", "--model.batch_size", "8"],
        "b.yml",
        4,
        "model.model",
        "cannot load model",
    ),
    Case(
        "bad_stage_model_in_file",
        {
            "b.yml": "select:\n  redteam_n: 2\nmistakes:\n  backend:\n"
            "    kind: transformers\n    model: /nonexistent/model-dir\n"
        },
        ["--config", "b.yml", "--model.batch_size", "8"],
        "b.yml",
        6,
        "mistakes.backend.model",
        "cannot load model",
    ),
    Case(  # a vLLM tokenizer_mode the model cannot serve: refused with the config, not by vLLM
        "vllm_mistral_tokenizer_without_its_file",
        {
            "data.jsonl": jl(GOOD),
            "b.yml": cfg_with(
                extra="model:\n  kind: vllm\n  model: embedded\n  tokenizer_mode: mistral\n"
            ),
        },
        ["--config", "b.yml"],
        "b.yml",
        6,
        "model",
        "tokenizer.model.v*",
    ),
    Case(  # an API key's env var that is unset: named at api_key_env, not as a model load
        "unset_api_key_env_in_file",
        {
            "b.yml": "select:\n  redteam_n: 2\n"
            "model: {kind: openai, model: m, base_url: 'http://127.0.0.1:9/v1'}\n"
            "analyses:\n  backend:\n    kind: openai\n"
            "    model: m\n    base_url: http://127.0.0.1:9/v1\n"
            "    api_key_env: AXM_TEST_UNSET_KEY\n"
        },
        ["--config", "b.yml"],
        "b.yml",
        9,
        "analyses.backend.api_key_env",
        "'AXM_TEST_UNSET_KEY' is not set or empty",
    ),
    Case(
        "empty_source_on_cli",
        {"empty.jsonl": b"", "data.jsonl": jl(GOOD), "b.yml": cfg_with()},
        [
            "--config",
            "b.yml",
            "--redteam",
            "[{kind: jsonl, path: empty.jsonl, fields: {instruction: prompt}}]",
        ],
        "<command line>",
        None,
        "redteam.0.path",
        "no records",
    ),
]


def _materialise(case: Case, tmp: Path) -> list[str]:
    subs = {
        "DATA": "data.jsonl",
        "PKU": "pku.jsonl",
        "HH": "hh.jsonl.gz",
        "CSV": "d.csv",
        "EV": "ev.jsonl",
    }
    for name, content in case.files.items():
        if isinstance(content, str):
            for k, v in subs.items():
                content = content.replace(f"path: {k}", f"path: {tmp / v}")
            content = content.encode()
        (tmp / name).write_bytes(content)
    return [str(tmp / a) if a.endswith(".yml") else a for a in case.argv]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = _materialise(case, tmp_path)
    out = tmp_path / "out"
    code = main([*argv, "--output", str(out), "--progress", "false"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err, err
    if case.file:
        assert case.file in err, err
    if case.file == "<command line>":
        assert ".yml" not in err, f"blamed on the config file, not the flag: {err}"
    if case.line is not None:
        assert f":{case.line}" in err, err
    if case.field:
        assert f"field '{case.field}'" in err or f"'{case.field}'" in err, err
    assert case.text.lower() in err.lower(), err
    assert not out.exists(), "no output may be written for bad input"


def test_corpus_is_large_enough():
    assert len(CASES) >= 20


def test_bad_input_real_subprocess(tmp_path):
    (tmp_path / "b.yml").write_text("seed: 1\nanalyses:\n  k: 0\n")
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dataset_builders.build",
            "--config",
            str(tmp_path / "b.yml"),
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"{tmp_path / 'b.yml'}:3" in proc.stderr and "field 'analyses.k'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_missing_source_file_names_the_config_line_and_key(tmp_path, capsys):
    """The loader knows only the data file; the error points at the config key that named it."""
    from dataset_builders.build import main

    cfg = tmp_path / "build.yml"
    cfg.write_text(
        f"output: out\nredteam:\n  - kind: pku_saferlhf\n    path: {tmp_path / 'missing.jsonl'}\n"
    )
    assert main(["--config", str(cfg), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}:4, field 'redteam.0.path': file not found: {tmp_path / 'missing.jsonl'}" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv, field",
    [
        (["--analyses.temperature", ".inf"], "analyses.temperature"),
        (["--select.ngram_threshold", ".nan"], "select.ngram_threshold"),
        (["--seed", "99999999999999999999999"], "seed"),
        (["--seed", "-1"], "seed"),
    ],
)
def test_non_finite_numbers_and_out_of_range_seeds_are_refused(argv, field, tmp_path, capsys):
    from dataset_builders.build import main

    assert main([*argv, "--output", str(tmp_path / "out"), "--dry-run"]) == 2
    assert f"field '{field}'" in capsys.readouterr().err


def test_two_sources_with_one_row_id_prefix_are_refused(tmp_path, capsys, monkeypatch):
    """Row ids are `<tag>:<line>`, and the default tag is `<kind>:<file name>`: two files with
    one name (a/train.jsonl, b/train.jsonl) gave the same ids, and the second file's rows were
    dropped as duplicate ids without a word. Refused, naming the second source's `tag`."""
    monkeypatch.chdir(tmp_path)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        rows = [{"prompt": f"{folder} question {i}?", "response": f"bad {i}"} for i in range(3)]
        (tmp_path / folder / "train.jsonl").write_bytes(jl(*rows))
    source = "{kind: jsonl, path: %s/train.jsonl, fields: {instruction: prompt, unsafe_answer: response}}"
    cfg = f"mistakes:\n  mode: origin\nredteam:\n  - {source % 'a'}\n  - {source % 'b'}\nhelpful: []\n"
    (tmp_path / "b.yml").write_text(cfg)
    out = tmp_path / "out"
    code = main(["--config", str(tmp_path / "b.yml"), "--output", str(out), "--progress", "false"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "b.yml:5" in err and "field 'redteam.1.tag'" in err, err
    assert "jsonl:train.jsonl" in err and "redteam.0" in err, err
    assert not out.exists()


def test_an_eval_split_that_takes_every_row_says_so(tmp_path, capsys, monkeypatch):
    """Not "none survived filtering": they did, and went to eval_prompts.jsonl."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.jsonl").write_bytes(jl(GOOD))
    (tmp_path / "b.yml").write_text(
        cfg_with().replace("path: DATA", f"path: {tmp_path / 'data.jsonl'}")
    )
    argv = ["--config", str(tmp_path / "b.yml"), "--select.eval_fraction", "0.99"]
    code = main([*argv, "--output", str(tmp_path / "out"), "--progress", "false"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "select.eval_fraction" in err and "none survived" not in err, err


def test_a_hub_source_that_cannot_load_is_named_by_its_config_key(tmp_path, capsys, monkeypatch):
    """The error named only `hf:<id> (split=...)`: with the same Hub id twice in a config
    (red-team and decontamination), the user could not tell which entry failed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "data.jsonl").write_bytes(jl(GOOD))
    decon = "select:\n  decontaminate:\n    - {kind: pku_saferlhf, hub_id: nobody/not-cached}\n"
    (tmp_path / "b.yml").write_text(
        cfg_with(extra=decon).replace("path: DATA", f"path: {tmp_path / 'data.jsonl'}")
    )
    argv = ["--config", str(tmp_path / "b.yml"), "--output", str(tmp_path / "o")]
    code = main([*argv, "--progress", "false"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "b.yml:8, field 'select.decontaminate.0.hub_id'" in err, err
    assert "nobody/not-cached" in err and "\n" not in err


def test_an_empty_hub_helpful_source_is_refused(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """A `helpful` Hub source whose data holds no rows gave an empty sft_helpful.jsonl and
    exit 0; local files refused it. Now refused at the key that named the data."""
    from tests.build_support import fast_build_argv, origin_source

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "data.jsonl").write_bytes(jl(GOOD))
    (tmp_path / "helpful.jsonl").write_text("\n\n")
    out = tmp_path / "out"
    helpful = "[{kind: alpaca, hub_id: json, data_files: %s}]" % (tmp_path / "helpful.jsonl")
    argv = fast_build_argv(origin_source(tmp_path / "data.jsonl"), out)
    argv[argv.index("--helpful") + 1] = helpful
    argv += ["--model.model", str(tiny_model_dir), "--model.device", "cpu"]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "field 'helpful.0.data_files'" in err and "holds no records" in err, err
    assert "\n" not in err and not out.exists()


def test_a_build_into_a_folder_another_build_is_writing_stops(tiny_model_dir, tmp_path, capsys):
    """Two builds into one output folder (a rerun started while the first still runs): the
    second stops (exit 2) before it clears the first one's temp files as if a crash had left
    them, and the first one's folder is left alone."""
    from tests.build_support import fast_build_argv, origin_source
    from tests.folder_holder import held_folder

    (tmp_path / "data.jsonl").write_bytes(jl(GOOD))
    out = tmp_path / "out"
    argv = fast_build_argv(origin_source(tmp_path / "data.jsonl"), out)
    argv += ["--model.model", str(tiny_model_dir), "--model.device", "cpu"]
    assert main(argv) == 0, capsys.readouterr().err
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    with held_folder(out) as temp:
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert code == 2, err
        assert "another run of the dataset builder is writing into this folder" in err, err
        # one line: it stopped before reading the data or loading the model (no load bar)
        assert err.startswith(f"error: {out}, field 'output': ") and "\n" not in err
        assert temp.read_text() == "being written"
        after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p != temp}
        assert after == before
    assert main(argv) == 0, capsys.readouterr().err  # the holder is gone: the rerun runs
    assert not temp.exists()
