"""Make benchmarks/gpu/carry/ (ignored by git) for the GPU check. Run here, with network access
to PyPI and the project's venv (it needs pip, the embedded model and the builder):

    python benchmarks/gpu/prepare.py                       # builds the small recipe's data
    python benchmarks/gpu/prepare.py --data outputs/smollm2_135m_mistake   # reuse a build

It writes, atomically (a new folder renamed into place):
  wheels/    every wheel of benchmarks/gpu/wheels.txt for CPython 3.12 manylinux x86-64
             (`pip download --no-deps --only-binary=:all: --python-version 3.12 ...`);
             bitsandbytes slimmed to its CUDA 13 and CPU libraries (the wheel ships libraries
             for CUDA 11.8-13.2, ROCm and XPU: 43 MB; the GPU machine runs torch+cu130), with
             a regenerated RECORD and the build tag `1cuda13`; axolotl-mistake built from a copy
             of this tree (`pip wheel --no-deps --no-build-isolation`);
  smollm2/   the embedded model's config and tokenizer (no weights);
  data/      the small recipe's data (mistake_analysis, sft_harmless, sft_helpful, manifest);
  MANIFEST.json  size and sha256 of every file, the source hash of the project's code.
Then checks the 64 MiB the device tool carries (tree + carry) and prints the sizes.
Wheels already in carry/wheels with the right name are reused, not downloaded again.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_check

PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
BNB_KEEP = {"libbitsandbytes_cpu.so", "libbitsandbytes_cuda130.so", "libbitsandbytes_cuda132.so"}
BNB_BUILD_TAG = "1cuda13"


def log(msg: str) -> None:
    print(f"prepare: {msg}", flush=True)


def run(cmd: list[str], **kw) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise SystemExit(
            f"prepare: failed: {' '.join(cmd)}\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )


def pip(*args: str, **kw) -> None:
    """Run this interpreter's pip with `args`; stop with its output when it fails."""
    run([sys.executable, "-m", "pip", *args], **kw)


