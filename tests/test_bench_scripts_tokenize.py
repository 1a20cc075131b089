"""bench_tokenize's input: a mistyped --data is an error naming it (the test fixture stands in
only when no --data is given), and a file without usable rows is one error line, never a run
on other rows or a traceback. The tokenizer is never loaded here."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts are run from there
bench_tokenize = importlib.import_module("bench_tokenize")


@pytest.fixture
def no_benchmark(monkeypatch):
    """Loading the tokenizer (the benchmark's first step past its input) fails at once."""
    monkeypatch.setitem(sys.modules, "transformers", None)
    monkeypatch.setitem(sys.modules, "axolotl_mistake.models", None)


def test_a_missing_data_file_is_named_not_replaced_by_the_fixture(tmp_path, capsys, no_benchmark):
    missing = tmp_path / "alpaca_typo.jsonl"
    with pytest.raises(SystemExit) as exc:
        bench_tokenize.main(["--data", str(missing)])
    assert exc.value.code == 2
    assert f"argument --data: {missing}: file not found" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--rows", "--repeats"])
@pytest.mark.parametrize("number", ["0", "-1"])
def test_counts_below_one_are_refused(capsys, no_benchmark, option, number):
    with pytest.raises(SystemExit) as exc:
        bench_tokenize.main([option, number])
    assert exc.value.code == 2
    assert f"argument {option}: must be at least 1, not {number}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no Alpaca row with a non-empty output"),
        (json.dumps({"instruction": "q", "input": "", "output": " "}), "no Alpaca row"),
        ("{not json", ":1: not an Alpaca row"),
        (json.dumps({"instruction": "q"}), ":1: not an Alpaca row"),
    ],
)
def test_data_without_usable_rows_is_one_error_line(tmp_path, capsys, no_benchmark, text, problem):
    data = tmp_path / "rows.jsonl"
    data.write_text(text + "\n")
    assert bench_tokenize.main(["--data", str(data)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {data}") and problem in err and "\n" not in err


def test_rows_come_from_the_data_given_or_else_the_fixture(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"instruction": "q1", "input": "", "output": "a1"}) + "\n\n")
    assert [r["bad"] for r in bench_tokenize.analysis_rows(3, data)] == ["a1"] * 3
    fixture = bench_tokenize.analysis_rows(2, None)
    assert len(fixture) == 2 and all("bad" in r and "input" in r for r in fixture)


def test_a_ratio_below_the_target_exits_1(monkeypatch, capsys):
    """Under its 0.9 target the benchmark says so in its exit status, not only in a line."""
    from types import SimpleNamespace

    monkeypatch.setitem(
        sys.modules,
        "transformers",
        SimpleNamespace(AutoTokenizer=SimpleNamespace(from_pretrained=lambda path: None)),
    )
    monkeypatch.setitem(
        sys.modules, "axolotl_mistake.models", SimpleNamespace(ensure_embedded_model=lambda: "m")
    )
    speeds = {"axolotl_mistake.unguided_analysis": 80.0, "alpaca": 100.0}
    monkeypatch.setattr(
        bench_tokenize,
        "rows_per_second",
        lambda strategy, rows, tokenizer, repeats: (speeds[strategy], 1000),
    )
    assert bench_tokenize.main(["--rows", "4"]) == 1
    assert "target missed" in capsys.readouterr().err
    speeds["axolotl_mistake.unguided_analysis"] = 95.0
    assert bench_tokenize.main(["--rows", "4"]) == 0


def test_synthetic_critiques_never_copy_their_answer():
    """The benchmark's critiques are the answer backwards, which the strategy accepts, except
    where a palindromic stretch read backwards repeats the answer: then a short critique (the
    strategy would refuse the row and the benchmark would die mid-run, as it once did)."""
    from axolotl_mistake.copying import copy_problem

    bench = importlib.import_module("bench_tokenize")
    plain = "Paris is the capital of France and its largest city by far."
    palindrome = "one two three four five six six five four three two one"
    for answer in (plain, palindrome):
        critique = bench.critique_of(answer, "a question")
        assert copy_problem(critique, answer, "a question") is None
    assert bench.critique_of(plain, "q").endswith(
        "far. by city largest its and France of capital the is Paris"
    )
    assert bench.critique_of(palindrome, "q") == "The answer runs to 12 words."
