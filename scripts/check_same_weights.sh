#!/usr/bin/env bash
# A refactoring keeps a seeded run's weights bit for bit: the smoke recipe trained with
# --deterministic at BASE and at the working tree, for Levi & Hassner and MobileNetV2 (its
# head and model options), then every checkpoint variable compared (model, optimizer, counters).
#
# Usage: scripts/check_same_weights.sh BASE_COMMIT CONVERTED_DATA_DIR
#   e.g. scripts/check_same_weights.sh d503c6c data/utkface   (about 2 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${1:?usage: $0 BASE_COMMIT CONVERTED_DATA_DIR}
DATA=$(realpath "${2:?usage: $0 BASE_COMMIT CONVERTED_DATA_DIR}")
HERE=$(pwd)
WORK=$(mktemp -d)
trap 'git -C "$HERE" worktree remove --force "$WORK/base" 2>/dev/null || true; rm -rf "$WORK"' EXIT
git worktree add -q "$WORK/base" "$BASE"
for tree in base head; do
  root=$([ $tree = base ] && echo "$WORK/base" || echo "$HERE")
  for model in levi_hassner mobilenet_v2; do
    extra=(); [ $model = mobilenet_v2 ] && extra=(--head_units=16 --dropout=0.1 --image_size=64)
    # PYTHONPATH: the tree's own tfgender, not the one this venv installed.
    (cd "$root" && PYTHONPATH="$root" "$HERE/.venv/bin/python" bin/train \
      --flagfile=configs/smoke.flags --data_dir="$DATA" --workdir="$WORK/runs_$tree/$model" \
      --model=$model --seed=3 --deterministic "${extra[@]}" > "$WORK/$tree-$model.log" 2>&1) \
      || { echo "$tree $model failed: $(tail -n 1 "$WORK/$tree-$model.log")" >&2; exit 1; }
  done
done
"$HERE/.venv/bin/python" - "$WORK" <<'PY' 2>/dev/null
import sys

import numpy as np
import tensorflow as tf

work, same = sys.argv[1], True
for model in ("levi_hassner", "mobilenet_v2"):
    base, head = (tf.train.load_checkpoint(tf.train.latest_checkpoint(
        f"{work}/runs_{tree}/{model}/checkpoints")) for tree in ("base", "head"))
    names = sorted(n for n in base.get_variable_to_shape_map() if "VARIABLE_VALUE" in n)
    ok = names == sorted(n for n in head.get_variable_to_shape_map() if "VARIABLE_VALUE" in n)
    ok = ok and all(np.array_equal(base.get_tensor(n), head.get_tensor(n)) for n in names)
    print(f"{model}: {len(names)} checkpoint variables, "
          f"{'bit-identical' if ok else 'DIFFERENT'}")
    same = same and ok
sys.exit(0 if same else 1)
PY
