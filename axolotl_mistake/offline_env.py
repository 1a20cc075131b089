"""The environment for `axolotl`, builder and evaluator subprocesses run offline on CPU.

Tests, benchmarks and the efficacy script start these as subprocesses and all need the same
offline, telemetry-free, thread-pinned settings. It copies the caller's environment and
overrides only these keys; it never adds a secret.
"""

from __future__ import annotations

import os
from pathlib import Path

OFFLINE_SETTINGS = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "AXOLOTL_DO_NOT_TRACK": "1",
    "DO_NOT_TRACK": "1",
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",
}


# glibc malloc settings that keep freed memory in the process. A CPU training (logits-sized
# buffers) and a generation (the key/value cache's per-step `torch.cat`) free and allocate
# blocks of many MB every step; by default glibc serves each from its own mmap and hands it
# back on free, so every step faults it in again (the efficacy run's anchored training, two
# same-day pairs: 579 and 682 s of kernel time, 62 and 56 s with these, 19 and 35 % less wall
# time; benchmarks/RESULTS.md). These put every block on the heap, never trim it and grow it
# 512 MiB at a time. The adapters were byte-identical; the training process's peak RSS stayed
# within about 2 GB of the default's (the machine's use, with a forked worker, did not: below).
# Never fork with them: a child forked from a process that keeps a 14 GB heap shares it
# copy-on-write, and each page the parent then reuses is copied, so the pair holds up to twice
# the heap. Axolotl forks a data-loader worker at every epoch on CPU (`dataloader_num_workers`
# defaults to 1), and the efficacy run's SFT-only training (64 steps an epoch) was killed for
# memory at step 65 on a 24 GB machine; trainings run with them need `NO_FORKED_WORKERS`.
KEEP_FREED_MEMORY = {
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(16 * 2**30),
    "MALLOC_TOP_PAD_": str(512 * 2**20),
}

# `axolotl train` options that load batches in the training process (no forked worker); the
# batches, their order and the random draws are the same as with the worker
NO_FORKED_WORKERS = ("--dataloader-num-workers", "0")


def offline_cpu_env(
    threads: str = "2", pythonpath: Path | None = None, keep_freed_memory: bool = False
) -> dict[str, str]:
    """`os.environ` plus offline settings, `OMP_NUM_THREADS=threads` (accelerate would set 1)
    and `pythonpath` prepended to PYTHONPATH (so a subprocess imports this checkout).

    `keep_freed_memory` adds `KEEP_FREED_MEMORY` where the caller's environment does not set
    that variable already (a user's own malloc settings win); it has effect with glibc only."""
    env = dict(os.environ)
    env.update(OFFLINE_SETTINGS, OMP_NUM_THREADS=threads)
    if keep_freed_memory:
        for key, value in KEEP_FREED_MEMORY.items():
            env.setdefault(key, value)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    return env
