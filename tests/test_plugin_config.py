"""The plugin's config keys and safety refusals, through Axolotl's real `load_cfg` on YAML files."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import yaml

pytest.importorskip("axolotl")

from axolotl.cli.config import load_cfg

from axolotl_mistake.fileio import file_sha256
from axolotl_mistake.plugin import MistakeAnalysisPlugin
from tests.axolotl_runner import CPU_SETTINGS
from tests.build_support import stub_manifest

FIXTURES = Path(__file__).parent / "fixtures"
PLUGIN = "axolotl_mistake.MistakeAnalysisPlugin"

CPU_KEYS = {
    **CPU_SETTINGS,
    "adapter": "lora",
    "lora_r": 8,
    "lora_alpha": 16,
    "lora_target_linear": True,
    "sequence_len": 256,
    "learning_rate": 0.0002,
    "micro_batch_size": 2,
    "num_epochs": 1,
    "val_set_size": 0,
}
"""A small CPU LoRA config around the dataset entries each test writes."""


def write_build_output(folder: Path) -> Path:
    """A folder laid out like the builder's output: rows + a manifest.json of the builder's own
    schema (`BuildManifest`)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "analysis_rows.jsonl", folder / "mistake_analysis.jsonl")
    shutil.copy(FIXTURES / "sft_rows.jsonl", folder / "sft_helpful.jsonl")
    shutil.copy(FIXTURES / "sft_rows.jsonl", folder / "sft_harmless.jsonl")
    coh = [
        {"instruction": r["instruction"], "input": r["bad"], "output": "A better answer."}
        for r in map(json.loads, (FIXTURES / "analysis_rows.jsonl").read_text().splitlines())
    ]
    (folder / "coh.jsonl").write_text("\n".join(json.dumps(r) for r in coh) + "\n")
    manifest = stub_manifest(
        {
            "mistake_analysis.jsonl": {
                "role": "mistake_analysis",
                "rows": 6,
                "harmful_fields": ["bad"],
                "recommended_type": "axolotl_mistake.unguided_analysis",
            },
            "sft_helpful.jsonl": {
                "role": "sft_helpful",
                "rows": 6,
                "harmful_fields": [],
                "recommended_type": "alpaca",
            },
            "sft_harmless.jsonl": {
                "role": "sft_harmless",
                "rows": 6,
                "harmful_fields": [],
                "recommended_type": "alpaca",
            },
            "coh.jsonl": {
                "role": "coh",
                "rows": 6,
                "harmful_fields": ["input"],
                "recommended_type": "alpaca",
            },
        },
        counts={"select": {"redteam": 6, "helpful": 6}, "analyses": {"kept": 6}},
    )
    (folder / "manifest.json").write_text(json.dumps(manifest.to_json(), indent=2))
    return folder


pytestmark = pytest.mark.usefixtures("fresh_plugin_manager")


@pytest.fixture
def workdir(tmp_path, monkeypatch, tiny_model_dir):
    monkeypatch.chdir(tmp_path)
    write_build_output(tmp_path / "data")
    return tmp_path


MISTAKE_DS = {
    "path": "data/mistake_analysis.jsonl",
    "ds_type": "json",
    "type": "axolotl_mistake.unguided_analysis",
}
SFT_DS = {"path": "data/sft_helpful.jsonl", "ds_type": "json", "type": "alpaca"}


def config_file(workdir: Path, tiny_model_dir: Path, **keys) -> Path:
    cfg = {
        "base_model": str(tiny_model_dir),
        "plugins": [PLUGIN],
        "datasets": [MISTAKE_DS, SFT_DS],
        "output_dir": str(workdir / "out"),
        **CPU_KEYS,
        **keys,
    }
    cfg = {k: v for k, v in cfg.items() if v is not None}
    path = workdir / "cfg.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_plugin_loads_and_its_keys_are_validated(workdir, tiny_model_dir, fresh_plugin_manager):
    cfg = load_cfg(
        str(
            config_file(
                workdir,
                tiny_model_dir,
                mistake_probe_pairs="builtin",
                mistake_probe_max_pairs=12,
                mistake_field_bad="bad",
            )
        )
    )
    # a plugin whose import fails is only logged by Axolotl: assert it is really registered
    assert isinstance(fresh_plugin_manager.plugins.get(PLUGIN), MistakeAnalysisPlugin)
    assert cfg.mistake_probe_pairs == "builtin"
    assert cfg.mistake_probe_max_pairs == 12
    assert cfg.mistake_field_bad == "bad"


