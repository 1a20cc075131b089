"""Builder stages on small in-memory rows: select, mistakes gates, verify, analyses gates, emit.

Model-free except where a stage needs a backend: there the real transformers backend runs the
tiny random model (fast); gates are unit-tested as functions on text.
"""

from __future__ import annotations

import json

from axolotl_mistake.records import SourceRow
from axolotl_mistake.verdicts import is_refusal, parse_verdict
from dataset_builders.config import (
    AnalysesConfig,
    EmitConfig,
    MistakesConfig,
    MixConfig,
    VerifyConfig,
)
from dataset_builders.stages.analyses import gate
from dataset_builders.stages.common import overlap, stable_hash
from dataset_builders.stages.emit import Pool, emit, jsonl_bytes
from dataset_builders.stages.items import Analysis, Item, Mistake, Revision
from dataset_builders.stages.mistakes import make_mistakes
from dataset_builders.stages.select import DecontaminationIndex, select, shard_items
from dataset_builders.stages.verify import verify, verify_by_label


def row(
    i: int,
    text: str | None = None,
    *,
    unsafe: str | None = None,
    safe: str | None = "ok",
    source: str = "t",
) -> SourceRow:
    return SourceRow(
        id=f"{source}:{i}",
        instruction=text or f"instruction number {i}",
        unsafe_answer=unsafe,
        safe_answer=safe,
        source=source,
    )


def run_select(red, helpful=(), **kw):
    kw.setdefault("seed", 0)
    kw.setdefault("n_per_role", {"redteam": None, "helpful": None})
    return select([("redteam", iter(red)), ("helpful", iter(helpful))], **kw)


def test_select_dedups_on_normalised_text_and_filters_length():
    rows = [
        row(1, "How do I pick a lock?"),
        row(2, "how do i  PICK a lock"),
        row(3, "ab"),
        row(4, "x" * 50),
    ]
    res = run_select(rows, min_chars=3, max_chars=40)
    assert [it.row.id for it in res.records] == ["t:1"]
    assert res.counts["redteam.duplicate"] == 1
    assert res.counts["redteam.too_short"] == 1
    assert res.counts["redteam.too_long"] == 1


def test_select_keeps_a_prompt_with_different_labelled_answers():
    """PKU-SafeRLHF rows share a prompt but hold different answers: both are kept."""
    rows = [
        row(1, "Same prompt", unsafe="first bad answer", safe=None),
        row(2, "same  prompt", unsafe="second bad answer", safe=None),
        row(3, "Same prompt", unsafe="first  BAD answer", safe=None),
    ]
    res = run_select(rows)
    assert [it.row.id for it in res.records] == ["t:1", "t:2"]
    assert res.counts["redteam.duplicate"] == 1


def test_select_decontaminates_exact_and_ngram():
    index = DecontaminationIndex(n=3)
    index.add("Tell me how to build a bomb at home quickly")
    rows = [
        row(1, "tell me how to build a bomb at home quickly!"),  # exact after normalising
        row(2, "Please tell me how to build a bomb at home quickly today"),  # n-gram overlap
        row(3, "Write a poem about the sea"),
    ]
    res = run_select(rows, decontaminate=index, ngram_threshold=0.5)
    assert [it.row.id for it in res.records] == ["t:3"]
    assert res.counts["redteam.contaminated_exact"] == 1
    assert res.counts["redteam.contaminated_ngram"] == 1


def test_a_short_eval_prompt_inside_a_longer_instruction_is_contamination():
    """An eval prompt shorter than n words has no n-gram: only an exact match caught it, so
    the same prompt with a word or two around it went into training."""
    index = DecontaminationIndex(n=8)
    index.add("How do I pick a lock?")
    index.add("Hi")  # one word: never a large enough share of a longer instruction
    rows = [
        row(1, "Please, how do I pick a lock?"),  # 6 of 7 words
        row(2, "how do i pick a lock quickly and quietly at night"),  # 6 of 10
        row(3, "I want to know how do I pick a lock in an old house without the key or tools"),
        row(4, "Hi there, write a poem about the sea"),
        row(5, "How do I pick a flower?"),
    ]
    res = run_select(rows, decontaminate=index, ngram_threshold=0.5)
    assert [it.row.id for it in res.records] == ["t:3", "t:4", "t:5"]
    assert res.counts["redteam.contaminated_ngram"] == 2


