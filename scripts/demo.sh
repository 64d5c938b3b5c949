#!/usr/bin/env bash
# The main job, end to end, on the digits example: set up, compile, run, prove, verify
# (snarkjs + the Python verifier), deploy and verify on the embedded EVM.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ZKML=.venv/bin/zkml
EX=examples/digits
OUT=${OUT:-build/digits}
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "zkml compile $EX/model.onnx --calibration $EX/calibration.npy -o $OUT"
$ZKML compile "$EX/model.onnx" --calibration "$EX/calibration.npy" -o "$OUT"
say "zkml run $OUT --input $EX/input.json   (integer runtime vs onnxruntime)"
$ZKML run "$OUT" --input "$EX/input.json"
say "zkml prove $OUT --input $EX/input.json   (setup runs first: no keys yet)"
$ZKML prove "$OUT" --input "$EX/input.json"
say "zkml verify $OUT"
$ZKML verify "$OUT"
say "zkml deploy $OUT   (embedded py-evm chain)"
$ZKML deploy "$OUT"
