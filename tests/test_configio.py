"""The one config loader (axolotl_mistake.configio) on small schemas of its own and on the
build schema: located YAML errors, dotted overrides, refused repeats and conflicts, union tags
left out of error keys, polymorphic sections, help generated from descriptions."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from axolotl_mistake import configio
from axolotl_mistake.configio import COMMAND_LINE
from axolotl_mistake.errors import InputError


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    k: int = Field(1, ge=1, description="How many.")
    stop: list[str] = Field(default_factory=lambda: ["###"], description="Stop strings.")
    name: str = Field("x", description="A name.")


class Engine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["a", "b"] = Field("a", description="Which engine.")


class EngineB(Engine):
    kind: Literal["b"] = Field("b", description="Engine b.")
    url: str | None = Field(None, description="Where b lives.")


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int = Field(0, description="The seed.")
    dry_run: bool = Field(False, description="Plan only.")
    inner: Inner = Field(default_factory=Inner, description="A section.")
    backend: Literal["self"] | Inner = Field("self", description="self or a section.")
    engine: Engine = Field(default_factory=Engine, description="A polymorphic section.")


def err_of(fn, *args, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    return info.value


def test_dotted_overrides_types_and_bool_flags(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("seed: 3\ninner:\n  k: 4\n")
    loaded = configio.load(
        Schema,
        [
            "--config",
            str(path),
            "--inner.k",
            "2",
            "--dry-run",
            "--inner.stop",
            "###",
            "--inner.name=007",
        ],
    )
    cfg = loaded.config
    assert (cfg.seed, cfg.inner.k, cfg.dry_run, loaded.config_file) == (3, 2, True, str(path))
    assert cfg.inner.stop == ["###"] and cfg.inner.name == "007"  # strings never YAML-parsed
    # a key below a scalar ('self') turns it into a section
    cfg = configio.load(Schema, ["--backend.k", "5"]).config
    assert isinstance(cfg.backend, Inner) and cfg.backend.k == 5


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--seed", "1", "--seed", "2"], "seed"),
        (["--dry-run", "--dry_run", "false"], "dry_run"),
        (["--config", "a.yml", "--config", "b.yml"], "config"),
        (["--inner.k=1", "--inner.k", "2"], "inner.k"),
        (["--inner", "{k: 2}", "--inner.k", "3"], "inner"),
    ],
)
def test_repeated_or_conflicting_flags_are_refused(argv, flag):
    err = err_of(configio.parse_command_line, argv, Schema)
    assert err.file == COMMAND_LINE and err.field == flag
    assert "twice" in err.message


def test_unknown_key_and_positional_are_refused():
    err = err_of(configio.parse_command_line, ["--inner.kk", "2"], Schema)
    assert err.field == "inner.kk" and "unknown key" in err.message
    err = err_of(configio.parse_command_line, ["stray"], Schema)
    assert "stray" in err.message
    cli = configio.parse_command_line(["a", "b", "--seed", "1"], Schema, positionals=True)
    assert cli.positionals == ["a", "b"] and cli.overrides == {"seed": 1}


def test_polymorphic_section_takes_every_subclass_key():
    cli = configio.parse_command_line(["--engine.kind", "b", "--engine.url", "http://x"], Schema)
    assert cli.overrides == {"engine": {"kind": "b", "url": "http://x"}}
    assert "engine.url" in {row[0] for row in configio.help_rows(Schema)}


def test_yaml_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("seed: 1\ninner:\n  k: [1, 2\nother: 3\n")
    err = err_of(configio.read_yaml, bad)
    assert (err.file, err.line) == (str(bad), 4) and "invalid YAML" in err.message
    listy = tmp_path / "list.yml"
    listy.write_text("- a\n")
    assert "mapping" in err_of(configio.read_yaml, listy).message
    binary = tmp_path / "bin.yml"
    binary.write_bytes(b"seed: 1\nname: \xff\n")
    err = err_of(configio.read_yaml, binary)
    assert err.line == 2 and "UTF-8" in err.message
    assert "not found" in err_of(configio.read_yaml, tmp_path / "none.yml").message


def test_a_key_given_twice_is_refused_not_silently_dropped(tmp_path):
    """PyYAML keeps the last of two equal keys: a second `select:` block would erase the first."""
    dup = tmp_path / "dup.yml"
    dup.write_text("seed: 1\nselect:\n  redteam_n: 2\nother: 3\nselect:\n  helpful_n: 2\n")
    err = err_of(configio.read_yaml, dup)
    assert (err.file, err.line, err.field) == (str(dup), 5, "select")
    assert "twice" in err.message and "lines 2 and 5" in err.message
    nested = tmp_path / "nested.yml"
    nested.write_text("items:\n  - name: a\n    k: 1\n    k: 2\n")
    err = err_of(configio.read_yaml, nested)
    assert (err.line, err.field) == (4, "items.0.k")
    # the same key in two different mappings, anchors, aliases and merge keys are fine
    fine = tmp_path / "fine.yml"
    fine.write_text("base: &b {k: 1, j: 2}\na: {k: 1}\nb: {k: 2}\nc:\n  <<: *b\n  k: 3\nd: *b\n")
    assert configio.read_yaml(fine).data["c"] == {"k": 3, "j": 2}


def test_validation_errors_are_located(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("seed: 1\ninner:\n  name: n\n  kk: 2\n")
    err = err_of(configio.load, Schema, ["--config", str(path)])
    assert (err.file, err.line, err.field) == (str(path), 4, "inner.kk")
    assert "unknown key 'kk'" in err.message
    path.write_text("seed: 1\nbackend:\n  k: 0\n")
    err = err_of(configio.load, Schema, ["--config", str(path)])
    assert (err.line, err.field) == (3, "backend.k"), "union member tags are left out"
    # the same mistake on the command line is reported against the command line
    err = err_of(configio.load, Schema, ["--config", str(path), "--backend.k", "-1"])
    assert (err.file, err.line, err.field) == (COMMAND_LINE, None, "backend.k")


def test_help_is_generated_from_descriptions():
    text = configio.help_text(Schema, usage="usage: x", intro=["Intro."], footer=["Footer."])
    for key, _, _, desc in configio.help_rows(Schema):
        assert desc, key
        assert f"--{key} " in text or f"[{key}]" in text
    assert text.startswith("usage: x") and "Intro." in text and text.endswith("Footer.")
    assert "--inner.k  (int; default 1)" in text


class WithSets(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sets: dict[str, int] = Field(default_factory=dict, description="Named sets.")
    inner: Inner = Field(default_factory=Inner, description="A section.")


def test_a_mapping_given_whole_replaces_the_files_and_a_dotted_key_merges(tmp_path):
    """`--sets '{}'` clears the file's sets (it merged into them, clearing nothing); a whole
    section replaces the file's; `--sets.c 3` still adds one key to the file's mapping."""
    path = tmp_path / "c.yml"
    path.write_text("sets: {a: 1, b: 2}\ninner: {k: 4, name: y}\n")

    def load(*flags: str) -> WithSets:
        return configio.load(WithSets, ["--config", str(path), *flags]).config

    assert load("--sets", "{}").sets == {}
    assert load("--sets={c: 3}").sets == {"c": 3}
    assert load("--sets.c", "3").sets == {"a": 1, "b": 2, "c": 3}
    whole = load("--inner", "{k: 5}").inner
    assert (whole.k, whole.name) == (5, "x")
    assert load("--inner.k", "5").inner.name == "y"
    assert load().sets == {"a": 1, "b": 2}


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    revision: str | None = Field(None, description="A git revision.")
    limit: int | None = Field(None, description="At most this many.")


class Mixed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int = Field(0, description="The seed.")
    rate: float = Field(0.5, description="A rate.")
    flag: bool = Field(False, description="A switch.")
    words: list[str] = Field(default_factory=list, description="Phrases.")
    items: list[Item] = Field(default_factory=lambda: [Item()], description="Items.")


def test_command_line_values_mean_what_was_typed_not_yaml_1_1(tmp_path):
    """A flag's value is YAML, without YAML 1.1's surprises: `--seed 010` was octal 8 (while
    `--seed 09` was 9), `1:30` was 90, a date-like revision became a date, and yes/no/on/off
    inside a list became booleans that no string key accepts."""

    def load(*flags: str) -> Mixed:
        return configio.load(Mixed, list(flags)).config

    assert load("--seed", "010").seed == 10
    assert load("--seed=-010").seed == -10
    assert load("--items.0.limit", "010").items[0].limit == 10
    assert load("--rate", "1e-3").rate == 0.001
    assert load("--words", "[no, on, Yes, '###']").words == ["no", "on", "Yes", "###"]
    assert load("--items.0.revision", "2024-01-01").items[0].revision == "2024-01-01"
    assert configio.parse_command_line(["--seed", "1:30"], Mixed).overrides == {"seed": "1:30"}
    # what YAML means everywhere still works: numbers, hex, booleans, null, lists, mappings
    assert load("--seed", "0x10").seed == 16
    assert load("--rate", ".5").rate == 0.5
    assert load("--flag", "true").flag is True
    assert load("--flag", "no").flag is False  # a bool key still takes the words
    assert load("--flag", "on").flag is True
    assert load("--items.0.limit", "null").items[0].limit is None
    assert load("--items", "[{revision: abc, limit: 2}]").items[0].limit == 2


class FileSrc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["file"] = Field("file", description="Read a file.")
    path: str = Field(description="The file.")
    limit: int | None = Field(None, description="At most this many.")


class HubSrc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["hub"] = Field("hub", description="Read a Hub dataset.")
    hub_id: str = Field(description="The dataset.")
    limit: int | None = Field(None, description="At most this many.")


class PromptSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: FileSrc | HubSrc = Field(discriminator="kind", description="A source.")


class WithSets2(BaseModel):
    model_config = ConfigDict(extra="forbid")
    harmful: PromptSet | None = Field(None, description="A prompt set.")


def test_a_key_of_any_member_of_a_union_of_sections_is_a_key(tmp_path):
    """A section that is a union of unrelated models (the evaluator's `prompt_sets.*.source`,
    one model per source kind) takes the keys of every member: `--harmful.source.hub_id` was
    refused as an unknown key because only the first member's keys were known."""
    path = tmp_path / "c.yml"
    path.write_text("harmful:\n  source: {kind: hub, hub_id: a/b}\n")
    cfg = configio.load(WithSets2, ["--config", str(path), "--harmful.source.hub_id", "c/d"])
    assert cfg.config.harmful.source.hub_id == "c/d"
    cfg = configio.load(WithSets2, ["--harmful.source.kind", "hub", "--harmful.source.hub_id=007"])
    assert cfg.config.harmful.source.hub_id == "007"  # a string key, taken verbatim
    err = err_of(configio.parse_command_line, ["--harmful.source.nope", "1"], WithSets2)
    assert err.field == "harmful.source.nope" and "unknown key" in err.message