def test_plugin_keys_are_type_checked(workdir, tiny_model_dir):
    with pytest.raises(Exception, match="mistake_probe_max_pairs"):
        load_cfg(str(config_file(workdir, tiny_model_dir, mistake_probe_max_pairs=0)))


def test_refuses_train_on_inputs(workdir, tiny_model_dir):
    with pytest.raises(Exception) as info:
        load_cfg(str(config_file(workdir, tiny_model_dir, train_on_inputs=True)))
    text = str(info.value)
    assert "train_on_inputs: true is not allowed" in text
    assert "axolotl_mistake.unguided_analysis" in text
    assert "Fix: set `train_on_inputs: false`" in text


@pytest.mark.parametrize(
    "bad_entry, expected",
    [
        (  # the bad answer as the trained output of a user-defined Alpaca-like format
            {
                "path": "data/mistake_analysis.jsonl",
                "ds_type": "json",
                "type": {
                    "field_instruction": "instruction",
                    "field_output": "bad",
                    "format": "{instruction}\n",
                    "no_input_format": "{instruction}\n",
                },
            },
            r"would put loss on \['bad'\]",
        ),
        (  # plain alpaca on the analysis file: not the recommended type, not known safe
            {"path": "data/mistake_analysis.jsonl", "ds_type": "json", "type": "alpaca"},
            r"not known to keep loss off",
        ),
        (  # a chat strategy we cannot inspect
            {"path": "data/mistake_analysis.jsonl", "ds_type": "json", "type": "chat_template"},
            r"not known to keep loss off",
        ),
        (  # the example: alpaca with the bad answer as output (Axolotl drops
            # field_output on string types, so it is refused as a type not built for the file)
            {
                "path": "data/mistake_analysis.jsonl",
                "ds_type": "json",
                "type": "alpaca",
                "field_output": "bad",
            },
            r"not known to keep loss off",
        ),
    ],
)
def test_refuses_loss_on_harmful_fields(workdir, tiny_model_dir, bad_entry, expected):
    path = config_file(workdir, tiny_model_dir, datasets=[bad_entry, SFT_DS])
    with pytest.raises(Exception) as info:
        load_cfg(str(path))
    text = str(info.value)
    assert __import__("re").search(expected, text), text
    assert "manifest.json" in text and "mistake_analysis.jsonl" in text
    assert "Fix: use `type: axolotl_mistake.unguided_analysis`" in text


def test_refuses_critique_column_remapped_to_bad_by_plugin_key(workdir, tiny_model_dir):
    path = config_file(workdir, tiny_model_dir, mistake_field_critique="bad")
    with pytest.raises(Exception, match=r"would put loss on \['bad'\]"):
        load_cfg(str(path))


def test_coh_file_is_fine_as_alpaca_but_not_with_train_on_inputs(workdir, tiny_model_dir):
    coh = {"path": "data/coh.jsonl", "ds_type": "json", "type": "alpaca"}
    load_cfg(str(config_file(workdir, tiny_model_dir, datasets=[coh, SFT_DS])))
    # train_on_inputs trains the prompt, whose `input` shows the bad answer: a sure hit
    with pytest.raises(Exception, match=r"would put loss on \['input'\]"):
        load_cfg(
            str(config_file(workdir, tiny_model_dir, datasets=[coh, SFT_DS], train_on_inputs=True))
        )


