"""The GPU check (benchmarks/gpu_check.sh) on CPU: its dry mode against a carry folder made here
(wheel list complete, one wheel each, CPython 3.12 tags, sizes under the 64 MiB the device tool
carries, the commands it would run), the bitsandbytes slimming of prepare.py, and the QLoRA
benchmark's code path on a tiny shape (`--smoke-cpu`). No GPU and no network needed."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[1]
GPU = REPO / "benchmarks" / "gpu"
sys.path.insert(0, str(GPU))

import gpu_check

prepare = load_script("gpu_prepare", GPU / "prepare.py")


def _wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def fake_carry(root: Path) -> Path:
    """A carry folder shaped like prepare.py's, with tiny stand-in wheels of the listed names."""
    carry = root / "carry"
    wheels = carry / "wheels"
    wheels.mkdir(parents=True)
    for req in gpu_check.read_wheel_list():
        name = req.name.replace("-", "_")
        version = req.version or "0.1.0"
        build = "-1cuda13" if req.name == "bitsandbytes" else ""
        _wheel(wheels / f"{name}-{version}{build}-py3-none-any.whl", {f"{name}/__init__.py": b""})
    (carry / "smollm2").mkdir()
    for name in gpu_check.TOKENIZER_FILES:
        (carry / "smollm2" / name).write_text("{}")
    data = carry / "data" / gpu_check.DATA_NAME
    data.mkdir(parents=True)
    for name in gpu_check.DATA_FILES:
        (data / name).write_text("{}\n")
    write_manifest(carry)
    return carry


def write_manifest(carry: Path) -> None:
    gpu_check.write_json_atomic(carry / "MANIFEST.json", gpu_check.make_manifest(carry))


