#!/usr/bin/env bash
# The GPU check: on a machine with a CUDA GPU, one run that prints the device, trains the demo for one
# epoch through run.py (in a temporary folder), measures the project's ResNet-50 at 224 px in float32,
# mixed_float16 and mixed_float16 with XLA, the input pipeline at the same batch and, where torch is
# installed, the same ResNet-50 in PyTorch; then a table. Meant to take under 8 minutes on an H200.
#
#   bash benchmarks/gpu_check.sh [--batch 128] [--steps 30] ...   (options: bash benchmarks/gpu_check.sh --help)
#
# Without a GPU (no nvidia-smi, nvidia-smi lists none, or TensorFlow sees none) it prints one line
# containing "no GPU" and exits 0 at once, before any training. Exit 1: a step failed (see the table).
# PYTHON (default python3) is the interpreter with the project's requirements; NVIDIA_SMI (default
# nvidia-smi) is the device query, replaceable for tests.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    exec "$python" "$here/bench_gpu.py" --help
fi
if ! gpus="$("${NVIDIA_SMI:-nvidia-smi}" --query-gpu=index,name,memory.total,driver_version --format=csv,noheader \
        2>/dev/null)" || [[ -z "$gpus" ]]; then
    echo "gpu_check: no GPU (nvidia-smi is missing or lists none); nothing was run"
    exit 0
fi
exec "$python" "$here/bench_gpu.py" --nvidia-smi "$(echo "$gpus" | paste -sd ';' -)" "$@"