def test_coh_file_is_fine_as_alpaca_with_another_prompt_style(workdir, tiny_model_dir):
    """`alpaca:chat` is Axolotl's alpaca handler with another prompt style: the same trained
    columns as the recommended `alpaca`, so the plugin accepts it (and still refuses it with
    train_on_inputs, which trains the bad answer the prompt shows)."""
    coh = {"path": "data/coh.jsonl", "ds_type": "json", "type": "alpaca:chat"}
    load_cfg(str(config_file(workdir, tiny_model_dir, datasets=[coh, SFT_DS])))
    with pytest.raises(Exception, match=r"would put loss on \['input'\]"):
        load_cfg(
            str(config_file(workdir, tiny_model_dir, datasets=[coh, SFT_DS], train_on_inputs=True))
        )


def write_context_sft(folder: Path) -> None:
    """SFT files as the builder writes them from HH-RLHF: the red-team conversation's earlier
    turns in `input` (the chat file: in the user turn), marked harmful in the manifest."""
    rows = [
        {
            "instruction": f"And then what? {i}",
            "input": "Earlier conversation:\nHuman: ...\nAssistant: EARLIER TURN",
            "output": "I can't help with that.",
        }
        for i in range(4)
    ]
    chat = [
        {
            "messages": [
                {"role": "user", "content": f"{r['instruction']}\n{r['input']}"},
                {"role": "assistant", "content": r["output"]},
            ]
        }
        for r in rows
    ]
    files = {"sft_harmless.ctx.jsonl": rows, "sft_harmless.ctx.chat.jsonl": chat}
    for name, content in files.items():
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in content))
    manifest = json.loads((folder / "manifest.json").read_text())
    for name, (field, kind) in {
        "sft_harmless.ctx.jsonl": ("input", "alpaca"),
        "sft_harmless.ctx.chat.jsonl": ("messages", "chat_template"),
    }.items():
        manifest["files"][name] = {
            "role": "sft_harmless",
            "rows": 4,
            "harmful_fields": [field],
            "recommended_type": kind,
            "sha256": file_sha256(folder / name),
        }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


@pytest.mark.parametrize("chat_type", ["chat_template", "axolotl_mistake.chat_sft"])
def test_red_team_context_in_sft_files_gets_no_loss(workdir, tiny_model_dir, chat_type):
    """The HH earlier turns the builder marks harmful in SFT files: fine as built (alpaca or a
    chat type, prompt untrained), refused wherever the prompt side would get loss."""
    write_context_sft(workdir / "data")
    alpaca = {"path": "data/sft_harmless.ctx.jsonl", "ds_type": "json", "type": "alpaca"}
    chat = {"path": "data/sft_harmless.ctx.chat.jsonl", "ds_type": "json", "type": chat_type}

    def cfg(datasets, **keys):
        return str(config_file(workdir, tiny_model_dir, datasets=datasets, **keys))

    load_cfg(cfg([alpaca, SFT_DS]))
    load_cfg(cfg([chat, SFT_DS]))
    load_cfg(cfg([{**chat, "roles_to_train": ["assistant"]}, SFT_DS]))
    with pytest.raises(Exception, match=r"would put loss on \['input'\].*sft_harmless.ctx.jsonl"):
        load_cfg(cfg([alpaca, SFT_DS], train_on_inputs=True))
    with pytest.raises(Exception, match=r"would put loss on \['messages'\]"):
        load_cfg(cfg([chat, SFT_DS], train_on_inputs=True))
    with pytest.raises(Exception, match=r"would put loss on \['messages'\]"):
        load_cfg(cfg([{**chat, "roles_to_train": ["user", "assistant"]}, SFT_DS]))


def test_red_team_context_refused_even_when_plugin_is_only_discovered(workdir):
    """Axolotl 0.21 runs the check on every config: with none of the plugin's keys it still
    refuses the sure hit (train_on_inputs on a file whose `input` is marked harmful) and leaves
    the file as built alone."""
    from axolotl_mistake.safety import check_config

    write_context_sft(workdir / "data")
    alpaca = {"path": "data/sft_harmless.ctx.jsonl", "ds_type": "json", "type": "alpaca"}
    assert check_config({"datasets": [alpaca]}) == []
    with pytest.raises(ValueError, match=r"would put loss on \['input'\]"):
        check_config({"datasets": [alpaca], "train_on_inputs": True})


