"""Stage 5, emit: turn the pool of items, mistakes, analyses and revisions into the training files.

Pure: returns file name -> rows and the manifest's file entries; the pipeline writes them
atomically. Rows are sorted by stable ids, so shards merged give the bytes one run gives.
Never puts a harmful answer where a trainer would put loss: it only ever sits in `bad` (analysis
rows) or `input` (CoH rows), and the manifest lists those fields as harmful. A red-team row's
own `input` (the earlier turns of an HH-RLHF red-team conversation, whose Assistant turns nobody
labelled) is listed as harmful too, in every file that shows it (`messages` in chat files: their
prompt turns), so `train_on_inputs: true` on them is refused like on CoH's `input`. Balanced builds
emit as many harmless as harmful analysis rows, chosen by a seeded hash of stable ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from axolotl_mistake import templates
from axolotl_mistake.errors import InputError
from axolotl_mistake.fileio import write_atomic
from axolotl_mistake.manifest import FileEntry, sha256_bytes
from axolotl_mistake.records import AnalysisRow
from dataset_builders.config import EmitConfig
from dataset_builders.stages.common import StageResult, normalise, stable_hash
from dataset_builders.stages.items import Analysis, Item, Mistake, Revision

ANALYSIS_FILE = "mistake_analysis.jsonl"
HARMLESS_FILE = "sft_harmless.jsonl"
HELPFUL_FILE = "sft_helpful.jsonl"
COH_FILE = "coh.jsonl"
REVISE_FILE = "critique_revise.jsonl"
EVAL_FILE = "eval_prompts.jsonl"
HARMLESS_CHAT_FILE = "sft_harmless.chat.jsonl"
HELPFUL_CHAT_FILE = "sft_helpful.chat.jsonl"
CHAT_SFT_TYPE = "axolotl_mistake.chat_sft"
"""The chat SFT files' Axolotl type: Axolotl's `chat_template`, plus the stop token a template
such as GLM-4's leaves out after the last reply (`axolotl_mistake/chat_sft.py`)."""
ALL_FILES = (
    ANALYSIS_FILE,
    HARMLESS_FILE,
    HELPFUL_FILE,
    COH_FILE,
    REVISE_FILE,
    EVAL_FILE,
    HARMLESS_CHAT_FILE,
    HELPFUL_CHAT_FILE,
)


class Pool(BaseModel):
    """Everything emit needs; a shard saves its pool so `merge` can emit the union."""

    model_config = ConfigDict(extra="forbid")

    items: list[Item] = Field(default_factory=list)
    mistakes: list[Mistake] = Field(default_factory=list)
    analyses: list[Analysis] = Field(default_factory=list)
    revisions: list[Revision] = Field(default_factory=list)

    def to_lines(self) -> Iterable[str]:
        """One JSON line per record, tagged with its kind."""
        for kind, records in (
            ("item", self.items),
            ("mistake", self.mistakes),
            ("analysis", self.analyses),
            ("revision", self.revisions),
        ):
            for record in records:
                yield (
                    json.dumps(
                        {"kind": kind, "record": record.model_dump(mode="json")},
                        ensure_ascii=False,
                        sort_keys=True,
                    )
                    + "\n"
                )

    @classmethod
    def from_lines(cls, lines: Iterable[str], *, file: str | None = None) -> Pool:
        """The pool `to_lines` wrote; an InputError naming `file`, the line and the field for a
        line that is not one of its records (a truncated or hand-edited pool)."""
        pool = cls()
        types = {
            "item": (Item, pool.items),
            "mistake": (Mistake, pool.mistakes),
            "analysis": (Analysis, pool.analyses),
            "revision": (Revision, pool.revisions),
        }
        for number, line in enumerate(lines, start=1):
            if line.strip():
                data = _pool_entry(line, set(types), file=file, line_no=number)
                model, target = types[data["kind"]]
                try:
                    target.append(model.model_validate(data["record"]))
                except ValidationError as exc:
                    err = exc.errors(include_url=False)[0]
                    where = ".".join(["record", *map(str, err["loc"])])
                    raise InputError(
                        f"not a valid {data['kind']} record: {err['msg']}; rebuild the shard",
                        file=file,
                        line=number,
                        field=where,
                    ) from None
        return pool

    def save(self, path: Path) -> str:
        """Write the pool to `path` atomically; its sha256, for the manifest `merge` checks."""
        text = "".join(self.to_lines())
        write_atomic(path, text)
        return sha256_bytes(text.encode("utf-8"))

    def merged(self, other: Pool) -> Pool:
        return Pool(
            items=self.items + other.items,
            mistakes=self.mistakes + other.mistakes,
            analyses=self.analyses + other.analyses,
            revisions=self.revisions + other.revisions,
        )


