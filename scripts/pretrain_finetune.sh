#!/usr/bin/env bash
# The study's CelebA -> Adience recipe end to end on drawn sample data, at toy sizes:
# pretrain on CelebA -> fine-tune on Adience (base frozen, then unfrozen at 1e-5) -> evaluate
# -> cross-validate the fine-tuning from the same pretrained run on every Adience fold.
# Usage: bash scripts/pretrain_finetune.sh [DIR]   (reruns reuse the data and resume the runs)
# With real data, run the same bin/ commands without the TINY overrides (the configs' sizes).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-recipe}"
FOLDS="${FOLDS:-0,1,2,3,4}"  # test folds of the cross-validation
mkdir -p "$DIR"

# Toy sizes so that MobileNetV2 runs in minutes on a CPU; everything else is the configs'.
TINY=(--image_size=32 --cache_image_size=40 --batch_size=8 --steps_per_epoch=2
      --summary_images=0 --noprogress)
FINETUNE=(--flagfile=configs/adience_finetune_from_celeba.flags --init_checkpoint="$DIR/pretrain"
          --epochs=2 --freeze_base_epochs=1 "${TINY[@]}")

for format in celeba adience; do
  if [ ! -f "$DIR/$format/manifest.json" ]; then
    rm -rf "$DIR/${format}_raw"
    bin/make_sample_data --format="$format" --out_dir="$DIR/${format}_raw" --num_images=120 \
      --image_size=48 --seed=0
    bin/convert_tfrecords --source="$format" --data_dir="$DIR/${format}_raw" \
      --out_dir="$DIR/$format" --num_shards=1 --noprogress --overwrite
  fi
done

# 1. Pretrain on CelebA's own train/val partition.
bin/train --flagfile=configs/celeba_pretrain.flags --data_dir="$DIR/celeba" \
  --workdir="$DIR/pretrain" --epochs=1 "${TINY[@]}"
# 2. Fine-tune on Adience folds 0-3 (validation fold 4): first epoch base frozen, then unfrozen.
bin/train "${FINETUNE[@]}" --data_dir="$DIR/adience" --workdir="$DIR/finetune"
# 3. Evaluate the best fine-tuned model on its validation fold 4 (the honest figure is step 4's).
bin/evaluate --workdir="$DIR/finetune" --data_dir="$DIR/adience" --folds=4 --batch_size=8 \
  --output_json="$DIR/finetune/fold4_metrics.json"
# 4. Cross-validate: every round fine-tunes from the same pretrained run.
bin/cross_validate "${FINETUNE[@]}" --data_dir="$DIR/adience" --workdir="$DIR/cv" \
  --folds="$FOLDS" --eval_batch_size=8
echo
echo "results: $DIR/cv/cross_validation.json  TensorBoard: .venv/bin/tensorboard --logdir $DIR"