def test_directory_dataset_is_checked_file_by_file(workdir, tiny_model_dir):
    whole = {
        "path": "data",
        "ds_type": "json",
        "type": "alpaca",
        "data_files": ["mistake_analysis.jsonl"],
    }
    with pytest.raises(Exception, match="mistake_analysis.jsonl"):
        load_cfg(str(config_file(workdir, tiny_model_dir, datasets=[whole, SFT_DS])))


def test_safe_types_opt_in(workdir, tiny_model_dir):
    entry = {"path": "data/mistake_analysis.jsonl", "ds_type": "json", "type": "chat_template"}
    load_cfg(
        str(
            config_file(
                workdir,
                tiny_model_dir,
                datasets=[entry, SFT_DS],
                mistake_safe_types=["chat_template"],
            )
        )
    )


def test_warns_when_no_sft_data(workdir, tiny_model_dir, caplog):
    caplog.set_level(logging.WARNING, logger="axolotl_mistake")
    load_cfg(str(config_file(workdir, tiny_model_dir, datasets=[MISTAKE_DS])))
    assert any("no SFT data in the mix" in r.getMessage() for r in caplog.records)
    caplog.clear()
    load_cfg(str(config_file(workdir, tiny_model_dir)))
    assert not any("no SFT data" in r.getMessage() for r in caplog.records)


def test_inactive_plugin_does_nothing(workdir, tiny_model_dir, fresh_plugin_manager, caplog):
    """Discovered through the entry point (Axolotl 0.21) with none of its keys: no effect."""
    from importlib.metadata import entry_points

    from axolotl.integrations.config import merge_input_args
    from axolotl.utils.dict import DictDefault

    (ep,) = [e for e in entry_points(group="axolotl.plugins") if e.name == "mistake_analysis"]
    plugin = ep.load()()
    assert isinstance(plugin, MistakeAnalysisPlugin)
    fresh_plugin_manager.plugins[ep.value] = plugin
    _, with_plugin = merge_input_args()
    fresh_plugin_manager.plugins.clear()
    _, without_plugin = merge_input_args()
    assert with_plugin is not without_plugin

    # no mistake_* key, no strategy; even a builder file used as plain alpaca is left alone
    raw = {
        "base_model": str(tiny_model_dir),
        "datasets": [{"path": "data/mistake_analysis.jsonl", "ds_type": "json", "type": "alpaca"}],
        "output_dir": str(workdir / "out"),
        "train_on_inputs": True,
        **CPU_KEYS,
    }
    caplog.set_level(logging.INFO, logger="axolotl_mistake")
    a = with_plugin(**json.loads(json.dumps(raw))).model_dump(exclude_none=True)
    b = without_plugin(**json.loads(json.dumps(raw))).model_dump(exclude_none=True)
    assert a == b
    assert not [r for r in caplog.records if r.name.startswith("axolotl_mistake")]

    cfg = DictDefault({**raw, "output_dir": str(workdir / "out")})

    class Trainer:
        def create_model_card(self):
            return "original"

    trainer = Trainer()
    assert plugin.add_callbacks_post_trainer(cfg, trainer) == []
    plugin.post_trainer_create(cfg, trainer)
    assert "create_model_card" not in vars(trainer)
    plugin.post_train(cfg, None)
    assert not (workdir / "out" / "README.md").exists()


def test_active_when_listed_or_keys_set():
    from axolotl_mistake.safety import plugin_active

    assert plugin_active({"plugins": [PLUGIN]})
    assert plugin_active({"mistake_probe_pairs": "builtin"})
    assert plugin_active({"datasets": [MISTAKE_DS]})
    assert not plugin_active({"datasets": [SFT_DS]})
    assert not plugin_active({"plugins": [PLUGIN], "mistake_analysis": False})