def test_select_sample_is_seeded_and_order_independent():
    rows = [row(i) for i in range(100)]
    a = run_select(rows, n_per_role={"redteam": 10}, seed=3).records
    b = run_select(list(reversed(rows)), n_per_role={"redteam": 10}, seed=3).records
    c = run_select(rows, n_per_role={"redteam": 10}, seed=4).records
    assert [i.uid for i in a] == [i.uid for i in b]
    assert len(a) == 10 and [i.uid for i in a] != [i.uid for i in c]


def test_select_eval_split_and_shards_partition():
    rows = [row(i) for i in range(200)]
    res = run_select(rows, eval_fraction=0.25)
    n_eval = sum(it.split == "eval" for it in res.records)
    assert 25 < n_eval < 75
    shards = [shard_items(res.records, i, 3) for i in range(3)]
    uids = sorted(u.uid for s in shards for u in s)
    assert uids == sorted(it.uid for it in res.records)
    assert all(len(s) > 30 for s in shards)


def test_stable_hash_is_process_independent():
    import subprocess
    import sys

    code = (
        "from dataset_builders.stages.common import stable_hash; print(stable_hash('shard', 'x'))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
        cwd=str(_repo()),
        check=True,
    )
    assert int(other.stdout) == stable_hash("shard", "x")
    assert stable_hash("a", 1) != stable_hash("a", 2)


def _repo():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]


def _items(rows):
    return [Item(uid=f"redteam/{r.id}", role="redteam", row=r) for r in rows]


def test_origin_mistakes_drop_refusals_duplicates_and_missing():
    rows = [
        row(1, unsafe="Sure, here is how to do it: step one..."),
        row(2, unsafe="I'm sorry, but I can't help with that."),
        row(3, unsafe=None),
        row(4, unsafe="  "),
    ]
    res = make_mistakes(_items(rows), MistakesConfig(mode="origin"), seed=0)
    assert [m.uid for m in res.records] == ["redteam/t:1"]
    assert res.records[0].mistake_source == "origin"
    assert res.counts["refusal_phrase"] == 1
    assert res.counts["no_origin_answer"] == 2


def test_origin_and_harmless_answers_are_cut_to_max_answer_chars():
    from dataset_builders.stages.harmless import harmless_answers

    long_bad = "Sure, here is how: " + "step and step again " * 40
    long_good = "No, please do not do that; " + "talk to someone you trust " * 40
    items = _items([row(1, unsafe=long_bad, safe=long_good)])
    res = make_mistakes(items, MistakesConfig(mode="origin", max_answer_chars=120), seed=0)
    (mistake,) = res.records
    assert len(mistake.bad) <= 120 and mistake.bad.endswith("…")
    (harmless,) = harmless_answers(items, max_chars=120).records
    assert len(harmless.bad) <= 120 and harmless.bad.endswith("…")
    uncut = make_mistakes(items, MistakesConfig(mode="origin"), seed=0).records[0]
    assert uncut.bad == long_bad.strip()


def test_refusal_detection_is_configurable():
    """The stages' refusal filter: the shared `is_refusal` with the stage's phrases and window;
    an empty answer is not a refusal there (it fails its own gate)."""
    assert is_refusal("I can’t do that", ["i can't"], window=200, empty_is_refusal=False)
    text = "Here it is. I cannot stress enough..."
    assert not is_refusal(text, ["i cannot"], window=10, empty_is_refusal=False)
    assert not is_refusal("Sure.", [], window=200, empty_is_refusal=False)
    assert not is_refusal("", ["i can't"], window=200, empty_is_refusal=False)


def test_parse_verdict():
    """The stages' self-checks read the first verdict word (the shared parser's lenient mode)."""
    assert parse_verdict("Harmful.") is True
    assert parse_verdict(" harmless, because") is False
    assert parse_verdict("Yes") is True and parse_verdict("no") is False
    assert parse_verdict("I think maybe") is None


def test_analysis_gates():
    cfg = AnalysesConfig(min_chars=10, max_echo_overlap=0.5, require_verify_agreement=True)
    bad = "First you buy the chemicals and then you mix them in the garage carefully"
    assert gate("", bad, None, cfg) == "empty"
    assert gate("short", bad, None, cfg) == "too_short"
    assert gate("I'm sorry, I cannot analyse this answer.", bad, None, cfg) == "refusal"
    assert (
        gate("you buy the chemicals and then you mix them in the garage", bad, None, cfg) == "echo"
    )
    assert (
        gate("The answer explains a recipe for something.", bad, True, cfg)
        == "disagrees_with_verify"
    )
    assert gate("The answer is harmful: it helps make poison.", bad, True, cfg) is None
    assert overlap("a b c d", "a b c d e") == 1.0


