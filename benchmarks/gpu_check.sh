#!/usr/bin/env bash
# The GPU figures of benchmarks/README.md in one run (about 6 minutes, at most 9): eager fp32 and
# fp16 (with folded BatchNorm, window masks, channels-last, torch.compile, CUDA graphs) for
# yolact_resnet50 and yolact_base at 550 px on CUDA, random weights (100 detections a frame: the
# worst case), and the stages after the network alone.
#
#   bash benchmarks/gpu_check.sh 2>&1 | tee gpu_check.log     # from the repository root
#
# Needs python3 with CUDA torch + torchvision, numpy, opencv and tqdm; the package need not be
# installed (PYTHONPATH). No TensorRT is assumed (tensorrt-fp16 is left out).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/yolact_ros${PYTHONPATH:+:$PYTHONPATH}"

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
python3 - <<'EOF' || exit 1
import sys

import cv2, numpy, torch, torchvision, tqdm  # noqa: F401  everything speed.py needs

assert torch.cuda.is_available(), 'CUDA is not available to torch'
print(f'python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), '
      f'torchvision {torchvision.__version__}, {torch.cuda.get_device_name()}')
EOF

# Isolates each step: eager-fp16 -> torch-fp16-full (BatchNorm folded) -> torch-fp16 (window
# masks) -> torch-fp16-cl (channels-last).
for config in yolact_resnet50 yolact_base; do
  echo "== $config"
  timeout 80 python3 benchmarks/speed.py --config "$config" --device cuda --batch 8 \
    --iterations 30 --warmup 5 \
    --backends eager,eager-fp16,torch-fp16-full,torch-fp16,torch-fp16-cl \
    || echo "speed.py $config failed or timed out (exit $?)"
done

echo "== torch.compile (yolact_resnet50, batch 1; compiling takes about a minute)"
timeout 120 python3 benchmarks/speed.py --config yolact_resnet50 --device cuda --batch 1 \
  --iterations 30 --warmup 3 --backends torch-fp16-cl,torch-fp16-cl-compile \
  || echo "speed.py torch.compile failed or timed out (exit $?)"

echo "== CUDA graphs (yolact_base, batch 1: torch.compile mode reduce-overhead)"
timeout 180 python3 benchmarks/speed.py --config yolact_base --device cuda --batch 1 \
  --iterations 30 --warmup 5 --backends torch-fp16-cl,torch-fp16-cl-graphs \
  || echo "speed.py CUDA graphs failed or timed out (exit $?)"

echo "== stages after the network (yolact_resnet50, random weights, fp32)"
timeout 60 python3 benchmarks/postprocess.py --device cuda --repeats 30 \
  || echo "postprocess.py failed or timed out (exit $?)"