def _pool_entry(line: str, kinds: set[str], *, file: str | None, line_no: int) -> dict:
    """One pool line's {"kind", "record"} object, checked before its record is validated."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not a JSON line ({exc.msg}, column {exc.colno}); rebuild the shard",
            file=file,
            line=line_no,
        ) from None
    if not isinstance(data, dict):
        raise InputError("not a JSON object; rebuild the shard", file=file, line=line_no)
    if data.get("kind") not in kinds:
        raise InputError(
            f"unknown record kind {data.get('kind')!r} (one of {', '.join(sorted(kinds))}); "
            "rebuild the shard",
            file=file,
            line=line_no,
            field="kind",
        )
    if not isinstance(data.get("record"), dict):
        raise InputError(
            f"record must be an object, got {data.get('record')!r}; rebuild the shard",
            file=file,
            line=line_no,
            field="record",
        )
    return data


@dataclass
class FileSpec:
    """A manifest entry: what a file is and which of its fields hold harmful text."""

    role: str
    harmful_fields: list[str]
    recommended_type: str | None
    rows: list[dict] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        """The exact bytes of the file."""
        return jsonl_bytes(self.rows)

    def entry(self) -> FileEntry:
        """The manifest entry, with the sha256 of the file's bytes."""
        return FileEntry(
            role=self.role,
            rows=len(self.rows),
            harmful_fields=list(self.harmful_fields),
            recommended_type=self.recommended_type,
            sha256=sha256_bytes(self.to_bytes()),
        )


def _alpaca(item: Item, output: str) -> dict:
    return {"instruction": item.instruction, "input": item.input, "output": output}


def conflicting_labels(item: Item) -> bool:
    """True when the item's source labels its safe answer unsafe too (the same text up to case
    and punctuation, as HH-RLHF rows whose chosen and rejected turns are one text): that answer
    is analysed as a mistake, so it is never trained as a harmless one (SFT, CoH)."""
    good, bad = item.row.safe_answer, item.row.unsafe_answer
    return bool(good and bad and normalise(good) == normalise(bad))


def _chat(row: dict) -> dict:
    user = templates.question(row["instruction"], row["input"])
    return {
        "messages": [
            {"role": "user", "content": user},
            {"role": "assistant", "content": row["output"]},
        ]
    }


FROM_MISTAKE = (set(AnalysisRow.model_fields) & set(Mistake.model_fields)) - {"label"}
"""Fields an analysis row takes from its mistake under the same name (the text, where it came
from, the verdict); `label` only in balanced builds."""


def _analysis_row(a: Analysis, labelled: bool) -> dict:
    m = a.mistake
    return AnalysisRow(
        **m.model_dump(include=FROM_MISTAKE),
        critique=a.critique,
        id=m.uid,
        analysis_index=a.analysis_index,
        analyst=a.analyst,
        label=m.label if labelled else None,
    ).to_json()


def balance(analyses: list[Analysis], seed: int) -> list[Analysis]:
    """Equal numbers of harmful and harmless analyses: a seeded pick (by stable ids) from the
    larger class, order kept."""
    by_label: dict[str, list[Analysis]] = {"harmful": [], "harmless": []}
    for a in analyses:
        by_label[a.mistake.label].append(a)
    want = min(len(v) for v in by_label.values())
    keep: set[tuple] = set()
    for group in by_label.values():
        ranked = sorted(group, key=lambda a: stable_hash(seed, "balance", *a.sort_key))
        keep.update(a.sort_key for a in ranked[:want])
    return [a for a in analyses if a.sort_key in keep]