def test_missing_probe_pairs_file_is_a_config_error(workdir, tiny_model_dir):
    with pytest.raises(Exception, match="mistake_probe_pairs: nowhere.jsonl is not a file"):
        load_cfg(str(config_file(workdir, tiny_model_dir, mistake_probe_pairs="nowhere.jsonl")))


def test_package_import_is_light_and_exports_the_plugin():
    """`import axolotl_mistake` must not pull in torch/axolotl; the plugin resolves lazily."""
    import subprocess
    import sys

    code = (
        "import sys, axolotl_mistake\n"
        "assert 'torch' not in sys.modules and 'axolotl' not in sys.modules, 'heavy import'\n"
        "from axolotl.integrations.base import load_plugin\n"
        "p = load_plugin('axolotl_mistake.MistakeAnalysisPlugin')\n"
        "assert type(p).__name__ == 'MistakeAnalysisPlugin'\n"
        "assert p.get_input_args() == 'axolotl_mistake.args.MistakeAnalysisArgs'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


CUSTOM_ON_BAD = {  # Axolotl's user-defined format, output column pointed at the harmful answers
    "field_instruction": "instruction",
    "field_output": "bad",
    "format": "### Q:\n{instruction}\n### A:\n",
    "no_input_format": "### Q:\n{instruction}\n### A:\n",
}


def _custom_entry(path: str) -> dict:
    return {"path": path, "ds_type": "json", "type": CUSTOM_ON_BAD}


@pytest.mark.parametrize("listed", [True, False])
def test_renamed_copy_is_recognised_by_content(
    workdir, tiny_model_dir, listed, fresh_plugin_manager
):
    """Copying mistake_analysis.jsonl under another name must not open a way to train on `bad`.

    Unlisted: as Axolotl 0.21 does, the entry point registers the plugin for every config."""
    if not listed:
        import axolotl
        from packaging.version import Version

        if Version(axolotl.__version__) < Version("0.20"):
            pytest.skip("Axolotl < 0.20 merges plugin keys only for plugins listed in the config")
        fresh_plugin_manager.register("axolotl_mistake.plugin.MistakeAnalysisPlugin")
    data = workdir / "data"
    manifest = json.loads((data / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        entry["sha256"] = file_sha256(data / name)
    (data / "manifest.json").write_text(json.dumps(manifest))
    shutil.copy(data / "mistake_analysis.jsonl", data / "renamed.jsonl")
    keys = {
        "plugins": [PLUGIN] if listed else None,
        "datasets": [_custom_entry("data/renamed.jsonl"), SFT_DS],
    }
    with pytest.raises(ValueError, match=r"would put loss on \['bad'\]"):
        load_cfg(str(config_file(workdir, tiny_model_dir, **keys)))


def test_copy_elsewhere_is_recognised_by_its_rows(workdir, tiny_model_dir):
    (workdir / "elsewhere").mkdir()
    shutil.copy(workdir / "data" / "mistake_analysis.jsonl", workdir / "elsewhere" / "x.jsonl")
    keys = {"datasets": [_custom_entry("elsewhere/x.jsonl"), SFT_DS]}
    with pytest.raises(ValueError, match=r"by its rows"):
        load_cfg(str(config_file(workdir, tiny_model_dir, **keys)))


def test_coh_rows_are_recognised_by_the_hindsight_phrase(workdir, tiny_model_dir):
    from axolotl_mistake.templates import coh_record

    row = coh_record(
        "How do I pick a lock?", "Use a tension wrench and ...", "I can't help with that."
    )
    (workdir / "coh_copy.jsonl").write_text(json.dumps(row) + "\n")
    entry = {
        "path": "coh_copy.jsonl",
        "ds_type": "json",
        "type": {**CUSTOM_ON_BAD, "field_output": "input"},
    }
    with pytest.raises(ValueError, match=r"would put loss on \['input'\]"):
        load_cfg(str(config_file(workdir, tiny_model_dir, datasets=[entry, SFT_DS])))


def test_empty_analysis_file_says_no_rows(workdir, tiny_model_dir):
    (workdir / "data" / "mistake_analysis.jsonl").write_text("")
    with pytest.raises(ValueError, match="has no rows"):
        load_cfg(str(config_file(workdir, tiny_model_dir)))


def test_an_empty_sft_or_baseline_file_is_refused_with_its_build_counts(workdir, tiny_model_dir):
    """Any dataset file without a row (the builder writes one when a stage it was asked for kept
    nothing): a clear refusal naming the manifest, not Axolotl's bare StopIteration later."""
    (workdir / "data" / "sft_helpful.jsonl").write_text("\n")
    with pytest.raises(ValueError, match=r"datasets\[1\].*has no rows.*manifest\.json"):
        load_cfg(str(config_file(workdir, tiny_model_dir)))


@pytest.mark.parametrize("value", [".nan", ".inf"])
def test_probe_threshold_must_be_finite(workdir, tiny_model_dir, value):
    path = config_file(workdir, tiny_model_dir, mistake_probe_pairs="builtin")
    path.write_text(path.read_text() + f"mistake_probe_threshold: {value}\n")
    with pytest.raises(ValueError, match="mistake_probe_threshold must be a finite number"):
        load_cfg(str(path))


def test_probe_pairs_file_is_validated_at_config_load(workdir, tiny_model_dir):
    (workdir / "pairs.jsonl").write_text('{"question": "q", "answer": "a", "harmful": "yes"}\n')
    path = config_file(workdir, tiny_model_dir, mistake_probe_pairs="pairs.jsonl")
    with pytest.raises(ValueError, match=r"mistake_probe_pairs: .*pairs.jsonl:1, field 'harmful'"):
        load_cfg(str(path))


def _pairs_file(path: Path, rows: list[tuple[str, str, bool]]) -> str:
    lines = [json.dumps({"question": q, "answer": a, "harmful": h}) for q, a, h in rows]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


PROBE_ROWS = [("How to hurt him?", "Hit him.", True), ("Name a colour.", "Blue.", False)]
CALIBRATION_ROWS = [("How to steal?", "Pick locks.", True), ("Say hi.", "Hi!", False)]


def test_calibrated_probe_threshold_with_training_side_pairs_loads(workdir, tiny_model_dir):
    path = config_file(
        workdir,
        tiny_model_dir,
        mistake_probe_pairs=_pairs_file(workdir / "probe.jsonl", PROBE_ROWS),
        mistake_probe_threshold="calibrated",
        mistake_probe_calibration_pairs=_pairs_file(workdir / "cal.jsonl", CALIBRATION_ROWS),
    )
    cfg = load_cfg(str(path))
    assert cfg["mistake_probe_threshold"] == "calibrated"
    callback = MistakeAnalysisPlugin().build_probe_callback(cfg, trainer=None)
    assert callback.calibration is not None and len(callback.calibration.pairs) == 2
    assert callback.probe.threshold == 0.0


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"mistake_probe_threshold": "calibrated"}, "needs `mistake_probe_calibration_pairs`"),
        ({"mistake_probe_calibration_pairs": "cal.jsonl"}, "is not 'calibrated'"),
        ({"mistake_probe_threshold": "fitted"}, "mistake_probe_threshold"),
    ],
)
def test_calibration_keys_must_go_together(workdir, tiny_model_dir, keys, message):
    _pairs_file(workdir / "cal.jsonl", CALIBRATION_ROWS)
    probe = _pairs_file(workdir / "probe.jsonl", PROBE_ROWS)
    path = config_file(workdir, tiny_model_dir, mistake_probe_pairs=probe, **keys)
    with pytest.raises(ValueError, match=message):
        load_cfg(str(path))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (CALIBRATION_ROWS + PROBE_ROWS[:1], r"1 pair\(s\) are also probe pairs"),
        (CALIBRATION_ROWS[:1], "not both labels"),
    ],
)
def test_calibration_pairs_must_be_disjoint_and_two_sided(workdir, tiny_model_dir, rows, message):
    path = config_file(
        workdir,
        tiny_model_dir,
        mistake_probe_pairs=_pairs_file(workdir / "probe.jsonl", PROBE_ROWS),
        mistake_probe_threshold="calibrated",
        mistake_probe_calibration_pairs=_pairs_file(workdir / "cal.jsonl", rows),
    )
    with pytest.raises(ValueError, match=f"mistake_probe_calibration_pairs: .*{message}"):
        load_cfg(str(path))


