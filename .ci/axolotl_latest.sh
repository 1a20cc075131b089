#!/usr/bin/env bash
# Compatibility check against the newest Axolotl release, run by .ci/run after the test suite.
#
# The test venv (.venv, Python 3.11, Axolotl 0.19) stays as it is. A second venv is layered over
# it (a .pth file adds .venv's site-packages) and gets only the newest Axolotl, installed
# --no-deps --ignore-requires-python (0.21 declares Python >= 3.12 but imports and runs on 3.11
# with .venv's dependencies). With it this script:
#   1. builds the CPU recipes' data with `python -m dataset_builders.build` (the builder's default
#      output, outputs/smollm2_135m_mistake/, under a temporary working directory);
#   2. runs `axolotl preprocess` of every CPU recipe (recipes/*.yml whose header says CPU only),
#      and tests/test_chat_sft.py + tests/test_mistral_common.py (the strategy that subclasses
#      Axolotl's chat_template, and both chat types on Axolotl's mistral-common tokenizer);
#   3. runs a 2-step `axolotl train` of recipes/smollm2_135m_mistake.yml with the plugin and its
#      probe, and checks the log: discrimination_acc logged exactly once per probe run (one probe
#      callback) and the adapter saved (.ci/axolotl_log_check.py);
#   4. runs that train again (1 step) seeing only the packages the GPU machine will have (its
#      image + benchmarks/gpu/wheels.txt), so the GPU check's wheel list cannot go stale.
# Exits non-zero on any failure. Measured on the 2-core machine: 103 s idle (2026-12-01), 8.5 min at
# load average 4.
#
# Bump: set AXOLOTL_LATEST below and the axolotl pin in benchmarks/gpu/wheels.txt to the new
# release (tests/test_axolotl_latest.py keeps them equal; `AXOLOTL_LATEST=X.Y.Z .ci/axolotl_latest.sh`
# tries one without editing), run this script, and update the README's "Supported Axolotl
# versions" table.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"

AXOLOTL_LATEST="${AXOLOTL_LATEST:-0.21.0}"   # newest release checked here
BASE_VENV="${BASE_VENV:-$REPO/.venv}"
MAX_STEPS=2
TRAIN_RECIPE=recipes/smollm2_135m_mistake.yml

export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export AXOLOTL_DO_NOT_TRACK=1 DO_NOT_TRACK=1 WANDB_MODE=disabled TOKENIZERS_PARALLELISM=false
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off

fail() { echo "axolotl-latest: FAIL: $*" >&2; exit 1; }
[ -x "$BASE_VENV/bin/python" ] || fail "no test venv at $BASE_VENV (run the README's test command first)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/axolotl-latest.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
start=$(date +%s)
step() { echo "axolotl-latest: [$(( $(date +%s) - start )) s] $*"; }

# --- the layered venv ----------------------------------------------------------------------
step "venv layered over $BASE_VENV, axolotl==$AXOLOTL_LATEST"
BASE_SITE="$("$BASE_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
"$BASE_VENV/bin/python" -m venv "$WORK/venv"
V="$WORK/venv"
NEW_SITE="$("$V/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
printf 'import site; site.addsitedir(%s)\n' "$("$BASE_VENV/bin/python" -c 'import sys; print(repr(sys.argv[1]))' "$BASE_SITE")" \
  > "$NEW_SITE/_layer_base.pth"
"$V/bin/pip" install -q --no-deps --ignore-requires-python "axolotl==$AXOLOTL_LATEST"
got="$("$V/bin/python" -c 'import axolotl; print(axolotl.__version__)')"
[ "$got" = "$AXOLOTL_LATEST" ] || fail "the layered venv imports axolotl $got, not $AXOLOTL_LATEST"
base_got="$("$BASE_VENV/bin/python" -c 'import axolotl; print(axolotl.__version__)')"
step "axolotl $got in the layered venv (the test venv keeps $base_got)"

MODEL="$("$BASE_VENV/bin/python" -m axolotl_mistake.models)"
[ -d "$MODEL" ] || fail "embedded model folder not found: $MODEL"

