#!/bin/bash
# Temporary: GPU sweep for the demo recipe + the ablation + an AMP/resume smoke test.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/yolact_ros PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
Y="python3 -m yolact_ros.cli.main"
L=$OUT/logs; mkdir -p $L
nvidia-smi -L; nproc
python3 -c "import torch,torchvision,pycocotools;print(torch.__version__,torchvision.__version__)"
start=$(date +%s)
$Y synth --out /tmp/demo_train --images 800 --size 256 --seed 0 > $L/synth_train.log 2>&1 & p1=$!
$Y synth --out /tmp/demo_val --images 100 --size 256 --seed 1 > $L/synth_val.log 2>&1 & p2=$!
timeout 530 python3 benchmarks/ablation.py --out /tmp/abl --train-images 600 --val-images 100 \
  --size 256 --iterations 1000 --device cuda --parallel 8 --workers 1 --no-readme > $L/ablation.log 2>&1 &
abl=$!
# AMP + resume smoke test on CUDA
$Y synth --out /tmp/s_small --images 16 --size 128 --seed 0 --occlusion high > /dev/null 2>&1
$Y train --config yolact_resnet18 --data /tmp/s_small --input-size 128 --iterations 20 --batch-size 4 \
  --checkpoint-every 10 --init none --out /tmp/amp --device cuda > $L/amp.log 2>&1; echo "amp rc $?"
$Y train --resume /tmp/amp/checkpoints/iter_0000010.pt --out /tmp/amp2 > $L/amp_resume.log 2>&1; echo "resume rc $?"
tail -3 /tmp/amp/metrics.csv /tmp/amp2/metrics.csv
python3 -c "import torch; s=torch.load('/tmp/amp/checkpoints/iter_0000020.pt', weights_only=True); print('scaler', s['scaler'], 'cuda rng', len(s['rng'][0]['cuda']))"
wait $p1 $p2; echo "data ready after $(( $(date +%s) - start )) s"
sweep() { name=$1; shift; timeout 470 $Y train --config yolact_resnet18 --data /tmp/demo_train \
  --val-data /tmp/demo_val --init none --device cuda --workers 1 --batch-size 8 --val-every 300 \
  --checkpoint-every 100000 --out /tmp/sweep/$name "$@" > $L/sweep_$name.log 2>&1;
  cp /tmp/sweep/$name/val.csv $L/val_$name.csv; cp /tmp/sweep/$name/metrics.csv $L/metrics_$name.csv; }
sweep s256_lr4 --input-size 256 --lr 4e-3 --iterations 1500 &
sweep s256_lr10 --input-size 256 --lr 1e-2 --iterations 1500 &
sweep s256_lr4_noaug --input-size 256 --lr 4e-3 --no-augment --iterations 1500 &
sweep s192_lr4 --input-size 192 --lr 4e-3 --iterations 1500 &
sweep s256_lr1 --input-size 256 --lr 1e-3 --iterations 1500 &
wait
cp /tmp/abl/results.json $L/ablation_results.json 2>/dev/null
for d in /tmp/abl/runs/*; do cp $d/metrics.csv $L/abl_$(basename $d).csv 2>/dev/null; done
echo "all done after $(( $(date +%s) - start )) s"
for f in $L/val_*.csv; do echo "== $f"; cat $f; done
tail -15 $L/ablation.log
tar czf $OUT/results.tgz -C $L .
