"""`--dry-run`: per-stage instructions, calls, prompt tokens (real tokenizer) and the generation
upper bound, computed without generating or writing anything."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from axolotl_mistake import templates
from dataset_builders.build import main
from dataset_builders.config import load_config
from dataset_builders.dryrun import plan
from dataset_builders.selection import read_and_select


def test_dry_run_numbers_match_the_real_tokenizer(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "--model.model",
        str(tiny_model_dir),
        "--select.redteam_n",
        "5",
        "--select.helpful_n",
        "3",
        "--mistakes.k",
        "2",
        "--mistakes.max_new_tokens",
        "20",
        "--verify.mode",
        "self_check",
        "--analyses.max_new_tokens",
        "30",
        "--output",
        str(out),
        "--dry-run",
    ]
    cfg, _, _ = load_config(argv)
    items = read_and_select(cfg, None).records
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    plans = {p.stage: p for p in plan(cfg, items, tok)}
    red = [it for it in items if it.role == "redteam"]
    assert len(red) == 5
    expected = (
        sum(
            len(
                tok(
                    templates.guided_response_prompt(it.instruction, it.input),
                    add_special_tokens=False,
                )["input_ids"]
            )
            for it in red
        )
        * 2
    )
    m = plans["mistakes"]
    assert (m.instructions, m.calls, m.prompt_tokens, m.max_new_tokens) == (5, 10, expected, 200)
    assert (
        plans["verify"].calls == 10
        and plans["verify"].max_new_tokens == 10 * cfg.verify.max_new_tokens
    )
    a = plans["analyses"]
    assert a.calls == 10 and a.max_new_tokens == 300 and not a.exact
    empty_bad = (
        sum(
            len(
                tok(
                    templates.guided_analysis_prompt(it.instruction, "", it.input),
                    add_special_tokens=False,
                )["input_ids"]
            )
            for it in red
        )
        * 2
    )
    assert a.prompt_tokens == empty_bad + 10 * 20  # bad answers counted at their token budget

    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert str(expected) in printed and "200" in printed and "300" in printed
    assert not out.exists(), "a dry run writes nothing"


def test_dry_run_origin_counts_real_bad_answers(tiny_model_dir, tmp_path):
    from axolotl_mistake.records import SourceRow
    from dataset_builders.stages.items import Item

    cfg, _, _ = load_config(["--model.model", str(tiny_model_dir), "--mistakes.mode", "origin"])
    rows = [
        SourceRow(
            id=f"x:{i}", instruction=f"question {i}", unsafe_answer="bad " * (i + 1), source="x"
        )
        for i in range(3)
    ]
    items = [Item(uid=f"redteam/x:{i}", role="redteam", row=r) for i, r in enumerate(rows)]
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    plans = {p.stage: p for p in plan(cfg, items, tok)}
    assert plans["mistakes"].calls == 0
    a = plans["analyses"]
    assert a.exact and a.calls == 3
    assert a.prompt_tokens == sum(
        len(
            tok(
                templates.guided_analysis_prompt(r.instruction, r.unsafe_answer.strip()),
                add_special_tokens=False,
            )["input_ids"]
        )
        for r in rows
    )


@pytest.mark.parametrize(
    "flags, field",
    [
        (["--model.model", "/nonexistent/model-folder"], "model.model"),
        (["--analyses.backend.model", "/nonexistent/analyst"], "analyses.backend.model"),
    ],
)
def test_a_model_that_cannot_load_is_one_located_error_in_a_dry_run_too(
    flags, field, tmp_path, capsys
):
    """Without --dry-run this is one line naming the key; the dry run's tokenizer load gave a
    transformers traceback and exit 1."""
    from dataset_builders.build import main

    out = tmp_path / "out"
    code = main([*flags, "--dry-run", "--output", str(out), "--progress", "false"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: <command line>") and f"field '{field}'" in err, err
    assert "\n" not in err and "Traceback" not in err
    assert not out.exists()


def test_dry_run_refuses_the_output_the_build_would_refuse(tiny_model_dir, tmp_path, capsys):
    """A dry run says whether the build can run: an output folder the build would refuse (one
    this tool did not make) fails it the same way, and nothing in it is touched."""
    from dataset_builders.build import main

    out = tmp_path / "notes"
    out.mkdir()
    (out / "README.md").write_text("mine\n")
    argv = ["--model.model", str(tiny_model_dir), "--output", str(out), "--progress", "false"]
    code = main([*argv, "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "refusing to write into" in err and "'output'" in err, err
    assert [p.name for p in out.iterdir()] == ["README.md"]
    assert (out / "README.md").read_text() == "mine\n"
    assert main([*argv, "--dry-run", "--overwrite"]) == 0
