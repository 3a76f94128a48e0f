#!/usr/bin/env bash
# Runs the README's "From ImageDataGenerator to tfgender" commands as written, in a new folder
# beside nothing of the repository's data: a flow_from_dataframe table (filename,class) of real
# FairFace faces from ../shared/data re-encoded as PNG and WebP, then the three lines of the
# README's block, read from README.md itself (so the check is of the text users copy).
#
# Usage: scripts/check_migration.sh [NUM_FACES]   (default 1000; needs the ImageNet weights in
#        ~/.keras/models, as configs/fairface_mobilenet_v2.flags' header says). About 13 minutes
#        on 2 cores, most of it the README's 10-minute training budget. Run nothing beside it.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
FACES=${1:-1000}
SHARED="$REPO/../shared/data/fairface"
[ -f "$SHARED/fairface_label_train.csv" ] || { echo "error: no $SHARED" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
ln -s "$REPO/bin" bin
ln -s "$REPO/configs" configs
ln -s "$REPO/.venv" .venv  # bin/*'s first line runs bin/../.venv/bin/python: the checkout's
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"  # as if run from the checkout itself

# faces/labels.csv: half PNG, half WebP, labels as flow_from_dataframe users write them.
"$REPO/.venv/bin/python" - "$SHARED" "$FACES" <<'PYTHON'
import csv, os, sys
from PIL import Image
shared, count = sys.argv[1], int(sys.argv[2])
os.makedirs("faces/img", exist_ok=True)
with open(os.path.join(shared, "fairface_label_train.csv")) as f:
    rows = list(csv.DictReader(f))[:count]
with open("faces/labels.csv", "w", newline="") as out:
    writer = csv.writer(out)
    writer.writerow(["filename", "class"])
    for index, row in enumerate(rows):
        suffix = ".png" if index % 2 else ".webp"
        name = f"img/{index}{suffix}"
        Image.open(os.path.join(shared, row["file"])).save(os.path.join("faces", name))
        writer.writerow([name, row["gender"].lower()])
print(f"faces/labels.csv: {len(rows)} faces as PNG and WebP")
PYTHON

block=$(awk '/^The same table, three commands/ {found=1} found && /^```sh$/ {inside=1; next}
             inside && /^```$/ {exit} inside {print}' "$REPO/README.md")
[ -n "$block" ] || { echo "error: the README block was not found" >&2; exit 2; }
echo "== the README's block:"
echo "$block"
bash -euo pipefail -c "$block"
echo "== ok: the README's commands ran as written"