def dry_run(carry: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, gpu_check.CARRY_ENV: str(carry), "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dry_run_is_ready_with_a_complete_carry(tmp_path):
    proc = dry_run(fake_carry(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "dry run: ready" in out
    n = len(gpu_check.read_wheel_list())
    assert f"({n} wheels)" in out
    # the commands of the three parts, as they would run there
    assert "-m axolotl.cli.main train $REPO/recipes/smollm2_135m_mistake.yml" in out
    assert "--launcher python" in out and "--max-steps 10" in out
    # part (c) reads the carried tokenizer itself: no tokenizer-only cache posing as a model
    assert "bench_generate.py --random-7b-shape --tokenizer $CARRY/smollm2" in out
    assert "AXOLOTL_MISTAKE_CACHE" not in out and "--tokenizer-cache" not in out
    assert "qlora_7b.py --recipe $REPO/recipes/alpaca7b_mistake.yml --steps 20" in out
    assert "pip install -q --no-index --no-deps" in out
    assert "MiB of 64 MiB" in out


def _swap_trl_for_a_second_dill(carry: Path) -> None:
    (carry / "wheels" / "trl-1.9.0-py3-none-any.whl").unlink()
    _wheel(carry / "wheels" / "dill-0.3.0-py3-none-any.whl", {"dill/__init__.py": b""})


def _tag_a_wheel_for_cpython_3_11(carry: Path) -> None:
    old = carry / "wheels" / "pydantic_core-2.41.5-py3-none-any.whl"
    old.rename(carry / "wheels" / "pydantic_core-2.41.5-cp311-cp311-manylinux_2_17_x86_64.whl")


def _grow_a_wheel_to_70_mib(carry: Path) -> None:
    with open(carry / "wheels" / "wandb-0.31.0-py3-none-any.whl", "r+b") as fh:
        fh.truncate(70 * 2**20)  # sparse: no real disk use


@pytest.mark.parametrize(
    "spoil, messages",
    [
        (_swap_trl_for_a_second_dill, ("missing wheel for trl==1.9.0", "2 wheels for dill")),
        (_tag_a_wheel_for_cpython_3_11, ("no tag for CPython 3.12",)),
        (_grow_a_wheel_to_70_mib, ("over the 64 MiB",)),
    ],
)
def test_dry_run_catches_a_carry_the_gpu_machine_cannot_use(tmp_path, spoil, messages):
    carry = fake_carry(tmp_path)
    spoil(carry)
    write_manifest(carry)
    proc = dry_run(carry)
    assert proc.returncode == 1
    for message in (*messages, "NOT ready"):
        assert message in proc.stderr


def test_dry_run_catches_a_changed_file_and_a_changed_pyproject(tmp_path):
    carry = fake_carry(tmp_path)
    (carry / "data" / gpu_check.DATA_NAME / "sft_helpful.jsonl").write_text('{"x": 1}\n')
    manifest = json.loads((carry / "MANIFEST.json").read_text())
    manifest["pyproject_sha256"] = "0" * 64
    (carry / "MANIFEST.json").write_text(json.dumps(manifest))
    proc = dry_run(carry)
    assert proc.returncode == 1
    assert "sft_helpful.jsonl differs from MANIFEST.json" in proc.stderr
    assert "pyproject.toml changed" in proc.stderr


def test_dry_run_without_a_carry_says_how_to_make_it(tmp_path):
    proc = dry_run(tmp_path / "nothing")
    assert proc.returncode == 1
    assert "python benchmarks/gpu/prepare.py" in proc.stderr


def test_a_real_run_without_a_carry_writes_its_problems(tmp_path):
    """Preflight runs before anything is installed and still leaves a results file."""
    out = tmp_path / "out"
    env = {**os.environ, gpu_check.CARRY_ENV: str(tmp_path / "nothing"), "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    results = json.loads((out / "gpu_check.json").read_text())
    assert results["ok"] is False and results["preflight_problems"]


def test_wheel_list_parsing(tmp_path):
    reqs = {r.name: r.version for r in gpu_check.read_wheel_list()}
    assert reqs["axolotl"] and reqs["bitsandbytes"] == "0.50.2"
    assert reqs["axolotl-mistake"] is None  # built from the tree
    bad = tmp_path / "w.txt"
    bad.write_text("trl==1.9.0\ntrl==1.9.1\n")
    with pytest.raises(ValueError, match="listed twice"):
        gpu_check.read_wheel_list(bad)
    bad.write_text("trl>=1.9\n")
    with pytest.raises(ValueError, match="expected 'name==version'"):
        gpu_check.read_wheel_list(bad)


@pytest.mark.parametrize(
    "name,ok",
    [
        ("pydantic_core-2.41.5-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", True),
        ("kernels_data-0.16.2-cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", True),
        ("multiprocess-0.70.19-py312-none-any.whl", True),
        ("bitsandbytes-0.50.2-1cuda13-py3-none-manylinux_2_24_x86_64.whl", True),
        ("x-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", False),
        ("x-1.0-py3-none-manylinux_2_34_x86_64.whl", False),  # newer glibc than the image's
        ("x-1.0-cp312-cp312-macosx_11_0_arm64.whl", False),
    ],
)
def test_wheel_tags(name, ok):
    w = gpu_check.parse_wheel_name(Path(name))
    assert any(gpu_check._TAG.match(t) for t in w.tags) is ok


def _record_ok(path: Path) -> None:
    with zipfile.ZipFile(path) as z:
        record = next(n for n in z.namelist() if n.endswith("RECORD"))
        rows = [line.split(",") for line in z.read(record).decode().splitlines()]
        listed = {r[0] for r in rows}
        assert listed == set(z.namelist())
        for name, digest, size in rows:
            if name == record:
                continue
            data = z.read(name)
            want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={want}" and int(size) == len(data), name


def test_bitsandbytes_is_slimmed_to_cuda13_and_cpu(tmp_path):
    libs = [
        "cpu",
        "cuda118",
        "cuda121",
        "cuda124",
        "cuda126",
        "cuda128",
        "cuda130",
        "cuda132",
        "rocm72",
        "xpu2026",
    ]
    files = {f"bitsandbytes/libbitsandbytes_{lib}.so": lib.encode() * 1000 for lib in libs}
    files["bitsandbytes/__init__.py"] = b"__version__ = '0.50.2'\n"
    files["bitsandbytes-0.50.2.dist-info/METADATA"] = b"Name: bitsandbytes\nVersion: 0.50.2\n"
    files["bitsandbytes-0.50.2.dist-info/RECORD"] = b"stale\n"
    src = _wheel(tmp_path / "bitsandbytes-0.50.2-py3-none-manylinux_2_24_x86_64.whl", files)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    slim = prepare.slim_bitsandbytes(src, out_dir)
    assert slim.name == "bitsandbytes-0.50.2-1cuda13-py3-none-manylinux_2_24_x86_64.whl"
    with zipfile.ZipFile(slim) as z:
        libs_kept = sorted(n.rsplit("_", 1)[-1] for n in z.namelist() if n.endswith(".so"))
    assert libs_kept == ["cpu.so", "cuda130.so", "cuda132.so"]
    _record_ok(slim)
    w = gpu_check.parse_wheel_name(slim)
    assert (w.name, w.version, w.build) == ("bitsandbytes", "0.50.2", "1cuda13")


def test_bitsandbytes_without_its_cuda13_library_is_refused(tmp_path):
    src = _wheel(
        tmp_path / "bitsandbytes-0.50.2-py3-none-manylinux_2_24_x86_64.whl",
        {
            "bitsandbytes/libbitsandbytes_cpu.so": b"x",
            "bitsandbytes-0.50.2.dist-info/RECORD": b"",
        },
    )
    with pytest.raises(SystemExit, match="cuda130"):
        prepare.slim_bitsandbytes(src, tmp_path)


def test_travel_size_counts_the_tree_and_the_carry(tmp_path):
    carry = fake_carry(tmp_path)
    tree, carried = gpu_check.travel_bytes(REPO, carry)
    assert carried == gpu_check.dir_bytes(carry) > 0
    assert 100_000 < tree < gpu_check.LIMIT_BYTES  # the tracked tree, without .venv or outputs


@pytest.mark.slow
def test_qlora_benchmark_code_path_on_cpu(tmp_path):
    """qlora_7b.py --smoke-cpu: 4-bit load, both phases (baseline, then the recipe's LoRA rank,
    optimizer and accumulation), LoRA swapped in between; measures nothing."""
    pytest.importorskip("bitsandbytes")
    out = tmp_path / "b.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            str(GPU / "qlora_7b.py"),
            "--recipe",
            str(REPO / "recipes" / "alpaca7b_mistake.yml"),
            "--steps",
            "6",
            "--baseline-steps",
            "3",
            "--json",
            str(out),
            "--smoke-cpu",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["smoke_cpu"] is True
    assert result["baseline"]["lora_r"] == 32 and result["baseline"]["optimizer"] == "adamw_torch"
    recipe = result["recipe_settings"]
    assert (recipe["lora_r"], recipe["optimizer"], recipe["gradient_accumulation"]) == (
        64,
        "paged_adamw_8bit",
        4,
    )
    assert recipe["timed_micro_steps"] == 2 and recipe["tokens_per_s"] > 0
    assert recipe["trainable_params"] > result["baseline"]["trainable_params"]


def test_prepare_refuses_a_carry_folder_it_did_not_make(tmp_path):
    """prepare.py replaces the carry folder whole: a mistyped GPU_CHECK_CARRY pointing at
    someone's folder would have been deleted at the end of the preparation."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="holds files this script did not make"):
        prepare.refuse_foreign_carry(mine)
    (mine / "MANIFEST.json").write_text('{"made_by": "someone"}')
    with pytest.raises(SystemExit, match="did not make"):
        prepare.refuse_foreign_carry(mine)
    link = tmp_path / "link"
    link.symlink_to(mine)
    with pytest.raises(SystemExit, match="is not a folder this script made"):
        prepare.refuse_foreign_carry(link)
    assert (mine / "notes.txt").read_text() == "mine"
    # its own (MANIFEST.json made by it), an empty folder and none at all are fine
    (mine / "MANIFEST.json").write_text(json.dumps(gpu_check.make_manifest(tmp_path / "empty")))
    prepare.refuse_foreign_carry(mine)
    (tmp_path / "empty").mkdir()
    prepare.refuse_foreign_carry(tmp_path / "empty")
    prepare.refuse_foreign_carry(tmp_path / "none")