def test_a_key_missing_from_a_section_the_command_line_made_is_blamed_on_the_command_line(
    tmp_path,
):
    """`--harmful.source.kind file` makes a section the file never mentions; its missing `path`
    was reported at the config file's line 1, sending the user to a file with nothing to fix."""
    path = tmp_path / "c.yml"
    path.write_text("# prompts\n\nharmful: null\n")
    err = err_of(configio.load, WithSets2, ["--config", str(path), "--harmful.source.kind", "file"])
    assert (err.file, err.line, err.field) == (COMMAND_LINE, None, "harmful.source.path")
    assert "Field required" in err.message
    # a section the file wrote keeps its missing keys blamed on the file, at the section's line
    path.write_text("# prompts\n\nharmful:\n  source:\n    kind: file\n")
    err = err_of(configio.load, WithSets2, ["--config", str(path)])
    assert (err.file, err.line, err.field) == (str(path), 4, "harmful.source.path")
    err = err_of(configio.load, WithSets2, ["--config", str(path), "--harmful.source.limit", "2"])
    assert (err.file, err.line, err.field) == (str(path), 4, "harmful.source.path")


def test_a_later_error_about_a_section_the_command_line_made_is_blamed_on_it(tmp_path):
    """`locate` (a model that will not load, an API key not in the environment, raised after
    validation) put an error about a key of a section only flags made (`--analyses.backend.kind
    openai --analyses.backend.model m`, the default `api_key_env` unset) at line 1 of a config
    file that never mentions that section."""
    path = tmp_path / "c.yml"
    path.write_text("# build\n\nseed: 1\nanalyses:\n  k: 2\n")
    flags = ["analyses.backend.kind", "analyses.backend.model"]
    later = InputError("environment variable 'X' is not set", field="analyses.backend.api_key_env")
    err = configio.locate(later, str(path), flags)
    assert (err.file, err.line, err.field) == (COMMAND_LINE, None, "analyses.backend.api_key_env")
    # a key of a section the file wrote is still blamed on the file, at the section's line
    path.write_text("# build\n\nseed: 1\nanalyses:\n  backend:\n    kind: openai\n")
    err = configio.locate(later, str(path), ["analyses.backend.model"])
    assert (err.file, err.line, err.field) == (str(path), 5, "analyses.backend.api_key_env")
    err = configio.locate(later, str(path), [])
    assert (err.file, err.line) == (str(path), 5)


class MergeLike(BaseModel):
    model_config = ConfigDict(extra="forbid")
    output: str = Field(description="Where.")
    overwrite: bool = Field(False, description="Write into a folder made elsewhere.")


def test_a_bare_bool_flag_never_swallows_a_positional():
    """With positionals (the merge command's shard folders), `--overwrite 0 1` took the folder
    `0` as the flag's value: overwrite was off and shard 0 silently left out of the merge
    (`--overwrite shard_a shard_b` failed as 'not a boolean'). A value needs `=` there."""
    cli = configio.parse_command_line(
        ["--overwrite", "0", "1", "--output", "m"], MergeLike, config_flag=False, positionals=True
    )
    assert cli.positionals == ["0", "1"] and cli.overrides == {"overwrite": True, "output": "m"}
    cli = configio.parse_command_line(
        ["a", "--overwrite=false", "b"], MergeLike, config_flag=False, positionals=True
    )
    assert cli.positionals == ["a", "b"] and cli.overrides == {"overwrite": False}
    # without positionals a bool flag still takes the next word as its value
    cli = configio.parse_command_line(["--overwrite", "false"], MergeLike, config_flag=False)
    assert cli.overrides == {"overwrite": False}
