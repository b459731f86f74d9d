#!/usr/bin/env bash
# One process against torchrun's two, the same run (issue 13's): EfficientNet-Lite0, whole network, 64 px, 2 epochs,
# then --resume to 3. Prints each run's epoch seconds and its validation and test accuracy.
#   bash benchmarks/distributed.sh DATA OUT [PROCESSES]      e.g. DATA=../shared/data/GroceryStoreDataset
set -euo pipefail
data=${1:?data folder}; out=${2:?output folder}; processes=${3:-2}
mkdir -p "$out"  # each run's log: $out/one.log, $out/many.log
python=${PYTHON:-.venv/bin/python}
run=(train --data "$data" --backbone efficientnet_lite0 --mode full --image-size 64 --test)
"$python" -m fruitlib "${run[@]}" --out "$out/one" --epochs 2 --overwrite > "$out/one.log" 2>&1
"$python" -m fruitlib "${run[@]}" --out "$out/one" --epochs 3 --resume >> "$out/one.log" 2>&1
"$python" -m torch.distributed.run --standalone --nproc-per-node "$processes" -m fruitlib "${run[@]}" \
    --out "$out/many" --epochs 2 --overwrite > "$out/many.log" 2>&1 || { tail -20 "$out/many.log"; exit 1; }
"$python" -m torch.distributed.run --standalone --nproc-per-node "$processes" -m fruitlib "${run[@]}" \
    --out "$out/many" --epochs 3 --resume >> "$out/many.log" 2>&1 || { tail -20 "$out/many.log"; exit 1; }
"$python" - "$out" <<'PY'
import json, sys
import pandas as pd
for name in ("one", "many"):
    folder = f"{sys.argv[1]}/{name}"
    history, metrics = pd.read_csv(f"{folder}/history.csv"), json.load(open(f"{folder}/metrics.json"))
    print(f"{metrics['world_size']} process(es): epochs {history['seconds'].round(1).tolist()} s; validation "
          f"{metrics['val_accuracy']:.1%} ({metrics['n_val']} photos); test {metrics['test']['accuracy']:.1%} "
          f"({metrics['test']['n_images']} photos); global batch {metrics['global_batch_size']}")
PY
