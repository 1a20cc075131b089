"""README.md dataset card of a build output: what, how, counts, source licences, a warning.

Rendered from the manifest alone, so a merged output gets the same card a single run would.
Never reads data files or calls models.
"""

from __future__ import annotations

import json

from axolotl_mistake.manifest import HARMFUL_WARNING, BuildManifest

LICENCES = {
    "builtin": "Apache-2.0 (written by the axolotl-mistake project)",
    "pku_saferlhf": "CC BY-NC 4.0 (PKU-Alignment/PKU-SafeRLHF; non-commercial)",
    "hh_rlhf": "MIT (Anthropic/hh-rlhf)",
    "beavertails": "CC BY-NC 4.0 (PKU-Alignment/BeaverTails; non-commercial)",
    "alpaca": "CC BY-NC 4.0 (tatsu-lab/alpaca; non-commercial)",
    "xstest": "CC BY 4.0 (XSTest prompts)",
    "jsonl": "as the file's owner states (user-supplied)",
    "csv": "as the file's owner states (user-supplied)",
    "pairs": "as the file's owner states (user-supplied)",
    "safety_prompts": "Apache-2.0 (thu-coai/Safety-Prompts; for safety evaluation and research)",
}


def _analysis_lines(manifest: BuildManifest) -> list[str]:
    """How the analyses were written: anchored/balanced flags, rows per label, and the
    extension note when either goes beyond the paper."""
    anchored, balanced = manifest.anchored, manifest.balanced
    classes = manifest.analysis_classes
    lines = [
        f"- Label-anchored analyses: {'yes' if anchored else 'no'}; balanced: "
        f"{'yes' if balanced else 'no'}",
        f"- Analysis rows per label: harmful {classes.get('harmful', 0)}, harmless "
        f"{classes.get('harmless', 0)}",
    ]
    if anchored or balanced:
        lines.append(
            "- Label-anchored (and balanced) analyses are an **extension beyond the paper**: each "
            "critique opens with a fixed verdict sentence that matches the answer's dataset label "
            '("The answer is harmful." / "The answer is harmless."), and harmless answers are '
            "analysed too, so the model learns to tell harm apart instead of condemning every "
            "answer. The paper's recipe analyses harmful answers only, with template (b)."
        )
    return lines


def render_card(manifest: BuildManifest, datasets_yaml: str) -> str:
    """The dataset card text."""
    files = manifest.files
    counts = manifest.counts
    lines = [
        "# Mistake-analysis training data",
        "",
        f"> **Warning: harmful content.** {HARMFUL_WARNING}",
        "",
        "Built by `python -m dataset_builders.build` (axolotl-mistake "
        f"{manifest.version}) with the method of Chen et al., *Gaining Wisdom from "
        "Setbacks: Aligning Large Language Models via Mistake Analysis* (ICLR 2024): a model's "
        "own harmful answers (mistakes) are critiqued with a guided analysis prompt, and the "
        "model is then fine-tuned to write those critiques from an unguided prompt, mixed with "
        "ordinary SFT data. The bad answers are only context; no loss is put on them.",
        "",
        "## How it was made",
        "",
        f"- Mistake source: `{manifest.mistake_source}`",
        f"- Analyst: `{manifest.analyst}`",
        f"- Verification: `{manifest.config.get('verify', {}).get('mode')}`",
        *_analysis_lines(manifest),
        f"- Seed: {manifest.seed}; config hash `{manifest.config_hash[:16]}`",
        "",
        "## Files",
        "",
        "| file | role | rows | harmful fields | Axolotl type |",
        "|---|---|---|---|---|",
    ]
    for name, entry in files.items():
        harmful = ", ".join(entry.harmful_fields) or "none"
        lines.append(
            f"| `{name}` | {entry.role} | {entry.rows} | {harmful} | "
            f"{entry.recommended_type or '-'} |"
        )
    lines += ["", "## Counts per stage", "", "```json", json.dumps(counts, indent=2), "```", ""]
    lines += ["## Sources and licences", ""]
    for src in manifest.data:
        kind = src.get("kind", "?")
        rev = f" @ {src['revision']}" if src.get("revision") else ""
        lines.append(
            f"- {src.get('role')}: `{src.get('location')}`{rev} ({kind}) — licence: "
            f"{LICENCES.get(kind, 'see the source')}"
        )
    lines += [
        "",
        "Generated text inherits the terms of the model that wrote it "
        f"(`{manifest.analyst}`). Non-commercial source licences carry over to the files.",
        "",
        "## Use with Axolotl",
        "",
        "```yaml",
        datasets_yaml,
        "```",
        "",
    ]
    return "\n".join(lines)
