#!/bin/bash
# Temporary: GPU sweep for the CPU demo recipe.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/yolact_ros PYTHONUNBUFFERED=1
Y="python3 -m yolact_ros.cli.main"
L=$OUT; start=$(date +%s); echo "cpus $(nproc)"
$Y synth --out /tmp/demo_train --images 800 --size 256 --seed 0 > /dev/null 2>&1 & p1=$!
$Y synth --out /tmp/demo_val --images 100 --size 256 --seed 1 > /dev/null 2>&1 & p2=$!
wait $p1 $p2; echo "data ready after $(( $(date +%s) - start )) s"
export OMP_NUM_THREADS=1
sweep() { name=$1; shift; timeout 150 $Y train --config yolact_resnet18 --data /tmp/demo_train \
  --val-data /tmp/demo_val --init none --device cuda --workers 3 --val-every 300 --val-max-images 100 \
  --checkpoint-every 100000 --no-augment --lr-steps 0.7 0.9 --out /tmp/sweep/$name "$@" > /tmp/sweep_$name.log 2>&1;
  cp /tmp/sweep/$name/val.csv $L/val_$name.csv; }
sweep A_160_lr4_ctx --input-size 160 --lr 4e-3 --iterations 900 &
sweep B_160_lr8_clip --input-size 160 --lr 8e-3 --clip-grad 10 --contextual-weight 0 --iterations 900 &
sweep C_160_bs4 --input-size 160 --lr 4e-3 --batch-size 4 --freeze-bn no --contextual-weight 0 --iterations 1800 &
sweep D_256_lr8_clip --input-size 256 --lr 8e-3 --clip-grad 10 --contextual-weight 0 --iterations 900 &
wait; echo "done after $(( $(date +%s) - start )) s"
for f in $L/val_*.csv; do echo "== $f"; cat $f; done
for f in /tmp/sweep/*/metrics.csv; do echo "$f $(tail -1 $f | cut -c1-60)"; done