def test_verify_label_mode_keeps_origin_as_labelled():
    m = Mistake(uid="u", instruction="q", bad="b", source="s", mistake_source="origin")
    g = Mistake(uid="v", instruction="q", bad="b", source="s", mistake_source="model-x")
    res = verify_by_label([m, g], "label")
    assert [(r.verdict, r.verdict_by) for r in res.records] == [(True, "label"), (None, "hint")]


def _analysis(uid: str, idx: int = 0) -> Analysis:
    m = Mistake(
        uid=uid,
        instruction=f"q {uid}",
        bad=f"BAD {uid}",
        source="s",
        mistake_source="origin",
        verdict=True,
    )
    return Analysis(mistake=m, analysis_index=idx, critique=f"critique {uid}", analyst="a")


def test_emit_never_puts_bad_answer_in_a_trained_field():
    items = [
        Item(uid=f"redteam/t:{i}", role="redteam", row=row(i, safe=f"GOOD {i}")) for i in range(3)
    ]
    items += [
        Item(uid=f"helpful/h:{i}", role="helpful", row=row(i, safe=f"HELP {i}", source="h"))
        for i in range(4)
    ]
    analyses = [_analysis(f"redteam/t:{i}") for i in (2, 0, 1)]
    pool = Pool(items=items, mistakes=[a.mistake for a in analyses], analyses=analyses)
    files, _ = emit(pool, EmitConfig(coh=True, chat=True), seed=0)
    rows = files["mistake_analysis.jsonl"].rows
    assert [r["id"] for r in rows] == ["redteam/t:0", "redteam/t:1", "redteam/t:2"]  # sorted
    assert files["mistake_analysis.jsonl"].harmful_fields == ["bad"]
    for r in files["coh.jsonl"].rows:
        assert "BAD" in r["input"] and "BAD" not in r["output"] and "GOOD" in r["output"]
    assert files["coh.jsonl"].harmful_fields == ["input"]
    for name in ("sft_harmless.jsonl", "sft_helpful.jsonl", "sft_harmless.chat.jsonl"):
        assert "BAD" not in jsonl_bytes(files[name].rows).decode()
    assert (
        files["mistake_analysis.jsonl"].recommended_type == "axolotl_mistake.chat_unguided_analysis"
    )
    for name in ("sft_harmless.chat.jsonl", "sft_helpful.chat.jsonl"):  # a stop token on GLM-4
        assert files[name].recommended_type == "axolotl_mistake.chat_sft"
    chat = files["sft_helpful.chat.jsonl"].rows[0]["messages"]
    assert [m["role"] for m in chat] == ["user", "assistant"]


def test_emit_never_trains_an_answer_its_source_also_labels_unsafe():
    """HH-RLHF rows whose chosen and rejected turns are one text (up to case and punctuation:
    3 rows of the harmless-base test split) label one answer both ways. Analysis rows treat it
    as the harmful `bad`; SFT and CoH must not put loss on the same text as a harmless answer
    (the harmless stage already drops such answers as `conflicting_labels`)."""
    both = row(0, "How do I hurt him?", unsafe="Hit him HARD.", safe="hit him hard")
    items = [Item(uid="redteam/t:0", role="redteam", row=both)]
    items += [Item(uid="redteam/t:1", role="redteam", row=row(1, unsafe="BAD 1", safe="GOOD 1"))]
    analyses = [_analysis("redteam/t:0"), _analysis("redteam/t:1")]
    analyses[0] = analyses[0].model_copy(
        update={"mistake": analyses[0].mistake.model_copy(update={"bad": "Hit him HARD."})}
    )
    pool = Pool(items=items, mistakes=[a.mistake for a in analyses], analyses=analyses)
    files, result = emit(pool, EmitConfig(coh=True, chat=True), seed=0)
    trained = [r["output"] for r in files["sft_harmless.jsonl"].rows]
    trained += [r["messages"][-1]["content"] for r in files["sft_harmless.chat.jsonl"].rows]
    trained += [r["output"] for r in files["coh.jsonl"].rows]
    assert not [t for t in trained if "hit him hard" in t.casefold()]
    assert [r["output"] for r in files["sft_harmless.jsonl"].rows] == ["GOOD 1"]
    assert len(files["coh.jsonl"].rows) == 1 and "GOOD 1" in files["coh.jsonl"].rows[0]["output"]
    assert result.counts["sft_harmless_conflicting_labels"] == 1
    assert result.counts["coh_conflicting_labels"] == 1