def red_team_context(rows: Iterable[dict], harmful: list[str], column: str = "input") -> list[str]:
    """`harmful`, plus `column` when any of these red-team-derived rows has a non-empty `input`:
    red-team context (earlier turns, an attack's payload) is text of unknown safety that a
    trainer must not put loss on, like the bad answer itself."""
    marked = any((r.get("input") or "").strip() for r in rows)
    return [*harmful, column] if marked and column not in harmful else list(harmful)


def _mix(
    rows: list[tuple[str, dict]], ratio: float | None, base: int, seed: int, name: str
) -> list[tuple[str, dict]]:
    """Keep round(ratio * base) rows, chosen by a seeded hash of their ids (order kept)."""
    if ratio is None:
        return rows
    want = min(len(rows), round(ratio * base))
    chosen = {
        uid for uid, _ in sorted(rows, key=lambda r: stable_hash(seed, "mix", name, r[0]))[:want]
    }
    return [r for r in rows if r[0] in chosen]


def emit(
    pool: Pool, cfg: EmitConfig, *, seed: int, balanced: bool = False
) -> tuple[dict[str, FileSpec], StageResult]:
    """File name -> FileSpec (rows + manifest entry), and counts. `balanced`: as many harmless
    as harmful analysis rows (the larger class downsampled), each row with its `label`."""
    result = StageResult(records=[])
    items = sorted(pool.items, key=lambda it: (it.role, it.uid))
    by_uid = {it.uid: it for it in items}
    analyses = sorted(pool.analyses, key=lambda a: a.sort_key)
    if balanced:
        for label in ("harmful", "harmless"):
            available = sum(1 for a in analyses if a.mistake.label == label)
            result.add(f"analyses_{label}_available", available)
        analyses = balance(analyses, seed)
    for label in ("harmful", "harmless"):
        result.add(f"analyses_{label}", sum(1 for a in analyses if a.mistake.label == label))
    files: dict[str, FileSpec] = {}

    analysis_type = (
        "axolotl_mistake.chat_unguided_analysis"
        if cfg.chat
        else "axolotl_mistake.unguided_analysis"
    )
    analysis_rows = [_analysis_row(a, balanced) for a in analyses]
    files[ANALYSIS_FILE] = FileSpec(
        "mistake_analysis", red_team_context(analysis_rows, ["bad"]), analysis_type, analysis_rows
    )
    n_analysis = len(analyses)

    sft: dict[str, list[tuple[str, dict]]] = {"redteam": [], "helpful": []}
    for it in items:
        good = (it.row.safe_answer or "").strip()
        if it.split != "train" or not good:
            continue
        if conflicting_labels(it):
            result.add(f"sft_{'harmless' if it.role == 'redteam' else it.role}_conflicting_labels")
            continue
        sft[it.role].append((it.uid, _alpaca(it, good)))
    harmless, helpful = sft["redteam"], sft["helpful"]
    result.add("sft_harmless_available", len(harmless))
    result.add("sft_helpful_available", len(helpful))
    harmless = _mix(harmless, cfg.mix.harmless_per_analysis, n_analysis, seed, "harmless")
    helpful = _mix(helpful, cfg.mix.helpful_per_analysis, n_analysis, seed, "helpful")
    harmless_rows = [r for _, r in harmless]
    files[HARMLESS_FILE] = FileSpec(
        "sft_harmless", red_team_context(harmless_rows, []), "alpaca", harmless_rows
    )
    files[HELPFUL_FILE] = FileSpec("sft_helpful", [], "alpaca", [r for _, r in helpful])
    if cfg.chat:
        files[HARMLESS_CHAT_FILE] = FileSpec(
            "sft_harmless",
            red_team_context(harmless_rows, [], "messages"),
            CHAT_SFT_TYPE,
            [_chat(r) for r in harmless_rows],
        )
        files[HELPFUL_CHAT_FILE] = FileSpec(
            "sft_helpful", [], CHAT_SFT_TYPE, [_chat(r) for _, r in helpful]
        )
    if cfg.coh:
        rows = []
        for m in sorted(pool.mistakes, key=lambda m: m.sort_key):
            item = by_uid.get(m.uid)
            good = (item.row.safe_answer or "").strip() if item else ""
            if not good:
                result.add("coh_no_good_answer")
                continue
            if conflicting_labels(item):
                result.add("coh_conflicting_labels")
                continue
            rows.append(templates.coh_record(m.instruction, m.bad, good, m.input))
        files[COH_FILE] = FileSpec("coh", ["input"], "alpaca", rows)
    if cfg.critique_revise:
        rows = [
            {
                "instruction": r.analysis.mistake.instruction,
                "input": r.analysis.mistake.input,
                "output": r.revision,
            }
            for r in sorted(pool.revisions, key=lambda r: r.sort_key)
        ]
        files[REVISE_FILE] = FileSpec("critique_revise", red_team_context(rows, []), "alpaca", rows)
    evals = distinct_eval_prompts(items)
    if evals:
        red_team_evals = [{"input": it.input} for it in evals if it.role == "redteam"]
        eval_rows = []
        for it in evals:
            # an answer its source labels unsafe too is no harmless reference: null, so the
            # file never holds a harmful-labelled answer (the manifest marks `reference` never)
            if conflicting_labels(it):
                result.add("eval_prompts_conflicting_labels")
            eval_rows.append(
                {
                    "id": it.uid,
                    "instruction": it.instruction,
                    "input": it.input,
                    "source": it.row.source,
                    "reference": _reference(it),
                }
            )
        files[EVAL_FILE] = FileSpec(
            "eval_prompts", red_team_context(red_team_evals, []), None, eval_rows
        )
    for name, spec in files.items():
        result.add(f"rows.{name}", len(spec.rows))
    return files, result


