"""The subprocess environment: offline keys always, glibc's keep-freed-memory settings only when
asked and never over a user's own, and those settings reach glibc (fewer page faults)."""

from __future__ import annotations

import importlib
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from axolotl_mistake.offline_env import (
    KEEP_FREED_MEMORY,
    NO_FORKED_WORKERS,
    OFFLINE_SETTINGS,
    offline_cpu_env,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_malloc_env(monkeypatch):
    for key in KEEP_FREED_MEMORY:
        monkeypatch.delenv(key, raising=False)


def test_offline_keys_and_no_malloc_settings_unless_asked(no_malloc_env):
    env = offline_cpu_env("3")
    assert {k: env[k] for k in OFFLINE_SETTINGS} == OFFLINE_SETTINGS
    assert env["OMP_NUM_THREADS"] == "3"
    assert not set(KEEP_FREED_MEMORY) & set(env)
    kept = offline_cpu_env("3", keep_freed_memory=True)
    assert {k: kept[k] for k in KEEP_FREED_MEMORY} == KEEP_FREED_MEMORY
    assert {k: v for k, v in kept.items() if k not in KEEP_FREED_MEMORY} == env


def test_a_users_own_malloc_setting_wins(no_malloc_env, monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_MAX_", "65536")
    env = offline_cpu_env(keep_freed_memory=True)
    assert env["MALLOC_MMAP_MAX_"] == "65536"
    assert env["MALLOC_TOP_PAD_"] == KEEP_FREED_MEMORY["MALLOC_TOP_PAD_"]


# 20 blocks of 64 MiB, each filled and freed: above glibc's largest dynamic mmap threshold
# (32 MiB), so by default each is a fresh mapping faulted in page by page
CHURN = """
import resource
for _ in range(20):
    block = b"\\x01" * (64 << 20)
    del block
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
"""


def _minor_faults(env: dict[str, str]) -> int:
    out = subprocess.run(
        [sys.executable, "-c", CHURN], env=env, capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only"
)
def test_the_settings_reach_glibc_and_stop_the_refaulting(no_malloc_env):
    default = _minor_faults(offline_cpu_env("1"))
    kept = _minor_faults(offline_cpu_env("1", keep_freed_memory=True))
    # default: about 20 x 16,384 faults; kept: the heap is faulted in once
    assert kept * 4 < default, (kept, default)


def _efficacy_module():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        return importlib.import_module("efficacy_smollm2")
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def test_the_efficacy_script_keeps_freed_memory_unless_told_not_to(tmp_path, no_malloc_env):
    efficacy = _efficacy_module()
    kept = efficacy.Experiment(tmp_path / "a", tmp_path, efficacy.QUICK, "1")
    plain = efficacy.Experiment(
        tmp_path / "b", tmp_path, efficacy.QUICK, "1", keep_freed_memory=False
    )
    assert {k: kept.env[k] for k in KEEP_FREED_MEMORY} == KEEP_FREED_MEMORY
    assert not set(KEEP_FREED_MEMORY) & set(plain.env)
    # a kept heap must not be forked: trainings then load batches in-process
    assert kept.train_options == list(NO_FORKED_WORKERS)
    assert plain.train_options == []


def test_a_users_own_kept_heap_also_stops_the_forked_worker(tmp_path, no_malloc_env, monkeypatch):
    efficacy = _efficacy_module()
    monkeypatch.setenv("MALLOC_MMAP_MAX_", "0")
    own = efficacy.Experiment(
        tmp_path / "c", tmp_path, efficacy.QUICK, "1", keep_freed_memory=False
    )
    assert own.env["MALLOC_MMAP_MAX_"] == "0"
    assert own.train_options == list(NO_FORKED_WORKERS)