# --- data: the builder's default output, under the temporary working directory -------------
step "python -m dataset_builders.build (default: the CPU recipes' data)"
(cd "$WORK" && OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" "$BASE_VENV/bin/python" -m dataset_builders.build \
  > "$WORK/build.log" 2>&1) || { tail -40 "$WORK/build.log" >&2; fail "dataset build failed (log above)"; }

# --- preprocess every CPU recipe -----------------------------------------------------------
cpu_recipes=()
for recipe in recipes/*.yml; do
  case "$recipe" in *.build.yml|*.eval.yml) continue ;; esac
  if sed -n '/^[^#]/q;p' "$recipe" | grep -q "CPU only"; then cpu_recipes+=("$recipe"); fi
done
[ "${#cpu_recipes[@]}" -ge 2 ] || fail "expected at least 2 CPU recipes, found: ${cpu_recipes[*]-none}"
for recipe in "${cpu_recipes[@]}"; do
  name="$(basename "$recipe" .yml)"
  # A CPU recipe whose data needs the Hub (smollm2_135m_anchored: PKU-SafeRLHF) is preprocessed on
  # the default build's rows copied to its data folder: the same row format and manifest, so the
  # recipe's own config is what the newest Axolotl checks.
  for folder in $("$BASE_VENV/bin/python" -c 'import sys, yaml, os; print(" ".join(sorted({os.path.dirname(d["path"]) for d in yaml.safe_load(open(sys.argv[1]))["datasets"]})))' "$recipe"); do
    if [ ! -d "$WORK/$folder" ]; then
      step "$recipe: data folder $folder not built offline; using the default build's rows"
      cp -r "$WORK/outputs/smollm2_135m_mistake" "$WORK/$folder"
    fi
  done
  step "axolotl preprocess $recipe"
  log="$WORK/preprocess_$name.log"
  (cd "$WORK" && "$V/bin/axolotl" preprocess "$REPO/$recipe" --base-model "$MODEL" > "$log" 2>&1) \
    || { tail -40 "$log" >&2; fail "axolotl $got preprocess $recipe exited non-zero (log above)"; }
  "$BASE_VENV/bin/python" .ci/axolotl_log_check.py preprocess --log "$log" --recipe "$recipe" \
    --workdir "$WORK" || fail "preprocess $recipe: log check failed"
done

# --- the strategy that extends Axolotl's own classes, on this Axolotl ----------------------
CHAT_TESTS=(tests/test_chat_sft.py tests/test_mistral_common.py)
step "pytest ${CHAT_TESTS[*]} (chat_sft subclasses Axolotl's chat_template; the mistral-common path)"
log="$WORK/chat_sft_tests.log"
("$V/bin/python" -m pytest -q -p no:cacheprovider "${CHAT_TESTS[@]}" > "$log" 2>&1) \
  || { tail -40 "$log" >&2; fail "axolotl $got: ${CHAT_TESTS[*]} failed (log above)"; }

# --- a 2-step train with the plugin and its probe ------------------------------------------
step "axolotl train $TRAIN_RECIPE --max-steps $MAX_STEPS"
log="$WORK/train.log"
(cd "$WORK" && "$V/bin/axolotl" train "$REPO/$TRAIN_RECIPE" --launcher python --base-model "$MODEL" \
  --max-steps "$MAX_STEPS" --output-dir "$WORK/adapter" > "$log" 2>&1) \
  || { tail -60 "$log" >&2; fail "axolotl $got train exited non-zero (log above)"; }
"$BASE_VENV/bin/python" .ci/axolotl_log_check.py train --log "$log" --recipe "$TRAIN_RECIPE" \
  --max-steps "$MAX_STEPS" --output-dir "$WORK/adapter" \
  || { grep -n "discrimination\|Plugin" "$log" >&2 || true; fail "train: log check failed"; }

# --- the GPU check's wheel list still covers what Axolotl imports --------------------------
# The same train (1 step) with every package hidden that the GPU machine's image and
# benchmarks/gpu/wheels.txt do not provide (benchmarks/gpu/sim/sitecustomize.py): a new import
# in Axolotl or the plugin fails here, not on the GPU machine.
step "axolotl train $TRAIN_RECIPE --max-steps 1 as on the GPU image + benchmarks/gpu/wheels.txt"
log="$WORK/train_gpu_image_sim.log"
(cd "$WORK" && GPU_IMAGE_SIM_ALLOW="$REPO/benchmarks/gpu/image_packages.txt:$REPO/benchmarks/gpu/wheels.txt" \
  PYTHONPATH="$REPO/benchmarks/gpu/sim" "$V/bin/axolotl" train "$REPO/$TRAIN_RECIPE" --launcher python \
  --base-model "$MODEL" --max-steps 1 --output-dir "$WORK/adapter_sim" > "$log" 2>&1) \
  || { grep -n "No module named\|No package metadata" "$log" >&2 || tail -40 "$log" >&2
       fail "train fails with only the GPU image + benchmarks/gpu/wheels.txt: add the missing wheel"; }
"$BASE_VENV/bin/python" .ci/axolotl_log_check.py train --log "$log" --recipe "$TRAIN_RECIPE" \
  --max-steps 1 --output-dir "$WORK/adapter_sim" || fail "train under the GPU-image simulation: log check failed"

step "ok: the plugin works on axolotl $got (preprocess ${cpu_recipes[*]}; train $TRAIN_RECIPE)"