def _reference(item: Item) -> str | None:
    """An eval item's reference answer: its safe answer, unless its source labels that text
    unsafe too (`conflicting_labels`)."""
    return None if conflicting_labels(item) else item.row.safe_answer


def distinct_eval_prompts(items: Iterable[Item]) -> list[Item]:
    """One eval item per normalised prompt (rows of one prompt are held out together; listing
    each would count the prompt twice): the first by uid that has a reference answer (one its
    source does not also label unsafe), else the first."""
    chosen: dict[str, Item] = {}
    for it in items:
        if it.split != "eval":
            continue
        key = it.prompt_key
        held = chosen.get(key)
        if held is None or (_reference(held) is None and _reference(it) is not None):
            chosen[key] = it
    return list(chosen.values())


def jsonl_bytes(rows: Iterable[dict]) -> bytes:
    """The exact bytes of a JSONL file (UTF-8, one compact object per line, key order kept)."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def datasets_block(files: dict[str, FileSpec], folder: str) -> str:
    """The Axolotl `datasets:` YAML for the training files (chat or Alpaca)."""
    lines = ["datasets:"]
    order = [ANALYSIS_FILE, HARMLESS_FILE, HELPFUL_FILE]
    chat = HARMLESS_CHAT_FILE in files
    if chat:
        order = [ANALYSIS_FILE, HARMLESS_CHAT_FILE, HELPFUL_CHAT_FILE]
    for name in order:
        spec = files.get(name)
        if spec is None or not spec.rows or spec.recommended_type is None:
            continue
        lines.append(f"  - path: {folder}/{name}")
        lines.append("    ds_type: json")
        lines.append(f"    type: {spec.recommended_type}")
    return "\n".join(lines)


def datasets_block_from_manifest(files: dict[str, FileEntry], folder: str) -> str:
    """The same `datasets:` block, from a manifest's file entries (used by merge)."""
    specs = {
        name: FileSpec(e.role, e.harmful_fields, e.recommended_type, [{}] * e.rows)
        for name, e in files.items()
    }
    return datasets_block(specs, folder)
