"""End-to-end builds against a real OpenAI-compatible server on 127.0.0.1 (tiny model behind it):
real data from ../shared/data, resume after SIGKILL, faults, shard + merge, cache, dry run.

The server is tests/openai_server.py in front of the transformers backend on tiny_model_dir;
the build's openai backend talks to it over HTTP. One request per forward pass
(max_batch_requests=1) keeps greedy answers independent of batching, so reruns are comparable.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from dataset_builders.build import main
from dataset_builders.stages.emit import ALL_FILES
from tests.build_support import SERVED, server, tiny_backend, with_overrides  # noqa: F401
from tests.openai_server import FaultPlan, start_openai_server

REPO = Path(__file__).resolve().parents[1]


def build_config(shared: Path, base_url: str, out: Path, **over) -> dict:
    """Origin mistakes from real HH-RLHF + PKU rows, analyses from the served model."""
    cfg = {
        "output": str(out),
        "seed": 7,
        "progress": False,
        "model": {
            "kind": "openai",
            "base_url": base_url,
            "model": SERVED,
            "concurrency": 1,
            "timeout_s": 20,
            "max_retries": 3,
            "retry_backoff_s": 0.01,
        },
        "redteam": [
            {
                "kind": "hh_rlhf",
                "path": str(shared / "hh_rlhf" / "harmless-base_test.jsonl.gz"),
                "limit": 40,
            },
            {
                "kind": "pku_saferlhf",
                "path": str(shared / "pku_saferlhf" / "test_sample.jsonl"),
                "limit": 40,
            },
        ],
        "helpful": [
            {
                "kind": "alpaca",
                "path": str(shared / "alpaca" / "alpaca_5000_pr152.jsonl"),
                "limit": 50,
            }
        ],
        "select": {"redteam_n": 6, "helpful_n": 5},
        "mistakes": {"mode": "origin"},
        "analyses": {
            "max_new_tokens": 8,
            "min_chars": 1,
            "max_echo_overlap": 1.0,
            "stop": [],
            "temperature": 1.0,
        },
        "emit": {"coh": True},
    }
    return with_overrides(cfg, over)


def write_cfg(tmp: Path, cfg: dict, name: str = "build.yml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def outputs(folder: Path) -> dict[str, bytes]:
    return {n: (folder / n).read_bytes() for n in ALL_FILES if (folder / n).exists()}


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def test_real_data_build_through_openai_server(shared_data, server, tmp_path, capsys):
    out = tmp_path / "out"
    cfg = write_cfg(tmp_path, build_config(shared_data, server.base_url, out))
    before = server.requests_seen
    assert main(["--config", str(cfg)]) == 0
    printed = capsys.readouterr().out
    m = manifest(out)
    rows = [json.loads(x) for x in (out / "mistake_analysis.jsonl").read_text().splitlines()]
    assert 0 < len(rows) <= 6
    sources = {r["source"].split(":")[0] for r in rows}
    assert sources <= {"hh_rlhf", "pku_saferlhf"}
    assert all(
        r["mistake_source"] == "origin" and r["analyst"] == SERVED and r["bad"] for r in rows
    )
    # every analysis came over HTTP from the server
    assert server.requests_seen - before == m["counts"]["analyses"]["calls"] == m["calls"]["misses"]
    assert m["produced_by"] == "axolotl-mistake"
    # HH-RLHF's earlier turns (red-team context) are marked wherever a file shows them
    context = ["input"] if any(r["input"] for r in rows) else []
    assert m["files"]["mistake_analysis.jsonl"]["harmful_fields"] == ["bad", *context]
    harmless = [json.loads(x) for x in (out / "sft_harmless.jsonl").read_text().splitlines()]
    context = ["input"] if any(r["input"] for r in harmless) else []
    assert m["files"]["sft_harmless.jsonl"]["harmful_fields"] == context
    assert (
        m["files"]["mistake_analysis.jsonl"]["recommended_type"]
        == "axolotl_mistake.unguided_analysis"
    )
    assert m["files"]["coh.jsonl"]["harmful_fields"] == ["input"]
    assert m["files"]["sft_helpful.jsonl"]["rows"] == 5
    assert {d["kind"] for d in m["data"]} == {"hh_rlhf", "pku_saferlhf", "alpaca"}
    for r in (json.loads(x) for x in (out / "coh.jsonl").read_text().splitlines()):
        assert not any(
            b["bad"] in r["output"] for b in rows if b["instruction"] == r["instruction"]
        )
    assert "type: axolotl_mistake.unguided_analysis" in printed and "type: alpaca" in printed
    assert "Warning: harmful content" in (out / "README.md").read_text()
    assert "CC BY-NC 4.0" in (out / "README.md").read_text()


def test_rerun_repeats_no_call(shared_data, server, tmp_path):
    out = tmp_path / "out"
    cfg = write_cfg(
        tmp_path,
        build_config(
            shared_data,
            server.base_url,
            out,
            **{"verify.mode": "self_check", "verify.keep_unclear": True},
        ),
    )
    assert main(["--config", str(cfg)]) == 0
    first = outputs(out)
    seen = server.requests_seen
    assert main(["--config", str(cfg)]) == 0
    assert server.requests_seen == seen, "a rerun must answer every call from the cache"
    m = manifest(out)
    assert m["calls"]["misses"] == 0 and m["calls"]["hits"] > 0
    assert outputs(out) == first


def test_faults_are_retried_and_failures_recorded(shared_data, tiny_backend, tmp_path):
    # ordinals: 2 -> 429, 3 -> 500, 5 -> timeout, 6 -> malformed (all retried and recovered);
    # 8, 9 and 10: one request's first try and both retries fail -> recorded as failed.
    plan = FaultPlan(
        {"429": [2, 8], "500": [3, 9], "timeout": [5], "malformed": [6, 10]}, timeout_sleep_s=3.0
    )
    out = tmp_path / "out"
    with start_openai_server(
        tiny_backend, plan, served_model_name=SERVED, max_batch_requests=1
    ) as srv:
        cfg = build_config(shared_data, srv.base_url, out, max_failed_fraction=0.25)
        cfg["model"].update(max_retries=2, timeout_s=1.5)
        path = write_cfg(tmp_path, cfg)
        assert main(["--config", str(path)]) == 0
        m = manifest(out)
        kinds = sorted(k for _, k in srv.faults_served)
        assert kinds == sorted(["429", "429", "500", "500", "timeout", "malformed", "malformed"])
        assert m["calls"]["failed"] == 1 and len(m["failed_calls"]) == 1
        assert m["counts"]["analyses"]["failed"] == 1
        assert m["failed_calls"][0]["stage"] == "analyses"
        n_rows = m["files"]["mistake_analysis.jsonl"]["rows"]
        # the rerun retries only the failed call, which now succeeds
        seen = srv.requests_seen
        assert main(["--config", str(path)]) == 0
        assert srv.requests_seen - seen == 1
        m2 = manifest(out)
        assert m2["calls"]["failed"] == 0 and m2["calls"]["misses"] == 1
        assert m2["files"]["mistake_analysis.jsonl"]["rows"] >= n_rows


def test_shard_and_merge_equal_one_run(shared_data, server, tmp_path, capsys):
    single = tmp_path / "single"
    assert (
        main(
            [
                "--config",
                str(write_cfg(tmp_path, build_config(shared_data, server.base_url, single))),
            ]
        )
        == 0
    )
    shards = []
    for i in range(3):
        out = tmp_path / f"shard{i}"
        cfg = write_cfg(tmp_path, build_config(shared_data, server.base_url, out), f"s{i}.yml")
        assert main(["--config", str(cfg), "--shard", f"{i}/3"]) == 0
        shards.append(out)
    from dataset_builders.merge import main as merge_main

    merged = tmp_path / "merged"
    assert merge_main([*map(str, shards), "--output", str(merged)]) == 0
    assert outputs(merged) == outputs(single)
    m, ms = manifest(merged), manifest(single)
    assert m["counts"]["analyses"] == ms["counts"]["analyses"]
    assert m["files"] == ms["files"]
    # incomplete or mismatched shard sets are refused
    assert merge_main([str(shards[0]), str(shards[1]), "--output", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()
    # a shard's failed calls (within its budget) are said, as the build says them
    capsys.readouterr()
    shard0 = json.loads((shards[0] / "manifest.json").read_text())
    shard0["failed_calls"] = [{"stage": "analyses", "key": "k", "item": "i", "error": "HTTP 500"}]
    (shards[0] / "manifest.json").write_text(json.dumps(shard0))
    assert merge_main([*map(str, shards), "--output", str(merged)]) == 0
    assert "warning: 1 model calls of the shards failed" in capsys.readouterr().err
    assert manifest(merged)["failed_calls"] == shard0["failed_calls"]


def _kill_points(total: int, n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return sorted(rng.sample(range(1, total), n))


def test_sigkill_resume_is_byte_identical(shared_data, server, tmp_path):
    over = {
        "verify.mode": "self_check",
        "verify.keep_unclear": True,
        "select.redteam_n": 10,
        "emit.critique_revise": True,
        "revise.min_chars": 1,
        "revise.max_echo_overlap": 1.0,
        "revise.max_new_tokens": 8,
        "revise.stop": [],
        "revise.temperature": 1.0,
    }
    ref = tmp_path / "ref"
    assert (
        main(
            [
                "--config",
                str(write_cfg(tmp_path, build_config(shared_data, server.base_url, ref, **over))),
            ]
        )
        == 0
    )
    unique = manifest(ref)["calls"]["misses"]
    assert unique >= 20

    out = tmp_path / "out"
    cfg = write_cfg(tmp_path, build_config(shared_data, server.base_url, out, **over), "kill.yml")
    cmd = [sys.executable, "-m", "dataset_builders.build", "--config", str(cfg)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = server.requests_seen
    kills = 0
    for point in _kill_points(unique, 5, seed=1234):
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.time() + 120
        while (
            server.requests_seen - start < point and proc.poll() is None and time.time() < deadline
        ):
            time.sleep(0.002)
        assert proc.poll() is None, "the build finished before its kill point"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    # one more kill at a random moment after all calls: during emit, or after it finished
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(random.Random(99).uniform(0.5, 3.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kills += 1
    final = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert outputs(out) == outputs(ref)
    assert set(outputs(out)) >= {"mistake_analysis.jsonl", "critique_revise.jsonl", "coh.jsonl"}
    sent = server.requests_seen - start
    # each SIGKILL can lose at most the one call in flight (concurrency 1) and nothing finished
    print(f"kill test: unique calls {unique}, sent {sent}, kills {kills}")
    assert unique <= sent <= unique + kills, (sent, unique, kills)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_dead_endpoint_fails_loudly_and_writes_no_training_file(shared_data, tmp_path, capsys):
    """Nothing listening: exit non-zero with a summary; no (empty) JSONL is left to train on."""
    out = tmp_path / "out"
    cfg = build_config(shared_data, f"http://127.0.0.1:{_free_port()}/v1", out)
    cfg["model"].update(max_retries=1, retry_backoff_s=0.01, timeout_s=2)
    assert main(["--config", str(write_cfg(tmp_path, cfg))]) == 1
    err = capsys.readouterr().err
    assert "model calls failed" in err and "connection" in err.lower()
    assert "rerunning the same command resumes" in err
    assert not any((out / name).exists() for name in ALL_FILES)
    assert not (out / "manifest.json").exists() and not (out / "README.md").exists()


def test_over_budget_failures_stop_then_resume(shared_data, tiny_backend, tmp_path, capsys):
    """A failure over the budget stops the build; finished calls stay cached for the rerun."""
    plan = FaultPlan({"500": [3, 4, 5]})  # one request fails on its try and both retries
    out = tmp_path / "out"
    with start_openai_server(
        tiny_backend, plan, served_model_name=SERVED, max_batch_requests=1
    ) as srv:
        cfg = build_config(shared_data, srv.base_url, out, max_failed_fraction=0.0)
        cfg["model"].update(max_retries=2)
        path = write_cfg(tmp_path, cfg)
        assert main(["--config", str(path)]) == 1
        assert "1 of" in capsys.readouterr().err
        assert not (out / "mistake_analysis.jsonl").exists()
        seen = srv.requests_seen
        assert main(["--config", str(path)]) == 0  # the rerun makes only the failed call
        assert srv.requests_seen - seen == 1
        assert manifest(out)["calls"]["failed"] == 0
