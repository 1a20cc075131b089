"""The model card section: rendered from a manifest, merged once, Axolotl's card kept."""

from __future__ import annotations

import json

from axolotl_mistake.model_card import BEGIN, END, merge_section, render_section, write_card_section

MANIFEST = {
    "produced_by": "axolotl-mistake",
    "version": "0.1.0",
    "mistake_source": "guided",
    "analyst": {"kind": "transformers", "model": "embedded"},
    "counts": {"analyses": {"kept": 5, "dropped": 1}},
    "files": {
        "mistake_analysis.jsonl": {
            "role": "mistake_analysis",
            "rows": 5,
            "harmful_fields": ["bad"],
        },
        "sft_helpful.jsonl": {"role": "sft_helpful", "rows": 7, "harmful_fields": []},
    },
}


def test_section_lists_source_analyst_counts_files_and_warning():
    text = render_section(MANIFEST, "manifest.json")
    assert text.startswith(BEGIN) and text.rstrip().endswith(END)
    assert "| Mistake source | guided |" in text
    assert "| Analyst (critique writer) | embedded (transformers) |" in text
    assert "kept: 5" in text and "dropped: 1" in text
    assert "| mistake_analysis.jsonl | mistake_analysis | 5 | bad |" in text
    assert "| sft_helpful.jsonl | sft_helpful | 7 | none |" in text
    assert "Harmful-content note" in text


def test_merge_keeps_the_card_and_replaces_its_own_section():
    card = "---\nlibrary_name: peft\n---\n# out\n\nBuilt with Axolotl\n"
    once = merge_section(card, render_section(MANIFEST))
    assert once.startswith(card)
    changed = dict(MANIFEST, mistake_source="origin")
    twice = merge_section(once, render_section(changed))
    assert twice.count(BEGIN) == 1 and twice.count(END) == 1
    assert "| Mistake source | origin |" in twice and "| Mistake source | guided |" not in twice
    assert twice.startswith(card)


def test_write_card_section_creates_or_updates_readme(tmp_path):
    manifest = tmp_path / "data" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text(json.dumps(MANIFEST))
    out = tmp_path / "out"
    card = write_card_section(out, manifest)
    assert card == out / "README.md" and "## Mistake-analysis training data" in card.read_text()
    card.write_text("# Axolotl card\n" + card.read_text())
    write_card_section(out, manifest)
    text = card.read_text()
    assert text.startswith("# Axolotl card\n") and text.count(BEGIN) == 1
    assert [p.name for p in out.iterdir()] == ["README.md"]  # no temp files left behind


def test_training_settings_are_listed():
    text = render_section(
        MANIFEST, training={"Hint words (template a)": "rude and unkind", "x": None}
    )
    assert "| Hint words (template a) | rude and unkind |" in text
    assert "| x |" not in text


def test_plugin_says_card_written_once_per_change(tmp_path, caplog):
    """Axolotl calls the card hook up to three times per run: one log line per actual change."""
    import logging

    from axolotl.utils.dict import DictDefault

    from axolotl_mistake.plugin import MistakeAnalysisPlugin

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(MANIFEST))
    out = tmp_path / "out"
    cfg = DictDefault(
        plugins=["axolotl_mistake.MistakeAnalysisPlugin"],
        datasets=[{"path": "rows.jsonl", "type": "axolotl_mistake.unguided_analysis"}],
        mistake_manifest=str(manifest),
        output_dir=str(out),
    )
    plugin = MistakeAnalysisPlugin()
    caplog.set_level(logging.INFO, logger="axolotl_mistake")
    for _ in range(3):
        plugin.post_train(cfg, None)
    written = [r for r in caplog.records if "model card section written" in r.getMessage()]
    assert len(written) == 1
    assert (out / "README.md").read_text().count(BEGIN) == 1


def test_a_card_with_markers_out_of_order_is_merged_not_crashed():
    """A user's card that mentions the end marker before any section (or has a begin marker
    left without its end) gets the section appended once, and a rerun replaces that section
    only: never a ValueError at the end of training, never the user's text between an orphan
    marker and the section dropped."""
    section = render_section(MANIFEST)
    card = f"# Model\n\nNotes about {END} markers.\n\n{BEGIN} (orphan)\n\nMy own text.\n"
    once = merge_section(card, section)
    assert once.startswith(card) and once.count(section.strip()) == 1
    changed = render_section(dict(MANIFEST, mistake_source="origin"))
    twice = merge_section(once, changed)
    assert twice.startswith(card) and "My own text." in twice
    assert twice.count(BEGIN) == 2 and changed.strip() in twice and section.strip() not in twice


def test_a_card_that_is_not_utf8_is_left_as_is_with_a_warning(tmp_path, caplog):
    """Written after training: a README.md in another encoding raised UnicodeDecodeError out
    of post_train, after the model was trained."""
    (tmp_path / "manifest.json").write_text(json.dumps(MANIFEST))
    card = tmp_path / "out" / "README.md"
    card.parent.mkdir()
    card.write_bytes("# Modèle\n".encode("latin-1"))
    with caplog.at_level("WARNING", logger="axolotl_mistake.model_card"):
        assert write_card_section(tmp_path / "out", tmp_path / "manifest.json") is None
    assert card.read_bytes() == "# Modèle\n".encode("latin-1")
    assert "model card left as is (UnicodeDecodeError" in caplog.text


def test_a_symlinked_card_stays_a_link_and_its_target_gets_the_section(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps(MANIFEST))
    target = tmp_path / "shared_card.md"
    target.write_text("# Shared card\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "README.md").symlink_to(target)
    assert write_card_section(out, tmp_path / "manifest.json") == target
    assert (out / "README.md").is_symlink()
    text = target.read_text()
    assert text.startswith("# Shared card\n") and BEGIN in text
