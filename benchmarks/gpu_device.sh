#!/usr/bin/env bash
# Issue 13's GPU checks in one run on the device machine this workplace lends (the device tool's
# nvidia-h200 kind): no network, and its Python (3.12) has numba and numba-cuda but no qiskit.
# The exact engine needs neither qiskit nor a network, so the working tree alone runs them, from
# the repository root:
#     run(command="bash benchmarks/gpu_device.sh", timeout_s=420)
# Aer's GPU simulator cannot come along: qiskit-aer-gpu needs qiskit and CUDA 12 libraries of
# several hundred MB, over the 64 MiB a call may carry; its line in gpu.jsonl says so, and the
# engine's lines still count. Elsewhere (a GPU machine with a network) run benchmarks/gpu.py after
# `pip install '.[gpu]' qiskit-aer-gpu` instead.
# Writes device.txt, pytest.log and gpu.jsonl under $OUT (./gpu-device-out without it); arguments
# go to benchmarks/gpu.py (default: 10,000 sequences).
set -uo pipefail
out="${OUT:-gpu-device-out}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || echo "nvidia-smi: not found"
  python3 -c "import sys, numpy, numba; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'numba', numba.__version__)"
  python3 -c "from numba import cuda; print('cuda.is_available():', cuda.is_available())"
} 2>&1 | tee "$out/device.txt"
# the GPU path against the CPU path on a real device, and on numba's CUDA simulator
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/engine/test_gpu.py 2>&1 | tee "$out/pytest.log"
# 10,000 MNIST 0/1 sequences of 99 steps, forward and forward + gradient; then Aer on the GPU
timeout 200 python3 benchmarks/gpu.py "$@" 2>&1 | tee "$out/gpu.jsonl"
