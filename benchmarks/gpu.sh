#!/usr/bin/env bash
# Everything ganneal measures on a CUDA machine, in one call of at most ~8.5 minutes (the step limits
# below add up to 495 s), with no network.
#   OUT=/some/dir bash benchmarks/gpu.sh       (OUT unset: benchmarks/results/gpu-<time>/)
# The machine is expected to have Python 3.12 with torch, torchvision, numpy, scipy, matplotlib, scikit-learn,
# rich and pytest; ganneal's other dependencies come from wheels in .whl/ (made here by benchmarks/gpu_wheels.sh).
# Each step runs under its own time limit and is recorded with its exit code and seconds in steps.json; a failing
# step never stops the next one. Results: steps.json, step.json, concurrent.json, long.json, pytest-gpu.log, gpu.md.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results/gpu-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
STEPS="$OUT/steps.jsonl"
: > "$STEPS"

step() {  # step NAME LIMIT_S COMMAND...
  local name=$1 limit=$2; shift 2
  local t0; t0=$(date +%s)
  echo "== $name (limit ${limit}s)"
  timeout --signal=TERM --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  tail -5 "$OUT/$name.log"
  printf '{"step": "%s", "exit": %d, "seconds": %d}\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" >> "$STEPS"
}

summarise() {  # gpu.md from whatever was measured, also when an outer time limit stops the script
python - "$OUT" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
lines = ["# ganneal on a GPU (benchmarks/gpu.sh)", "", "| step | exit | seconds |", "|---|---|---|"]
for s in map(json.loads, (out / "steps.jsonl").read_text().splitlines()):
    lines.append(f"| {s['step']} | {s['exit']} | {s['seconds']} |")
def load(name):
    p = out / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None
step = load("step")
if step:
    lines += ["", f"DCGAN-32 step on {step.get('gpu', step.get('device'))} (batch 64, JSD):", "",
              "| variant | ganneal ms | bare ms | bare/ganneal | achieved TFLOP/s |", "|---|---|---|---|---|"]
    for name, v in step.get("variants", {}).items():
        lines.append(f"| {name} | " + (" | ".join(f"{v[k]:.3g}" for k in ("ganneal_ms", "bare_ms",
                     "ratio_bare_over_ganneal", "achieved_tflops")) if "error" not in v else v["error"]) + " |")
    if "matmul_tflops" in step:
        lines += ["", "matmul TFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in step["matmul_tflops"].items())]
conc = load("concurrent")
if conc:
    lines += ["", "| concurrent runs K | steps/s summed | steps/s each |", "|---|---|---|"]
    for k, v in conc.get("k", {}).items():
        lines.append(f"| {k} | {v['steps_per_s_total']:.1f} | {', '.join(f'{r:.1f}' for r in v['steps_per_s_each'])} |")
long = load("long")
if long and "train_s" in long:
    lines += ["", f"5,000 steps: {long['train_s']:.0f} s ({long['steps_per_s']} steps/s, exit {long['train_exit']}); "
              f"evaluate on {long['eval_samples']} samples: {long['evaluate_s']:.0f} s (exit {long['evaluate_exit']})"]
(out / "gpu.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "results in $OUT"
}
trap summarise EXIT

if [ -d .whl ]; then
  step install 45 python -m pip install --no-index --no-deps --find-links .whl .whl/*.whl
elif ! python -c "import hydra, omegaconf, typer, torch_fidelity, mlxtend" 2>/dev/null; then
  echo "error: no .whl/ here and ganneal's dependencies are missing: run benchmarks/gpu_wheels.sh on a machine"
  echo "with the package registries and bring .whl/ along (it is git-ignored: pass it in the device's carry)."
  exit 2
fi
step install-ganneal 30 python -m pip install --no-index --no-deps --no-build-isolation -e .
step nvidia-smi 10 nvidia-smi
step versions 20 ganneal --version
step pytest-gpu 100 python -m pytest -m gpu -q -p no:cacheprovider tests/train/test_gpu.py
step bench-step 80 python benchmarks/gpu_bench.py step --out "$OUT"
step bench-concurrent 90 python benchmarks/gpu_bench.py concurrent --out "$OUT"
step bench-long 120 python benchmarks/gpu_bench.py long --out "$OUT"
