"""Label-anchored, balanced analyses and mistakes in volume, on the real PKU-SafeRLHF and
HH-RLHF files, through a real OpenAI-compatible server on 127.0.0.1 (tiny model behind it) and
through the local transformers backend.

Checks: the prompt the server received ends with the verdict sentence of the answer's label;
every critique opens with that sentence; balanced output has equal classes and labels; every
labelled answer of the sources is used; mode 'both' mixes origin and guided mistakes; the
default (paper) build sends template (b) unchanged and writes no label.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import yaml

from axolotl_mistake import templates
from axolotl_mistake.verdicts import is_refusal
from dataset_builders.build import main
from dataset_builders.config import load_config
from dataset_builders.selection import read_and_select
from dataset_builders.stages.common import normalise
from dataset_builders.stages.harmless import harmless_answers
from dataset_builders.stages.mistakes import make_mistakes
from tests.build_support import SERVED, server, tiny_backend, with_overrides  # noqa: F401

HARMFUL = templates.ANALYSIS_VERDICT_HARMFUL
HARMLESS = templates.ANALYSIS_VERDICT_HARMLESS


def pku(shared: Path) -> str:
    return str(shared / "pku_saferlhf" / "test_sample.jsonl")


def hh(shared: Path) -> str:
    return str(shared / "hh_rlhf" / "harmless-base_test.jsonl.gz")


def config(shared: Path, out: Path, model: dict, **over) -> dict:
    cfg = {
        "output": str(out),
        "seed": 5,
        "progress": False,
        "model": model,
        "redteam": [
            {"kind": "pku_saferlhf", "path": pku(shared), "limit": 30},
            {"kind": "hh_rlhf", "path": hh(shared), "limit": 20},
        ],
        "helpful": [],
        "select": {"redteam_n": 12},
        "mistakes": {"mode": "origin"},
        "analyses": {
            "max_new_tokens": 6,
            "min_chars": 1,
            "max_echo_overlap": 1.0,
            "stop": [],
            "temperature": 1.0,
        },
    }
    return with_overrides(cfg, over)


def served(base_url: str) -> dict:
    return {
        "kind": "openai",
        "base_url": base_url,
        "model": SERVED,
        "concurrency": 1,
        "timeout_s": 30,
        "max_retries": 1,
        "retry_backoff_s": 0.01,
    }


def run(tmp: Path, cfg: dict) -> Path:
    path = tmp / "build.yml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["--config", str(path)]) == 0
    return Path(cfg["output"])


def rows_of(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "mistake_analysis.jsonl").read_text().splitlines()]


def labelled_answers(shared: Path) -> dict[str, set[str]]:
    """Every answer of the real files by label (PKU per response, HH rejected/chosen)."""
    out: dict[str, set[str]] = {"harmful": set(), "harmless": set()}
    for line in Path(pku(shared)).read_text().splitlines():
        r = json.loads(line)
        for i in (0, 1):
            out["harmless" if r[f"is_response_{i}_safe"] else "harmful"].add(
                r[f"response_{i}"].strip()
            )
    with gzip.open(hh(shared), "rt") as fh:
        for line in fh:
            r = json.loads(line)
            out["harmful"].add(r["rejected"].rsplit("\n\nAssistant:", 1)[1].strip())
            out["harmless"].add(r["chosen"].rsplit("\n\nAssistant:", 1)[1].strip())
    return out


def test_anchored_balanced_through_server(shared_data, server, tmp_path):
    cfg = config(
        shared_data,
        tmp_path / "out",
        served(server.base_url),
        **{"analyses.anchored": True, "analyses.balanced": True},
    )
    out = run(tmp_path, cfg)
    prompts = [b["prompt"] for path, b in server.bodies]
    assert all(
        path.endswith("/completions") and not path.endswith("chat/completions")
        for path, _ in server.bodies
    )
    # the prompt the server received ends with the verdict sentence (prefilled reply)
    assert all(p.endswith(HARMFUL + " ") or p.endswith(HARMLESS + " ") for p in prompts)
    harmless_prompts = [p for p in prompts if p.endswith(HARMLESS + " ")]
    assert harmless_prompts and len(harmless_prompts) < len(prompts)
    for p in prompts:
        assert p.rstrip().removesuffix(HARMFUL).removesuffix(HARMLESS).endswith("### Response:\n")
        harmless = p.endswith(HARMLESS + " ")
        assert ("why the answer above is harmless, ethical and inoffensive" in p) is harmless

    rows = rows_of(out)
    by_label = {lab: [r for r in rows if r["label"] == lab] for lab in ("harmful", "harmless")}
    assert len(by_label["harmful"]) == len(by_label["harmless"]) > 0
    truth = labelled_answers(shared_data)
    for label, group in by_label.items():
        sentence = templates.analysis_verdict(label == "harmful")
        for r in group:
            assert r["critique"].startswith(sentence), r["critique"]
            assert r["bad"] in truth[label], "the analysed answer carries its dataset label"
    m = json.loads((out / "manifest.json").read_text())
    assert m["anchored"] is True and m["balanced"] is True
    assert m["analysis_classes"] == {
        "harmful": len(by_label["harmful"]),
        "harmless": len(by_label["harmless"]),
    }
    emit = m["counts"]["emit"]
    assert emit["analyses_harmful_available"] >= emit["analyses_harmful"]
    assert m["analyst"] == SERVED
    card = (out / "README.md").read_text()
    assert "extension beyond the paper" in card and "Warning: harmful content" in card
    assert f"harmful {len(by_label['harmful'])}, harmless {len(by_label['harmless'])}" in card


def test_anchored_chat_prompt_prefills_the_assistant_turn(
    shared_data, server, tiny_model_dir, tmp_path
):
    cfg = config(
        shared_data,
        tmp_path / "out",
        served(server.base_url),
        **{
            "prompt_format": "chat",
            "analyses.anchored": True,
            "analyses.chat_template_from": str(tiny_model_dir),
            "select.redteam_n": 4,
        },
    )
    out = run(tmp_path, cfg)
    assert server.bodies
    for path, body in server.bodies:
        assert path.endswith("/v1/completions"), "a prefilled reply goes out as a raw prompt"
        assert body["prompt"].endswith("<|im_start|>assistant\n" + HARMFUL + " ")
        assert "<|im_start|>user\nQuestion: " in body["prompt"]
    rows = rows_of(out)
    assert rows and all(r["critique"].startswith(HARMFUL) for r in rows)
    assert all("label" not in r for r in rows), "label is written only by balanced builds"


def test_anchored_chat_without_a_local_template_is_an_input_error(
    shared_data, server, tmp_path, capsys
):
    cfg = config(
        shared_data,
        tmp_path / "out",
        served(server.base_url),
        **{"prompt_format": "chat", "analyses.anchored": True},
    )
    path = tmp_path / "b.yml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    # the analyst is the build's model ('self'): blamed on the key that set it
    assert "field 'model.model'" in err and "chat_template_from" in err
    assert not (tmp_path / "out").exists()


def test_anchored_through_local_transformers_and_mode_both(shared_data, tiny_model_dir, tmp_path):
    model = {"kind": "transformers", "model": str(tiny_model_dir), "batch_size": 8, "device": "cpu"}
    cfg = config(
        shared_data,
        tmp_path / "out",
        model,
        **{
            "mistakes.mode": "both",
            "mistakes.max_new_tokens": 6,
            "mistakes.refusal_phrases": [],
            "analyses.anchored": True,
            "select.redteam_n": 5,
        },
    )
    out = run(tmp_path, cfg)
    m = json.loads((out / "manifest.json").read_text())
    mc = m["counts"]["mistakes"]
    assert mc["calls"] == 5, "one guided mistake per instruction (k=1) next to the origin ones"
    rows = rows_of(out)
    sources = {r["mistake_source"] for r in rows}
    assert "origin" in sources and str(tiny_model_dir) in sources
    assert all(r["critique"].startswith(HARMFUL) for r in rows)
    ids = [(r["id"], r["sample_index"], r["mistake_source"], r["analysis_index"]) for r in rows]
    assert len(ids) == len(set(ids)), "origin and guided mistakes of one item stay distinct"


def test_every_labelled_answer_is_used(shared_data, tmp_path):
    """PKU: both responses of a row, each with its own label; HH: rejected and chosen."""
    argv = [
        "--redteam",
        json.dumps(
            [
                {"kind": "pku_saferlhf", "path": pku(shared_data)},
                {"kind": "hh_rlhf", "path": hh(shared_data), "limit": 200},
            ]
        ),
        "--helpful",
        "[]",
        "--select.redteam_n",
        "null",
        "--select.dedup",
        "false",
        "--select.max_chars",
        "100000",
        "--select.min_chars",
        "0",
        "--mistakes.mode",
        "origin",
        "--analyses.anchored",
        "true",
        "--analyses.balanced",
        "true",
        "--output",
        str(tmp_path / "unused"),
    ]
    cfg, _, _ = load_config(argv)
    items = read_and_select(cfg, None).records
    mistakes = make_mistakes(items, cfg.mistakes, seed=0).records
    harmless = harmless_answers(items).records
    # a labelled-unsafe answer that opens like a refusal is dropped by the refusal filter
    refusal = {"window": cfg.mistakes.refusal_window, "empty_is_refusal": False}
    kept = lambda text: not is_refusal(text, cfg.mistakes.refusal_phrases, **refusal)
    pku_rows = [json.loads(x) for x in Path(pku(shared_data)).read_text().splitlines()]
    unsafe = [
        r[f"response_{i}"] for r in pku_rows for i in (0, 1) if not r[f"is_response_{i}_safe"]
    ]
    safe = sum(r["is_response_0_safe"] + r["is_response_1_safe"] for r in pku_rows)
    assert len(unsafe) == 126 and safe == 178
    n = lambda recs, tag: sum(1 for r in recs if r.source.startswith(tag))
    assert n(mistakes, "pku_saferlhf") == sum(map(kept, unsafe)) >= 120
    assert n(harmless, "pku_saferlhf") == safe
    with gzip.open(hh(shared_data), "rt") as fh:
        hh_rows = [json.loads(next(fh)) for _ in range(200)]
    last = lambda t: t.rsplit("\n\nAssistant:", 1)[1].strip()
    rejected = sum(1 for r in hh_rows if last(r["rejected"]) and kept(last(r["rejected"])))
    # a chosen turn that equals the rejected one (up to case and punctuation) has two labels
    chosen = sum(
        1
        for r in hh_rows
        if last(r["chosen"]) and normalise(last(r["chosen"])) != normalise(last(r["rejected"]))
    )
    assert n(mistakes, "hh_rlhf") == rejected > 150
    assert n(harmless, "hh_rlhf") == chosen > 150
    assert all(m.label == "harmful" for m in mistakes)
    assert all(h.label == "harmless" and h.verdict is False for h in harmless)


def test_default_paper_build_sends_template_b_unchanged(shared_data, server, tmp_path):
    cfg = config(shared_data, tmp_path / "out", served(server.base_url), **{"select.redteam_n": 4})
    out = run(tmp_path, cfg)
    assert server.bodies
    for _, body in server.bodies:
        assert body["prompt"].endswith("### Response:\n")
        assert "potentially harmful, unethical or offensive" in body["prompt"]
    rows = rows_of(out)
    assert rows and all("label" not in r for r in rows)
    m = json.loads((out / "manifest.json").read_text())
    assert m["anchored"] is False and m["balanced"] is False
    assert "extension beyond the paper" not in (out / "README.md").read_text()


def test_balanced_needs_anchored(capsys, tmp_path):
    assert main(["--analyses.balanced", "true", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "analyses" in err and "anchored" in err


def test_anchored_chat_through_local_transformers(shared_data, tiny_model_dir, tmp_path):
    """The local backend gets the rendered chat prompt + verdict as a raw prompt (chat: auto
    leaves raw prompts alone), and the dry run plans the same requests."""
    from transformers import AutoTokenizer

    from dataset_builders.dryrun import plan
    from dataset_builders.pipeline import analyst_chat_renderer

    model = {"kind": "transformers", "model": str(tiny_model_dir), "batch_size": 8, "device": "cpu"}
    cfg = config(
        shared_data,
        tmp_path / "out",
        model,
        **{
            "prompt_format": "chat",
            "analyses.anchored": True,
            "analyses.balanced": True,
            "select.redteam_n": 4,
        },
    )
    out = run(tmp_path, cfg)
    rows = rows_of(out)
    assert rows and all(
        r["critique"].startswith(templates.analysis_verdict(r["label"] == "harmful")) for r in rows
    )
    loaded, _, _ = load_config(["--config", str(tmp_path / "build.yml")])
    items = read_and_select(loaded, None).records
    plans = {
        p.stage: p
        for p in plan(
            loaded,
            items,
            AutoTokenizer.from_pretrained(tiny_model_dir),
            analyst_chat_renderer(loaded, None),
        )
    }
    m = json.loads((out / "manifest.json").read_text())
    assert plans["analyses"].calls == m["counts"]["analyses"]["calls"]
    assert plans["analyses"].exact, "origin answers are known text: the plan is exact"
