#!/usr/bin/env bash
# The README's main job on built-in sample data: make data -> convert -> train -> evaluate.
# Usage: bash scripts/demo.sh [DEMO_DIR]   (what `make demo` runs; reruns resume or reuse)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-demo}"
mkdir -p "$DIR"

if [ ! -d "$DIR/sample" ]; then
  bin/make_sample_data --format=utkface --out_dir="$DIR/sample.tmp" --num_images=1200 --seed=0
  mv "$DIR/sample.tmp" "$DIR/sample"
fi
if [ ! -f "$DIR/records/manifest.json" ]; then
  bin/convert_tfrecords --source=utkface --data_dir="$DIR/sample" --out_dir="$DIR/records" \
    --image_size=80 --num_workers=2 --overwrite
fi
bin/train --flagfile=configs/demo.flags --data_dir="$DIR/records" --workdir="$DIR/run"
if [ -x bin/evaluate ]; then
  bin/evaluate --workdir="$DIR/run" --data_dir="$DIR/records" --split=test \
    --output_json="$DIR/run/test_metrics.json"
fi
echo
echo "TensorBoard: .venv/bin/tensorboard --logdir $DIR/run"
