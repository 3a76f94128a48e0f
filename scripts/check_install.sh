#!/usr/bin/env bash
# tfgender as a user who installs it gets it: `pip install` of this checkout (not editable)
# into a fresh virtual environment outside the repository, then the console scripts, run
# from another folder, on drawn sample data: make data -> convert -> train (a shipped
# flagfile, which includes configs/base.flags) -> evaluate -> export -> predict; then the
# model the package ships, with no run: predict, evaluate, and the faces of a group photo.
#
# Usage: scripts/check_install.sh [WORK_DIR]   (default: a new temporary folder; removed
#        at the end unless given). Needs the package registry (or pip's cache) for the
#        dependencies: about 2.6 GB, a few minutes from the cache.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-}
if [ -z "$WORK" ]; then
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"
cd "$WORK"
case "$WORK/" in "$REPO"/*) echo "error: WORK_DIR must be outside $REPO" >&2; exit 2 ;; esac

step() { echo "== $*"; }
step "pip install $REPO into $WORK/venv"
python3 -m venv venv
venv/bin/python -m pip install --quiet --upgrade pip
venv/bin/python -m pip install --quiet "$REPO"
BIN=$WORK/venv/bin
venv/bin/python - <<'EOF'
import tfgender, os, sys
where = os.path.dirname(tfgender.__file__)
print("tfgender imported from", where)
sys.exit(0 if "site-packages" in where else "not the installed copy")
EOF

step "console scripts from $WORK"
"$BIN/tfgender-make-sample-data" --format=utkface --out_dir=raw --num_images=160 --seed=1
"$BIN/tfgender-convert-tfrecords" --source=utkface --data_dir=raw --out_dir=records \
  --image_size=72 --noprogress
# The shipped flagfiles by name (package data): no checkout needed.
"$BIN/tfgender-train" --flagfile=smoke --data_dir=records --workdir=run
# One that includes configs/base.flags, as its usage text writes it.
"$BIN/tfgender-train" --flagfile=configs/fairface_from_scratch.flags --data_dir=records \
  --workdir=run_fairface_flags --cache_image_size=72 --epochs=1 --steps_per_epoch=2 \
  --batch_size=8 --noprogress
"$BIN/tfgender-evaluate" --workdir=run --data_dir=records --split=test --batch_size=8
"$BIN/tfgender-export" --workdir=run --format=saved_model --output=exported
"$BIN/tfgender-predict" --workdir=run "$(find raw -name '*.jpg' | sort | head -n 1)"

step "the model the package ships: no training, no --workdir"
"$BIN/tfgender-predict" "$(find raw -name '*.jpg' | sort | head -n 1)"
"$BIN/tfgender-evaluate" --data_dir=records --split=test
FAIRFACE="$REPO/../shared/data/fairface/train"
if [ -d "$FAIRFACE" ]; then  # a group photo of real faces: every face found and classified
  venv/bin/python - "$FAIRFACE" <<'PYTHON'
import sys
import numpy as np
import tensorflow as tf
from tfgender.data import group_photos
faces = [tf.io.decode_jpeg(tf.io.read_file(f"{sys.argv[1]}/{i}.jpg"), channels=3)
         for i in (101, 102, 103, 104)]
photo, _ = group_photos.make_group_photo(faces, 160, "clutter", np.random.default_rng(0))
tf.io.write_file("group.jpg", tf.io.encode_jpeg(photo, quality=92))
PYTHON
  "$BIN/tfgender-predict" --detect_faces --annotate=annotated --output=faces.json group.jpg
  venv/bin/python -c "import json; n = len(json.load(open('faces.json'))['predictions']); \
print(n, 'faces found of 4'); assert n == 4"
  test -s annotated/group.annotated.jpg
fi
step "installed tfgender works outside the repository"