def test_a_misspelt_plugin_key_fails_the_config_load(workdir, tiny_model_dir):
    """Through Axolotl's real load_cfg: the key reaches the check before the schema drops it."""
    path = config_file(workdir, tiny_model_dir, mistake_probe_pair="builtin")
    with pytest.raises(Exception, match=r"did you mean mistake_probe_pairs"):
        load_cfg(str(path))


@pytest.mark.parametrize(
    ("rl", "kind", "extra"),
    [
        (  # DPO raises the likelihood of `chosen`: the harmful answer must never be it
            "dpo",
            {"field_prompt": "instruction", "field_chosen": "bad", "field_rejected": "critique"},
            {},
        ),
        (  # KTO trains toward the desirable completions: never the harmful answer
            "kto",
            {"field_prompt": "instruction", "field_completion": "bad", "field_label": "label"},
            {"remove_unused_columns": False},
        ),
    ],
)
def test_preference_training_on_the_harmful_answer_is_refused(
    workdir, tiny_model_dir, rl, kind, extra
):
    """A user-defined DPO/KTO type over the analysis file with the bad answer as what the model
    is trained toward: the type is a mapping, but not Axolotl's SFT format (no `field_output`)."""
    entry = {"path": "data/mistake_analysis.jsonl", "ds_type": "json", "type": kind}
    path = config_file(workdir, tiny_model_dir, datasets=[entry], rl=rl, **extra)
    with pytest.raises(ValueError, match=r"would put loss on \['bad'\]"):
        load_cfg(str(path))


