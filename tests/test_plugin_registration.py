"""The plugin acts exactly once whatever name it was registered under (Axolotl 0.19 and 0.21+).

Axolotl 0.21 registers every `axolotl.plugins` entry point for every config and then the names
in `plugins:`; a config naming `axolotl_mistake.MistakeAnalysisPlugin` therefore holds two
instances. Merging the args class twice was `TypeError: duplicate base class`.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from axolotl.integrations.base import PluginManager
from axolotl.integrations.config import merge_input_args

from axolotl_mistake.plugin import MistakeAnalysisPlugin, registered_instances
from axolotl_mistake.safety import plugin_listed

ENTRY_POINT_NAME = "axolotl_mistake.plugin.MistakeAnalysisPlugin"
SHORT_NAME = "axolotl_mistake.MistakeAnalysisPlugin"


@pytest.fixture
def manager(fresh_plugin_manager):
    return fresh_plugin_manager


def _ours(mgr: PluginManager) -> list[MistakeAnalysisPlugin]:
    return [p for p in mgr.plugins.values() if isinstance(p, MistakeAnalysisPlugin)]


@pytest.mark.parametrize(
    "names",
    [
        [ENTRY_POINT_NAME],
        [SHORT_NAME],
        [ENTRY_POINT_NAME, SHORT_NAME],  # 0.21: entry point, then the recipe's spelling
        [SHORT_NAME, ENTRY_POINT_NAME],
    ],
)
def test_one_args_class_whatever_the_spellings(manager, names):
    for name in names:
        manager.register(name)
    assert len(_ours(manager)) == len(names)  # Axolotl really holds every spelling
    args = [a for a in manager.get_input_args() if a.startswith("axolotl_mistake")]
    assert args == ["axolotl_mistake.args.MistakeAnalysisArgs"]
    _, input_config = merge_input_args()  # raised 'duplicate base class' before the fix
    assert "mistake_probe_pairs" in input_config.model_fields


def test_only_the_first_instance_acts(manager):
    manager.register(ENTRY_POINT_NAME)
    manager.register(SHORT_NAME)
    first, second = _ours(manager)
    assert registered_instances() == [first, second]
    assert first.primary() and not second.primary()
    cfg = {"plugins": [SHORT_NAME], "mistake_probe_pairs": "builtin", "datasets": []}
    assert first.active(cfg)
    assert not second.active(cfg)
    # the twin adds no callback and no card section: one probe, never two
    assert second.add_callbacks_post_trainer(cfg, trainer=object()) == []


def test_standalone_instance_acts(manager):
    plugin = MistakeAnalysisPlugin()  # not registered (a user's script, a test)
    assert plugin.primary()
    assert plugin.get_input_args() == "axolotl_mistake.args.MistakeAnalysisArgs"


@pytest.mark.parametrize(
    "name",
    [
        SHORT_NAME,
        ENTRY_POINT_NAME,
        "axolotl_mistake:MistakeAnalysisPlugin",
        "axolotl_mistake.plugin:MistakeAnalysisPlugin",
    ],
)
def test_every_spelling_counts_as_listed(name):
    assert plugin_listed({"plugins": [name]})


def test_entry_point_alone_stays_inert(manager):
    """Discovered through the entry point with no `mistake_*` key: does nothing."""
    manager.register(ENTRY_POINT_NAME)
    (plugin,) = _ours(manager)
    cfg = {"plugins": [], "datasets": [{"path": "x.jsonl", "type": "alpaca"}]}
    assert not plugin.active(cfg)
    assert plugin.add_callbacks_post_trainer(cfg, trainer=object()) == []


def test_a_strategy_without_the_plugin_warns_that_its_keys_are_ignored(
    manager, caplog, monkeypatch, embedded_tokenizer
):
    """Axolotl 0.19 with no `plugins:` entry drops every `mistake_*` key silently; the
    strategy is the only part of the package that runs, so it says so (once)."""
    from axolotl.utils.dict import DictDefault

    from axolotl_mistake import strategies_common, unguided_analysis

    monkeypatch.setattr(strategies_common, "_WARNED_NO_PLUGIN", [])
    cfg = DictDefault({"sequence_len": 256, "train_on_inputs": False})
    with caplog.at_level("WARNING", logger="axolotl_mistake"):
        unguided_analysis.load(embedded_tokenizer, cfg)
        unguided_analysis.load(embedded_tokenizer, cfg)
    said = [r.getMessage() for r in caplog.records if "without the plugin" in r.getMessage()]
    assert len(said) == 1 and "plugins: [axolotl_mistake.MistakeAnalysisPlugin]" in said[0]

    monkeypatch.setattr(strategies_common, "_WARNED_NO_PLUGIN", [])
    manager.register(SHORT_NAME)
    caplog.clear()
    with caplog.at_level("WARNING", logger="axolotl_mistake"):
        unguided_analysis.load(embedded_tokenizer, cfg)
    assert not [r for r in caplog.records if "without the plugin" in r.getMessage()]