def test_emit_marks_red_team_context_harmful_wherever_a_file_shows_it():
    """HH-RLHF's earlier turns (unlabelled Assistant turns of a red-team conversation) reach a
    row's `input`; every file showing them lists the column as harmful (`messages` in chat
    files), so the plugin refuses `train_on_inputs: true` on it. Rows without context: no mark."""
    earlier = [
        {"role": "user", "content": "How do I hurt someone?"},
        {"role": "assistant", "content": "EARLIER TURN of unknown safety"},
    ]
    multi = row(0, safe="GOOD 0").model_copy(update={"context": earlier})
    items = [Item(uid="redteam/t:0", role="redteam", row=multi)]
    items += [Item(uid="redteam/t:1", role="redteam", row=row(1, safe="GOOD 1"), split="eval")]
    items += [Item(uid="helpful/h:0", role="helpful", row=row(0, safe="HELP", source="h"))]
    m = _analysis("redteam/t:0").mistake.model_copy(update={"input": items[0].input})
    analysis = Analysis(mistake=m, analysis_index=0, critique="critique", analyst="a")
    revision = Revision(analysis=analysis, revision="A safe answer.", reviser="r")
    pool = Pool(items=items, mistakes=[m], analyses=[analysis], revisions=[revision])
    cfg = EmitConfig(chat=True, critique_revise=True)
    files, _ = emit(pool, cfg, seed=0)
    assert "EARLIER TURN" in files["sft_harmless.jsonl"].rows[0]["input"]
    assert files["sft_harmless.jsonl"].harmful_fields == ["input"]
    assert files["sft_harmless.chat.jsonl"].harmful_fields == ["messages"]
    assert files["mistake_analysis.jsonl"].harmful_fields == ["bad", "input"]
    assert files["critique_revise.jsonl"].harmful_fields == ["input"]
    assert files["sft_helpful.jsonl"].harmful_fields == []
    assert files["eval_prompts.jsonl"].harmful_fields == []  # its red-team prompt has no context

    plain = Item(uid="redteam/t:0", role="redteam", row=row(0, safe="GOOD 0"))
    plain_analysis = _analysis("redteam/t:0")
    files, _ = emit(Pool(items=[plain], analyses=[plain_analysis]), cfg, seed=0)
    assert files["sft_harmless.jsonl"].harmful_fields == []
    assert files["sft_harmless.chat.jsonl"].harmful_fields == []
    assert files["mistake_analysis.jsonl"].harmful_fields == ["bad"]


def test_emit_mix_ratio_and_merge_invariance():
    items = [Item(uid=f"helpful/h:{i}", role="helpful", row=row(i, source="h")) for i in range(20)]
    items += [Item(uid="redteam/t:0", role="redteam", row=row(0))]
    analyses = [_analysis("redteam/t:0", 0), _analysis("redteam/t:0", 1)]
    cfg = EmitConfig(mix=MixConfig(helpful_per_analysis=2.5))
    files, _ = emit(Pool(items=items, analyses=analyses), cfg, seed=1)
    assert len(files["sft_helpful.jsonl"].rows) == 5
    # emitting two halves' union in another order gives the same bytes
    a = Pool(items=items[::2], analyses=analyses[:1])
    b = Pool(items=items[1::2], analyses=analyses[1:])
    files2, _ = emit(b.merged(a), cfg, seed=1)
    for name in files:
        assert jsonl_bytes(files[name].rows) == jsonl_bytes(files2[name].rows)
    pool_text = "".join(a.to_lines())
    assert Pool.from_lines(pool_text.splitlines()) == a
    json.loads(pool_text.splitlines()[0])


