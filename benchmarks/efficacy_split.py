"""The efficacy experiment's train / held-out split of the shared data, by prompt.

Every prompt goes to exactly one side, decided by a stable hash of its normalised text, so no
prompt (PKU-SafeRLHF, HH-RLHF, Alpaca) is trained on and evaluated. Files are copied in their
source's own row format into the experiment's work folder (never into the repository), where
the builder's and the evaluation's source loaders read them. Never used by the library itself.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from axolotl_mistake.fileio import write_atomic, write_json_atomic
from dataset_builders.stages.common import normalise, stable_hash

HH_HUMAN = re.compile(r"\n\nHuman:(.*?)(?=\n\nAssistant:|$)", re.DOTALL)


@dataclass(frozen=True)
class SplitSpec:
    """One shared file, how to find each row's prompt, and the share held out."""

    name: str
    relative: str
    heldout_share: float


SPECS = (
    SplitSpec("pku", "pku_saferlhf/test_sample.jsonl", 1 / 3),
    SplitSpec("hh", "hh_rlhf/harmless-base_test.jsonl.gz", 0.2),
    SplitSpec("alpaca", "alpaca/alpaca_5000_pr152.jsonl", 0.2),
)
SALT = "axolotl-mistake efficacy split v1"
# evaluation only (XSTest's safe prompts, for over-refusal): copied whole, so an edited shared
# copy is caught by the same check as the split files instead of being read in place
EVAL_ONLY = {"xstest_prompts.csv": "xstest/xstest_prompts.csv"}


def prompt_of(spec: SplitSpec, row: dict) -> str:
    """The text a row is split by: the prompt, the first human turn, the instruction."""
    if spec.name == "pku":
        return str(row["prompt"])
    if spec.name == "hh":
        match = HH_HUMAN.search(str(row["chosen"]))
        return match.group(1) if match else str(row["chosen"])
    return f"{row['instruction']}\n{row.get('input') or ''}"


def is_heldout(text: str, share: float) -> bool:
    """Stable, platform-independent side of a prompt (same on every machine and run)."""
    return stable_hash(SALT, normalise(text)) % 10_000 < share * 10_000


def _lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        yield from (line for line in handle if line.strip())


def _text(lines: list[str]) -> str:
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _rows(path: Path) -> Iterator[tuple[int, str, dict]]:
    """(line number, line, row) of a shared JSONL file; a line that is not a JSON object
    stops the run with one line naming the file and line."""
    number = 0
    try:
        for number, line in enumerate(_lines(path), 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"error: {path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise SystemExit(f"error: {path}:{number}: not a JSON object")
            yield number, line, row
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise SystemExit(f"error: {path}: cannot read ({exc})") from None


def plan_split(shared: Path) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """The split of the shared data, in memory: {file name: text} and the row counts."""
    files: dict[str, str] = {}
    counts: dict[str, dict[str, int]] = {}
    for spec in SPECS:
        source = shared / spec.relative
        if not source.is_file():
            raise SystemExit(f"error: shared data file not found: {source}")
        sides: dict[str, list[str]] = {"train": [], "heldout": []}
        prompts: dict[str, set[str]] = {"train": set(), "heldout": set()}
        for number, line, row in _rows(source):
            try:
                text = prompt_of(spec, row)
            except KeyError as exc:
                raise SystemExit(f"error: {source}:{number}: field {exc} is missing") from None
            side = "heldout" if is_heldout(text, spec.heldout_share) else "train"
            sides[side].append(line)
            prompts[side].add(normalise(text))
        assert not prompts["train"] & prompts["heldout"], "a prompt landed on both sides"
        for side, lines in sides.items():
            files[f"{spec.name}_{side}.jsonl"] = _text(lines)
        counts[spec.name] = {
            "train_rows": len(sides["train"]),
            "heldout_rows": len(sides["heldout"]),
            "train_prompts": len(prompts["train"]),
            "heldout_prompts": len(prompts["heldout"]),
        }
    redteam, counts["redteam_heldout"] = redteam_heldout(
        files["pku_heldout.jsonl"], files["hh_heldout.jsonl"]
    )
    files["redteam_heldout.jsonl"] = redteam
    for name, relative in EVAL_ONLY.items():
        source = shared / relative
        try:
            files[name] = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SystemExit(f"error: {source}: cannot read ({exc})") from None
    return files, counts


def split_shared(shared: Path, out: Path) -> dict[str, dict[str, int]]:
    """Write <name>_train.jsonl / <name>_heldout.jsonl under `out`; return the row counts.

    Resumable: a finished split (split.json) whose files are what the shared data split into
    now is kept untouched (file times too, so nothing downstream reruns). A split that no
    longer matches (the shared data changed, or a file was edited) stops the run: everything
    built, trained and evaluated in this folder came from the old files, so it needs a new
    work folder, not a quiet re-split under results that would then look current. A file the
    finished split does not list (one added to the split since, as the XSTest copy was) is
    written: nothing here was made from it.
    """
    out.mkdir(parents=True, exist_ok=True)
    summary = out / "split.json"
    files, counts = plan_split(shared)
    done = summary.exists()
    listed = _listed(summary, files) if done else set(files)
    for name, text in files.items():
        path = out / name
        if path.is_file() and path.read_bytes() == text.encode("utf-8"):
            continue
        if done and (name in listed or path.exists()):
            raise SystemExit(
                f"error: {path} is not the split of {shared} (the shared data or the file "
                "changed since this work folder was split); the builds, adapters and "
                "evaluations here were made from the old files: use a new --work folder"
            )
        write_atomic(path, text)
    if not done or listed != set(files):  # last: marks the split done
        write_json_atomic(summary, {"salt": SALT, "rows": counts, "files": sorted(files)})
    return counts


def _listed(summary: Path, files: dict[str, str]) -> set[str]:
    """The files a finished split holds: split.json's list, or for a split made before the
    list was kept, every planned file but the evaluation-only copies added since."""
    try:
        recorded = json.loads(summary.read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if isinstance(recorded, list):
        return {str(name) for name in recorded}
    return set(files) - set(EVAL_ONLY)


def redteam_heldout(pku_heldout: str, hh_heldout: str) -> tuple[str, dict[str, int]]:
    """Held-out red-team prompts of both sources in one file (`instruction`, `origin`), PKU
    first: what the harmless rate is measured on. HH contributes its last human turn."""
    rows: list[str] = []
    seen: set[str] = set()
    for line in pku_heldout.splitlines():
        prompt = str(json.loads(line)["prompt"])
        if normalise(prompt) not in seen:
            seen.add(normalise(prompt))
            rows.append(json.dumps({"instruction": prompt, "origin": "pku_saferlhf"}))
    n_pku = len(rows)
    for line in hh_heldout.splitlines():
        turns = HH_HUMAN.findall(str(json.loads(line)["chosen"]))
        prompt = turns[-1].strip() if turns else ""
        if prompt and normalise(prompt) not in seen:
            seen.add(normalise(prompt))
            rows.append(json.dumps({"instruction": prompt, "origin": "hh_rlhf"}))
    return _text(rows), {"pku_prompts": n_pku, "hh_prompts": len(rows) - n_pku}
