#!/usr/bin/env bash
# Everything that needs a GPU, on a machine that has one, each part's output in a folder:
#
#   bash benchmarks/gpu_checks.sh OUT [PART...]
#
# PART is one or more of (default: all of them, in this order):
#   tests       tests/test_cuda_gpu.py: the GEMM kernels, interop, training, on the GPU
#   benchmarks  bench_gpu.py (W1, W2, W3) and bench_gpu_training.py (W4, W5, GEMM)
#   ops         the op test suite, which runs every op on device="cuda" when a GPU is there
#   fuzz        random graphs checked on every back end, the GPU included
#
# Writes OUT/environment.txt, then per part OUT/<part>.txt (its output's last 400 lines)
# and the benchmarks' reports OUT/gpu.md and OUT/gpu_training.md. Each part runs under a
# time limit ($PART_SECONDS, default 540), so that one part fits a 10-minute job.
#
# The machine needs Python with NumPy, SymPy, nvidia-cuda-nvrtc, cffi and pytest
# (pytest-xdist to spread the op suite over the cores). Where it cannot reach a package
# index, set WHEELS to a folder of wheels for the missing ones (pip download them
# elsewhere, for the machine's Python and platform): they are installed from there.
set -uo pipefail
cd "$(dirname "$0")/.."

out=${1:?usage: bash benchmarks/gpu_checks.sh OUT [tests|benchmarks|ops|fuzz]...}
shift
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(tests benchmarks ops fuzz)
python=${PYTHON:-python3}
limit=${PART_SECONDS:-540}
mkdir -p "$out"
export PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ -n "${WHEELS:-}" ]; then
  "$python" -m pip install -q --no-index --find-links "$WHEELS" "$WHEELS"/*.whl >"$out/environment.txt" 2>&1
fi
{
  date -u +"%Y-%m-%d %H:%M UTC"
  nvidia-smi -L 2>&1 | head -4
  "$python" - <<'EOF'
import importlib, platform
print("Python", platform.python_version())
for name in ("numpy", "sympy", "cffi", "pytest", "xdist", "torch", "cupy", "jax"):
    try:
        print(name, getattr(importlib.import_module(name), "__version__", "?"))
    except Exception as err:  # noqa: BLE001 - a report of what is there
        print(name, "missing:", type(err).__name__)
import exprc
print("exprc.cuda.is_available():", exprc.cuda.is_available(), "; ".join(exprc.cuda.missing()))
EOF
} >>"$out/environment.txt" 2>&1

workers=""
"$python" -c "import xdist" 2>/dev/null && workers="-n $(nproc)"

run_part() {  # name, command...: the command's output's tail in OUT/name.txt, and its status
  local name=$1
  shift
  echo "+ $*" >"$out/$name.txt"
  local start=$SECONDS
  timeout "$limit" "$@" >"$out/$name.full" 2>&1
  local status=$?
  tail -n 400 "$out/$name.full" >>"$out/$name.txt"
  rm -f "$out/$name.full"
  echo "exit status $status after $((SECONDS - start)) s" | tee -a "$out/$name.txt"
}

for part in "${parts[@]}"; do
  case $part in
    tests) run_part tests "$python" -m pytest -q -p no:cacheprovider -rs tests/test_cuda_gpu.py ;;
    benchmarks)
      run_part benchmarks bash -c "$python benchmarks/bench_gpu.py --output '$out/gpu.md' &&
                                   $python benchmarks/bench_gpu_training.py --output '$out/gpu_training.md'" ;;
    ops) run_part ops "$python" -m pytest -q -p no:cacheprovider $workers tests/ops ;;
    fuzz) run_part fuzz "$python" -m tests.fuzz --graphs 2000 --minutes 6 ;;
    *) echo "unknown part: $part (expected tests, benchmarks, ops or fuzz)" >&2; exit 2 ;;
  esac
done