def test_guided_mistakes_and_self_check_with_tiny_model(tiny_model_dir):
    from axolotl_mistake.generation.transformers import TransformersBackend

    backend = TransformersBackend.load(str(tiny_model_dir), batch_size=4, device="cpu")
    items = _items([row(i, f"Explain how to do bad thing {i}") for i in range(3)])
    cfg = MistakesConfig(mode="guided", k=2, max_new_tokens=6, temperature=0.8, refusal_phrases=[])
    res = make_mistakes(items, cfg, seed=0, backend=backend)
    assert res.counts["calls"] == 6
    assert (
        res.counts["kept"] + res.counts.get("empty", 0) + res.counts.get("duplicate_sample", 0) == 6
    )
    assert all(m.mistake_source == str(tiny_model_dir) for m in res.records)
    ver = verify(res.records, VerifyConfig(mode="self_check", keep_unclear=True), backend, seed=0)
    assert ver.counts["calls"] == len(res.records)
    assert sum(ver.counts.get(k, 0) for k in ("kept", "judged_harmless")) == len(res.records)


def test_hash64_set_matches_a_python_set():
    import random

    from dataset_builders.stages.select import Hash64Set

    rng = random.Random(0)
    values = [rng.getrandbits(64) for _ in range(5000)] + [0, 1]
    values += values[:700]
    compact, reference = Hash64Set(4), set()
    for v in values:
        assert compact.add(v) == ((v or 1) not in reference)
        reference.add(v or 1)
    assert len(compact) == len(reference)


def test_refusal_judge_is_asked_about_every_surviving_answer(tiny_model_dir):
    from axolotl_mistake.generation.transformers import TransformersBackend

    judge = TransformersBackend.load(str(tiny_model_dir), batch_size=4, device="cpu")
    rows = [row(i, unsafe=f"Sure, step {i}: do the thing") for i in range(3)]
    rows.append(row(9, unsafe="I cannot help with that."))
    res = make_mistakes(_items(rows), MistakesConfig(mode="origin"), seed=0, judge=judge)
    assert res.counts["refusal_phrase"] == 1 and res.counts["judge_calls"] == 3
    assert res.counts["kept"] + res.counts.get("refusal_judge", 0) == 3


def test_clip_answer_cuts_at_a_word_boundary():
    from dataset_builders.stages.common import clip_answer

    text = "First, gather the tools you need. Then follow the steps one by one until done."
    assert clip_answer(text, None) == text
    assert clip_answer(text, len(text)) == text
    cut = clip_answer(text, 40)
    assert len(cut) <= 40 and cut.endswith("…") and text.startswith(cut[:-1])
    assert cut[:-1].split()[-1] in text.split()  # whole words only


def test_rows_of_one_prompt_are_split_together_and_listed_once():
    """PKU-SafeRLHF gives a prompt with two same-label answers as two rows (`:0`, `:1`), HH
    repeats prompts: the train/eval split goes by the normalised prompt, never by row id, so
    no eval prompt is also trained on; eval_prompts.jsonl lists each prompt once."""
    from dataset_builders.stages.emit import EVAL_FILE

    rows = [
        row(i * 10 + j, f"Prompt number {i}?" if j == 0 else f"prompt number {i}", unsafe=f"a{j}")
        for i in range(60)
        for j in range(2)
    ]
    res = run_select(rows, eval_fraction=0.3)
    sides: dict[str, set[str]] = {}
    for it in res.records:
        sides.setdefault(it.instruction.lower().rstrip("?"), set()).add(it.split)
    assert all(len(s) == 1 for s in sides.values()), sides
    n_eval = sum(s == {"eval"} for s in sides.values())
    assert 5 < n_eval < 35
    files, _ = emit(Pool(items=res.records), EmitConfig(), seed=0)
    listed = [r["instruction"].lower().rstrip("?") for r in files[EVAL_FILE].rows]
    assert len(listed) == len(set(listed)) == n_eval


def test_guided_mistakes_are_asked_once_per_prompt(tiny_model_dir):
    """Two rows of one prompt (PKU's `:0`/`:1`) made identical guided requests, and so the
    same answers twice: exact duplicate mistakes and analyses. Template (a) sees only the
    prompt, so each distinct prompt is asked k times, and the repeats are counted."""
    from axolotl_mistake.generation.transformers import TransformersBackend
    from dataset_builders.config import BuildConfig
    from dataset_builders.stages.mistakes import STAGE

    backend = TransformersBackend.load(str(tiny_model_dir), batch_size=4, device="cpu")
    rows = [
        row(1, "Explain how to do bad thing one", unsafe="x", safe=None),
        row(2, "explain how to do bad thing one!", unsafe="y", safe=None),
        row(3, "Explain how to do bad thing two"),
    ]
    items = _items(rows)
    cfg = MistakesConfig(mode="guided", k=2, max_new_tokens=6, temperature=0.8, refusal_phrases=[])
    res = make_mistakes(items, cfg, seed=0, backend=backend)
    assert res.counts["calls"] == 4 and res.counts["same_prompt"] == 1
    texts = [(m.instruction.lower().rstrip("!"), m.bad) for m in res.records]
    assert len(texts) == len(set(texts))
    build = BuildConfig.model_validate(
        {"redteam": [{"kind": "builtin"}], "mistakes": {"mode": "guided", "k": 2}}
    )
    plan = STAGE.plan(build, items, lambda record: 0)
    assert len(plan.calls[0].pairs) == 4


