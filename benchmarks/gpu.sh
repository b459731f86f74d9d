#!/usr/bin/env bash
# The GPU figures of benchmarks/results/2026-11-30-gpu-h200.md in one go: the benchmark on the GPU, then the full-size runs of the
# series (params/full.yaml: 224 px, 30 epochs, batch 64; notebook 04's fine-tuning and fixed features, notebook
# 05's scratch run) through `python -m fruitlib train`, the function notebooks 04 and 05 call.
#
#   bash benchmarks/gpu.sh DATA OUT     # a CUDA machine with fruitlib and its dependencies importable
#
# OUT receives gpu.txt (the card), bench.log and results-gpu.json, runs.log and runs.tgz (each run's
# params.json, split.csv, history.csv, metrics.json and figures; not the weights). Each step has its own
# time limit, so that one that hangs cannot take the others with it. About 7 minutes on an H200 (434 s), before
# distributed.log (torchrun with NCCL: 1 process, then 2 sharing the one GPU) was added; it is unmeasured.
set -u
data=${1:?usage: bash benchmarks/gpu.sh DATA OUT}
out=${2:?usage: bash benchmarks/gpu.sh DATA OUT}
py=${PYTHON:-python3}
runs=${RUNS:-/tmp/fruitlib-gpu-runs}
export PYTHONUNBUFFERED=1 FRUITLIB_CACHE=${FRUITLIB_CACHE:-/tmp/fruitlib-gpu-cache}
mkdir -p "$out" "$runs"

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $py -c "import os, torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__,
'gpu', torch.cuda.get_device_name(0), 'cpus', len(os.sched_getaffinity(0)))"
  df -h /dev/shm | tail -1; } 2>&1 | tee "$out/gpu.txt"

# The benchmark: the CPU settings section is left out (the GPU section replaces it); the article's recipe
# trains for 100 s, its 30 epochs extrapolated from the batches measured.
timeout 330 $py benchmarks/bench.py --data "$data" --device cuda --backbone efficientnet_lite0 --skip settings --recipe-cap 100 --out "$out/results-gpu.json" 2>&1 | tee "$out/bench.log"

train() {  # NAME ARGS...: one full-size run; its last lines go to runs.log
    local name=$1
    shift
    echo "== $name: $*" >>"$out/runs.log"
    timeout 80 $py -m fruitlib train --data "$data" --out "$runs/$name" --image-size 224 --epochs 30 \
        --batch-size 64 --device cuda --overwrite "$@" >"$runs/$name.log" 2>&1
    echo "exit $?" >>"$out/runs.log"
    tail -2 "$runs/$name.log" | tr '\r' '\n' | tail -2 >>"$out/runs.log"
}
train lite0-finetune-full --backbone efficientnet_lite0 --mode full --lr 1e-4
train lite0-scratch --backbone efficientnet_lite0 --scratch --lr 1e-3
train resnet50-scratch --backbone resnet50 --scratch --lr 1e-3
train lite0-frozen --backbone efficientnet_lite0 --mode frozen
cat "$out/runs.log"
for n in 1 2; do  # NCCL through torchrun: one process, then two on the one GPU (NCCL may refuse to share a GPU)
    echo "== torchrun, $n process(es)" >>"$out/distributed.log"
    PYTHON=$py timeout 120 bash benchmarks/distributed.sh "$data" "$runs/torchrun-$n" "$n" >>"$out/distributed.log" 2>&1
    echo "exit $?" >>"$out/distributed.log"
done
cat "$out/distributed.log"
tar -czf "$out/runs.tgz" -C "$runs" --exclude='*.pt' .
