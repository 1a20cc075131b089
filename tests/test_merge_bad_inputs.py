"""Bad shard folders given to `python -m dataset_builders.merge`: each is refused with exit 2 and
one message naming the file (and line) and field at fault, never a traceback, and the output
folder is never created. The shards are hand-made (a manifest.json and state/pool.jsonl), as a
hand-edited, truncated or older build's folder would be; no model is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from axolotl_mistake.manifest import PRODUCED_BY
from dataset_builders.merge import main
from dataset_builders.stages.emit import Pool
from dataset_builders.stages.items import Item

CONFIG_HASH = "c0ffee" * 8


def item_line() -> str:
    """One valid pool line (an item), so a bad line after it is line 2."""
    item = Item.model_validate(
        {
            "uid": "u1",
            "role": "redteam",
            "row": {"id": "r1", "instruction": "How?", "source": "test"},
        }
    )
    return next(iter(Pool(items=[item]).to_lines()))


def make_shard(
    tmp: Path,
    name: str,
    shard: dict,
    *,
    pool: bytes = b"",
    config: dict | None = None,
) -> Path:
    """A shard folder as a finished build leaves it; `pool_sha256` null, as older builds
    recorded, so the pool is read whatever it holds."""
    folder = tmp / name
    (folder / "state").mkdir(parents=True)
    manifest = {
        "produced_by": PRODUCED_BY,
        "version": "0.0.0",
        "mistake_source": "origin",
        "analyst": "test",
        "prompt_format": "alpaca",
        "seed": 0,
        "shard": shard,
        "pool_sha256": None,
        "config_hash": CONFIG_HASH,
        "config": {} if config is None else config,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (folder / "state" / "pool.jsonl").write_bytes(pool)
    return folder


def run_merge(tmp: Path, shards: list[Path], capsys) -> tuple[int, str]:
    """The CLI's exit code and its stderr; the output folder must not exist afterwards."""
    out = tmp / "merged"
    code = main([*map(str, shards), "--output", str(out)])
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "\n" not in err, err
    assert not out.exists(), "nothing may be written for bad input"
    return code, err


def two_shards(tmp: Path, **first) -> list[Path]:
    return [
        make_shard(tmp, "s0", {"index": 0, "count": 2}, **first),
        make_shard(tmp, "s1", {"index": 1, "count": 2}),
    ]


def test_valid_hand_made_shards_pass_every_input_check(tmp_path, capsys):
    """The control: these shards are only refused for holding no training rows (exit 1)."""
    shards = two_shards(tmp_path, pool=item_line().encode())
    code, err = run_merge(tmp_path, shards, capsys)
    assert code == 1 and "no training rows" in err, err


@pytest.mark.parametrize(
    ("shard_fields", "bad", "field", "shown"),
    [
        # no index or count: a TypeError before
        ([{}, {"index": 1, "count": 2}], 0, "shard.count", []),
        # an index no build of that count makes: passed the set check before
        (
            [{"index": 0, "count": 2}, {"index": 1, "count": 2}, {"index": 5, "count": 2}],
            2,
            "shard.index",
            ["5"],
        ),
        # "2" against 2 read "shard count 2 differs from 2" before
        ([{"index": 0, "count": 2}, {"index": 1, "count": "2"}], 1, "shard.count", ["'2'"]),
        # differing counts: both values and the shard they differ from
        (
            [{"index": 0, "count": 2}, {"index": 1, "count": 3}],
            1,
            "shard.count",
            ["3", "2", "{s0}"],
        ),
    ],
    ids=["missing", "index-out-of-range", "count-as-string", "differing-counts"],
)
def test_a_bad_shard_field_is_named(tmp_path, capsys, shard_fields, bad, field, shown):
    shards = [
        make_shard(tmp_path, f"s{fields.get('index', i)}", fields)
        for i, fields in enumerate(shard_fields)
    ]
    code, err = run_merge(tmp_path, shards, capsys)
    assert code == 2, err
    assert str(shards[bad] / "manifest.json") in err and f"field '{field}'" in err, err
    for text in shown:
        assert text.format(s0=shards[0]) in err, err


def test_a_pool_line_that_is_not_json_is_named(tmp_path, capsys):
    shards = two_shards(tmp_path, pool=(item_line() + '{"kind": "item", "rec\n').encode())
    code, err = run_merge(tmp_path, shards, capsys)
    assert code == 2, err
    assert f"{shards[0] / 'state' / 'pool.jsonl'}:2" in err and "JSON" in err, err


def test_a_pool_line_of_an_unknown_kind_is_named(tmp_path, capsys):
    bad = json.dumps({"kind": "gadget", "record": {}}) + "\n"
    shards = two_shards(tmp_path, pool=(item_line() + bad).encode())
    code, err = run_merge(tmp_path, shards, capsys)
    assert code == 2, err
    assert f"{shards[0] / 'state' / 'pool.jsonl'}:2" in err and "field 'kind'" in err, err
    assert "'gadget'" in err, err


def test_a_pool_record_that_does_not_validate_is_named(tmp_path, capsys):
    bad = json.dumps({"kind": "item", "record": {"uid": "u2", "role": "villain", "row": {}}})
    shards = two_shards(tmp_path, pool=(item_line() + bad + "\n").encode())
    code, err = run_merge(tmp_path, shards, capsys)
    assert code == 2, err
    assert f"{shards[0] / 'state' / 'pool.jsonl'}:2" in err and "field 'record.role'" in err, err


def test_a_pool_that_is_not_utf8_is_named(tmp_path, capsys):
    shards = two_shards(tmp_path, pool=item_line().encode() + b'{"kind": "\xff"}\n')
    code, err = run_merge(tmp_path, shards, capsys)
    assert code == 2, err
    assert f"{shards[0] / 'state' / 'pool.jsonl'}:2" in err and "UTF-8" in err, err


def test_a_config_of_another_builder_version_is_named(tmp_path, capsys):
    shards = two_shards(tmp_path, config={"bogus_removed_key": 1})
    code, err = run_merge(tmp_path, shards, capsys)
    assert code == 2, err
    assert str(shards[0] / "manifest.json") in err, err
    assert "field 'config.bogus_removed_key'" in err and "rebuild" in err, err


def test_a_merge_into_a_folder_another_run_is_writing_stops(tmp_path, capsys):
    """merge took no folder lock: beside a build (or merge) writing into the same folder it
    cleared that run's temp files and interleaved their outputs. It stops now (exit 2)."""
    from tests.folder_holder import held_folder

    shards = two_shards(tmp_path, pool=item_line().encode())
    out = tmp_path / "merged"
    (out / "state").mkdir(parents=True)
    (out / "state" / "calls.sqlite").write_bytes(b"")  # what a killed build of ours leaves
    with held_folder(out) as temp:
        code = main([*map(str, shards), "--output", str(out)])
        err = capsys.readouterr().err.strip()
        assert code == 2, err
        assert f"error: {out}, field 'output': " in err and "writing into this folder" in err
        assert temp.read_text() == "being written"
    # the control: once nobody holds it, the same merge gets past the lock (to its refusal of
    # these hand-made shards, which hold no training rows)
    assert main([*map(str, shards), "--output", str(out)]) == 1