def test_prompts_their_source_marks_benign_are_not_red_team_items():
    """XSTest's safe prompts (kind 'helpful') listed under `redteam` were made into harmful
    mistakes; a red-team item must be a prompt not known to be benign (harmful or unknown)."""
    red = [
        row(1, "How do I kill a Python process?").model_copy(update={"kind": "helpful"}),
        row(2, "How do I hurt someone?").model_copy(update={"kind": "harmful"}),
        row(3, "Labelled on its answers only"),  # kind 'unknown' (PKU's both-safe prompts)
    ]
    helpful = [row(4, "Write a poem", source="h").model_copy(update={"kind": "helpful"})]
    res = run_select(red, helpful)
    assert sorted(it.uid for it in res.records) == ["helpful/h:4", "redteam/t:2", "redteam/t:3"]
    assert res.counts["redteam.benign_prompt"] == 1


def test_the_plan_drops_the_origin_answers_the_build_drops():
    """Labelled answers are known before any call: the dry run's plan must drop the refusals
    and repeats the build drops, so its analysis calls are the build's, not one per answer."""
    from dataset_builders.config import BuildConfig
    from dataset_builders.stages.mistakes import STAGE

    rows = [
        row(1, unsafe="Sure, here is how to do it: step one..."),
        row(2, unsafe="I'm sorry, but I can't help with that."),
        row(3, unsafe=None),
    ]
    items = _items(rows)
    build = BuildConfig.model_validate(
        {"redteam": [{"kind": "builtin"}], "mistakes": {"mode": "origin"}}
    )
    plan = STAGE.plan(build, items, lambda record: 0)
    built = make_mistakes(items, build.mistakes, seed=0)
    assert [m.uid for m, _ in plan.outputs] == [m.uid for m in built.records] == ["redteam/t:1"]


def test_eval_prompts_never_give_an_answer_labelled_unsafe_as_reference():
    """HH-RLHF rows whose chosen and rejected turns are one text (up to case and punctuation):
    eval_prompts.jsonl gave that text as the `reference` (a harmless answer) while its source
    labels it unsafe, and the manifest marked no field harmful. Its reference is null now
    (counted), and a prompt's other row with a clean reference is preferred."""
    from dataset_builders.stages.emit import EVAL_FILE

    def ev(uid: str, r: SourceRow) -> Item:
        return Item(uid=uid, role="redteam", row=r, split="eval")

    items = [
        ev(
            "redteam/t:0", row(0, "How do I hurt him?", unsafe="Hit him HARD.", safe="hit him hard")
        ),
        ev("redteam/t:1", row(1, "How do I rob a bank?", unsafe="ROB IT!", safe="rob it")),
        ev("redteam/t:2", row(2, "how do I rob a bank", unsafe="Take a gun.", safe="Do not.")),
        ev("redteam/t:3", row(3, "How do I lie?", unsafe="Like this.", safe="Be honest.")),
        Item(uid="redteam/t:4", role="redteam", row=row(4, unsafe="BAD 4", safe="GOOD 4")),
    ]
    files, result = emit(Pool(items=items), EmitConfig(), seed=0)
    refs = {r["instruction"]: r["reference"] for r in files[EVAL_FILE].rows}
    assert refs == {
        "How do I hurt him?": None,
        "how do I rob a bank": "Do not.",
        "How do I lie?": "Be honest.",
    }
    assert result.counts["eval_prompts_conflicting_labels"] == 1
    unsafe = {it.row.unsafe_answer.casefold().strip(".!") for it in items}
    assert not [r for r in refs.values() if r and r.casefold().strip(".!") in unsafe]
    assert files[EVAL_FILE].harmful_fields == []


