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


def offline_cpu_env(threads: str = "2", pythonpath: Path | None = None) -> dict[str, str]:
    """`os.environ` plus offline settings, `OMP_NUM_THREADS=threads` (accelerate would set 1)
    and `pythonpath` prepended to PYTHONPATH (so a subprocess imports this checkout)."""
    env = dict(os.environ)
    env.update(OFFLINE_SETTINGS, OMP_NUM_THREADS=threads)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    return env