@pytest.mark.parametrize(
    ("entry", "keys", "column"),
    [
        (  # `completion` trains every token of its `field`, whatever train_on_inputs says
            {"path": "data/mistake_analysis.jsonl", "ds_type": "json", "type": "completion"},
            {"field": "bad"},
            "bad",
        ),
        (  # `alpaca:<style>` is Axolotl's alpaca handler with another prompt style: with
            # train_on_inputs it trains the `input` that shows CoH's bad answer
            {"path": "data/coh.jsonl", "ds_type": "json", "type": "alpaca:chat"},
            {"train_on_inputs": True},
            "input",
        ),
    ],
)
def test_sure_hits_are_refused_with_the_plugin_switched_off(
    workdir, tiny_model_dir, entry, keys, column
):
    """`mistake_analysis: false` (or the plugin only discovered, as on Axolotl 0.21) still
    refuses a type that certainly trains a harmful column."""
    entry = {**entry, **{k: v for k, v in keys.items() if k == "field"}}
    path = config_file(
        workdir,
        tiny_model_dir,
        datasets=[entry, SFT_DS],
        mistake_analysis=False,
        train_on_inputs=keys.get("train_on_inputs"),
    )
    with pytest.raises(ValueError, match=rf"would put loss on \['{column}'\]"):
        load_cfg(str(path))


def test_probe_switched_on_without_pairs_is_a_config_error(workdir, tiny_model_dir):
    """`mistake_probe: true` alone would train with no probe and no word about it."""
    path = config_file(workdir, tiny_model_dir, mistake_probe=True)
    with pytest.raises(ValueError, match=r"mistake_probe: true needs `mistake_probe_pairs`"):
        load_cfg(str(path))