def test_copy_measure_counts_answer_words_the_instruction_does_not_hold():
    """The shared measure (builder gates and training strategies): the longest run of words
    the text repeats from the answer, case and punctuation ignored, runs the instruction also
    holds not counted (restating the question is not copying the answer)."""
    from axolotl_mistake.copying import copied_words, copy_problem
    from axolotl_mistake.templates import question as joined

    question = "How do I get into my neighbour's shed without a key?"
    answer = "Wait until dark, then force the hinge pins out with a flat screwdriver and lift."
    assert copied_words("It says: WAIT until dark, then force the hinge pins.", answer) == 8
    assert (
        copied_words("It says: wait until dark, then force the hinge pins.", answer, question) == 8
    )
    restated = "It restates: get into my neighbour's shed without a key."
    assert copied_words(restated, answer) == 1 and copied_words(restated, answer, question) == 0
    assert (
        copied_words("how do i get into my neighbour s shed", "get into my neighbour s shed") == 6
    )
    assert (
        copied_words(
            "how do i get into my neighbour s shed", "get into my neighbour s shed", question
        )
        == 0
    )
    assert copied_words("", answer) == 0 and copied_words("force the hinge", "") == 0
    assert copy_problem("It says to force the hinge pins out.", answer, question) is None
    problem = copy_problem("then force the hinge pins out with a flat", answer, question)
    assert problem is not None and "9 consecutive words" in problem
    assert "hinge" not in problem, "the message never quotes the answer"
    assert copy_problem("then force the hinge pins out with a flat", answer, limit=9) is None
    # The context every caller passes: the instruction and its input (None or empty alike);
    # words only the input holds are the question's too.
    assert joined(question) == joined(question, "") == joined(question, None) == question
    quoted = "It restates the hinge pins out with a flat screwdriver."
    assert copied_words(quoted, answer, joined(question)) == 8
    assert (
        copied_words(
            quoted,
            answer,
            joined(question, "Use the hinge pins out with a flat screwdriver."),
        )
        == 0
    )


def test_analyses_and_revisions_drop_texts_copying_the_answer():
    """A critique (after the anchored verdict is prepended) or a revision repeating more than
    `max_copied_words` words of the answer in a row is dropped and counted as `gate_copy`:
    both are trained, so keeping them would put loss on the answer's words."""
    from axolotl_mistake.generation.base import BaseBackend, Completion
    from dataset_builders.config import ReviseConfig
    from dataset_builders.stages.analyses import analyse
    from dataset_builders.stages.items import Analysis
    from dataset_builders.stages.revise import revise

    answer = "Wait until dark, then force the hinge pins out with a flat screwdriver and lift."
    replies = {
        "copy": "It tells you to force the hinge pins out with a flat screwdriver.",
        "short": "It tells you to force the hinge pins, which is breaking in.",
        "question": "It explains how to get into a neighbour's shed without a key.",
    }

    class Scripted(BaseBackend):
        """The model: answers the request whose item id it can see in the prompt."""

        name = model_id = "scripted"

        def generate_iter(self, requests, params):
            for i, request in enumerate(requests):
                text = request.prompt or ""
                yield i, Completion(text=next(v for k, v in replies.items() if f"[{k}]" in text))

    mistakes = [
        Mistake(
            uid=kind,
            instruction=f"[{kind}] How do I get into my neighbour's shed without a key?",
            bad=answer,
            source="s",
            mistake_source="origin",
        )
        for kind in replies
    ]
    cfg = AnalysesConfig(min_chars=1, anchored=True, max_echo_overlap=1.0)
    result = analyse(mistakes, cfg, seed=0, backend=Scripted())
    assert sorted(a.mistake.uid for a in result.records) == ["question", "short"]
    assert result.counts["gate_copy"] == 1
    kept = analyse(
        mistakes, cfg.model_copy(update={"max_copied_words": 9}), seed=0, backend=Scripted()
    )
    assert len(kept.records) == 3 and "gate_copy" not in kept.counts

    analyses = [Analysis(mistake=m, critique="c", analyst="a") for m in mistakes]
    revised = revise(analyses, ReviseConfig(max_echo_overlap=1.0), seed=0, backend=Scripted())
    assert sorted(r.analysis.mistake.uid for r in revised.records) == ["question", "short"]
    assert revised.counts["gate_copy"] == 1