def build_wheel(source: Path, dest: Path) -> None:
    """Build the project or sdist at `source` into a wheel in `dest` (no deps, no isolation)."""
    pip("wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dest), str(source))


def download(req: gpu_check.Req, dest: Path) -> Path:
    """The CPython 3.12 manylinux wheel from PyPI; for a pure-Python package published only as
    an sdist (axolotl-contribs-lgpl), the sdist built here into a py3-none-any wheel."""
    spec = f"{req.name}=={req.version}"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "-q",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.12",
        "--implementation",
        "cp",
        "--abi",
        "cp312",
        "--abi",
        "abi3",
        "--abi",
        "none",
        *[a for p in PLATFORMS for a in ("--platform", p)],
        "-d",
        str(dest),
        spec,
    ]
    before = set(dest.glob("*.whl"))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        if "No matching distribution" not in proc.stderr:
            raise SystemExit(f"prepare: failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
        sdists = dest / f"sdist-{req.name}"
        sdists.mkdir()
        pip("download", "-q", "--no-deps", "--no-binary=:all:", "-d", str(sdists), spec)
        sdist = next(sdists.iterdir())
        build_wheel(sdist, dest)
        log(f"{spec}: no wheel on PyPI, built {sdist.name} here")
    new = sorted(set(dest.glob("*.whl")) - before)
    if len(new) != 1:
        raise SystemExit(f"prepare: pip download {spec} gave {new}")
    return new[0]


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def slim_bitsandbytes(src: Path, dest_dir: Path) -> Path:
    """A copy of the bitsandbytes wheel with only the CUDA 13 and CPU libraries."""
    w = gpu_check.parse_wheel_name(src)
    parts = src.name[:-4].split("-")
    name = "-".join([parts[0], parts[1], BNB_BUILD_TAG, *parts[-3:]]) + ".whl"
    out = dest_dir / name
    kept: list[tuple[str, bytes]] = []
    dropped = 0
    with zipfile.ZipFile(src) as zin:
        record = next(n for n in zin.namelist() if n.endswith(".dist-info/RECORD"))
        for info in zin.infolist():
            base = info.filename.rsplit("/", 1)[-1]
            if info.filename == record:
                continue
            if (
                base.startswith("libbitsandbytes_")
                and base.endswith(".so")
                and base not in BNB_KEEP
            ):
                dropped += info.file_size
                continue
            kept.append((info.filename, zin.read(info)))
    missing = BNB_KEEP - {n.rsplit("/", 1)[-1] for n, _ in kept}
    if missing:
        raise SystemExit(f"prepare: {src.name} lacks {sorted(missing)}: update BNB_KEEP")
    lines = [f"{n},{_record_hash(d)},{len(d)}" for n, d in kept] + [f"{record},,"]
    tmp = out.with_suffix(".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for n, d in kept:
            zout.writestr(n, d)
        zout.writestr(record, "\n".join(lines) + "\n")
    os.replace(tmp, out)
    log(
        f"{src.name} ({src.stat().st_size / 2**20:.1f} MiB) -> {out.name} "
        f"({out.stat().st_size / 2**20:.1f} MiB; dropped {dropped / 2**20:.0f} MiB of other "
        f"CUDA/ROCm/XPU libraries; version {w.version})"
    )
    return out


def project_wheel(dest: Path) -> tuple[Path, str]:
    """Build axolotl-mistake from a copy of the tree (no build/ or egg-info left in the repo)."""
    src_hash = gpu_check.source_hash(gpu_check.REPO)
    with tempfile.TemporaryDirectory(prefix="am-src-") as tmp:
        copy = Path(tmp) / "src"
        copy.mkdir()
        for part in (*gpu_check.SOURCE_PARTS, "README.md"):
            p = gpu_check.REPO / part
            if p.is_dir():
                shutil.copytree(
                    p, copy / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                )
            else:
                shutil.copy2(p, copy / part)
        if gpu_check.source_hash(copy) != src_hash:
            raise SystemExit("prepare: the tree changed while it was copied; run again")
        build_wheel(copy, dest)
    wheels = [
        p for p in dest.glob("*.whl") if gpu_check.parse_wheel_name(p).name == gpu_check.PROJECT
    ]
    if len(wheels) != 1:
        raise SystemExit(f"prepare: expected one {gpu_check.PROJECT} wheel, got {wheels}")
    return wheels[0], src_hash


def embedded_folder(given: Path | None) -> Path:
    if given:
        return given
    proc = subprocess.run(
        [sys.executable, "-m", "axolotl_mistake.models"], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"prepare: python -m axolotl_mistake.models failed:\n{proc.stderr[-2000:]}"
        )
    return Path(proc.stdout.strip().splitlines()[-1])


def build_data(given: Path | None, scratch: Path) -> Path:
    if given:
        return given
    log("python -m dataset_builders.build (the small recipe's data; a few minutes on CPU)")
    work = scratch / "build"
    work.mkdir()
    run([sys.executable, "-m", "dataset_builders.build"], cwd=work)
    return work / "outputs" / gpu_check.DATA_NAME


def refuse_foreign_carry(carry: Path) -> None:
    """The carry folder is replaced whole at the end: refuse one this script did not make (a
    link, or a non-empty folder without its MANIFEST.json), e.g. a mistyped GPU_CHECK_CARRY."""
    if carry.is_symlink() or (carry.exists() and not carry.is_dir()):
        raise SystemExit(
            f"prepare: {carry} is not a folder this script made; refusing to replace it"
        )
    if carry.is_dir() and any(carry.iterdir()):
        try:
            made_by = json.loads((carry / "MANIFEST.json").read_text(encoding="utf-8")).get(
                "made_by"
            )
        except (OSError, ValueError, AttributeError):
            made_by = None
        if made_by != "benchmarks/gpu/prepare.py":
            raise SystemExit(
                f"prepare: {carry} holds files this script did not make (no MANIFEST.json of "
                f"its own); refusing to replace it: point {gpu_check.CARRY_ENV} at a new folder"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help=f"a built outputs/{gpu_check.DATA_NAME} folder (default: build one)",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="the embedded model folder (default: python -m axolotl_mistake.models)",
    )
    args = parser.parse_args(argv)

    reqs = gpu_check.read_wheel_list()
    carry = gpu_check.carry_dir()
    refuse_foreign_carry(carry)
    carry.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=".carry-new-", dir=carry.parent))
    scratch = Path(tempfile.mkdtemp(prefix="gpu-prepare-"))
    try:
        wheels = new / "wheels"
        wheels.mkdir()
        old = {}
        for p in (carry / "wheels").glob("*.whl") if (carry / "wheels").is_dir() else []:
            w = gpu_check.parse_wheel_name(p)
            old[(w.name, w.version, w.build)] = p
        for req in reqs:
            if req.name == gpu_check.PROJECT:
                continue
            build = BNB_BUILD_TAG if req.name == "bitsandbytes" else None
            reuse = old.get((req.name, req.version, build))
            if reuse:
                shutil.copy2(reuse, wheels / reuse.name)
                continue
            log(f"download {req.name}=={req.version}")
            got = download(req, scratch)
            if req.name == "bitsandbytes":
                slim_bitsandbytes(got, wheels)
            else:
                shutil.copy2(got, wheels / got.name)
        wheel, src_hash = project_wheel(wheels)
        log(f"built {wheel.name} from the tree")

        model = embedded_folder(args.model)
        (new / "smollm2").mkdir()
        for name in (
            *gpu_check.TOKENIZER_FILES,
            "generation_config.json",
            "chat_template.jinja",
            "special_tokens_map.json",
        ):
            if (model / name).is_file():
                shutil.copy2(model / name, new / "smollm2" / name)
        data = build_data(args.data, scratch)
        (new / "data" / gpu_check.DATA_NAME).mkdir(parents=True)
        for name in gpu_check.DATA_FILES:
            if not (data / name).is_file():
                raise SystemExit(f"prepare: {data / name} missing (not a finished build?)")
            shutil.copy2(data / name, new / "data" / gpu_check.DATA_NAME / name)

        manifest = gpu_check.make_manifest(new, gpu_check.REPO, code_hash=src_hash)
        gpu_check.write_json_atomic(new / "MANIFEST.json", manifest)
        problems = gpu_check.check_wheels(reqs, wheels)
        if problems:
            raise SystemExit("prepare: " + "\n  ".join(["wheel set incomplete:", *problems]))
        if carry.exists():
            trash = Path(tempfile.mkdtemp(prefix=".carry-old-", dir=carry.parent))
            os.replace(carry, trash / "carry")
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(new, carry)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if new.exists():
            shutil.rmtree(new, ignore_errors=True)

    print(f"\n{'file':60s} {'MiB':>7s}")
    for p in sorted((carry / "wheels").glob("*.whl"), key=lambda p: -p.stat().st_size):
        print(f"{p.name:60s} {p.stat().st_size / 2**20:7.2f}")
    tree, carried = gpu_check.travel_bytes(gpu_check.REPO, carry)
    total = tree + carried
    wheels_mib = gpu_check.dir_bytes(carry / "wheels") / 2**20
    limit_mib = gpu_check.LIMIT_BYTES / 2**20
    print(
        f"\ncarry {carried / 2**20:.1f} MiB (wheels {wheels_mib:.1f}) + tree {tree / 2**20:.1f} "
        f"MiB = {total / 2**20:.1f} MiB of {limit_mib:.0f} MiB"
    )
    if total + gpu_check.MARGIN_BYTES > gpu_check.LIMIT_BYTES:
        print("prepare: over the device tool's 64 MiB: drop wheels or slim more", file=sys.stderr)
        return 1
    print("next: benchmarks/gpu_check.sh --dry-run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
