#!/usr/bin/env bash
# Screenshots of TensorBoard as a user sees it: Time Series, HParams, Images and the profile
# Overview of the runs below LOGDIR, taken with headless Chromium (Debian's `chromium`).
#
# Usage: scripts/tensorboard_screenshots.sh [LOGDIR] [OUT_DIR]   (default: demo docs)
#   The pictures in docs/ are of `make demo`'s run and a profiled one beside it:
#     make demo
#     bin/train --flagfile=configs/demo.flags --data_dir=demo/records --workdir=demo/profiled \
#       --epochs=2 --profile_steps=40,45
#     scripts/tensorboard_screenshots.sh demo docs
# Writes OUT_DIR/tensorboard_{timeseries,hparams,images,profile}.png.
set -euo pipefail
cd "$(dirname "$0")/.."
LOGDIR=${1:-demo}
OUT=${2:-docs}
BROWSER=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$BROWSER" ]; then
  echo "error: no chromium on PATH (Debian: apt-get install chromium)" >&2
  exit 2
fi
if [ ! -d "$LOGDIR" ]; then
  echo "error: --logdir $LOGDIR is not a directory (run make demo first)" >&2
  exit 2
fi
mkdir -p "$OUT"
PORT=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/tensorboard --logdir "$LOGDIR" --host 127.0.0.1 --port "$PORT" > "$OUT/.tensorboard.log" 2>&1 &
TB=$!
trap 'kill $TB 2>/dev/null || true; rm -f "$OUT/.tensorboard.log"' EXIT
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$PORT/data/plugins_listing" > /dev/null && break
  sleep 1
done
curl -sf "http://127.0.0.1:$PORT/data/plugins_listing" > /dev/null || {
  echo "error: tensorboard did not start: $(tail -n 3 "$OUT/.tensorboard.log")" >&2; exit 1; }
for page in timeseries hparams images profile; do
  "$BROWSER" --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=1500,950 --virtual-time-budget=30000 \
    --screenshot="$OUT/tensorboard_$page.png" "http://127.0.0.1:$PORT/#$page" \
    > /dev/null 2>&1
  echo "$OUT/tensorboard_$page.png"
done
