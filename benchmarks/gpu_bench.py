"""The GPU measurements, run by benchmarks/gpu.sh (each section on its own, so one failure sinks none).

    python benchmarks/gpu_bench.py step        --out DIR   # DCGAN-32: ganneal's step vs a bare loop, fp32/TF32/bf16,
                                                           # channels_last, compile; achieved FLOP/s vs matmul rate
    python benchmarks/gpu_bench.py concurrent  --out DIR   # K = 1, 4, 8 training processes on one GPU: steps/s summed
    python benchmarks/gpu_bench.py long        --out DIR   # 5,000 DCGAN-32 steps on fabricated CIFAR-10, then
                                                           # `ganneal evaluate` on 10,000 samples (stand-in extractor)

`--device cpu` runs the same code on the CPU at a tiny size (a smoke test of the script, not a measurement).
Every section writes DIR/<section>.json; gpu.sh gathers them into DIR/gpu.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench import bare_stepper, ganneal_stepper  # noqa: E402  (the CPU bench's two steppers, device-aware)

DCGAN = ["dataset=cifar10", "model=dcgan32", "divergence=jsd", "train.n_critic=1"]


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def fabricated_cifar(root: Path, per_batch: int) -> Path:
    sys.path.insert(0, str(ROOT))
    from gan_anneal.experiments.fabricated import write_fabricated_cifar10

    return Path(write_fabricated_cifar10(root, per_batch=per_batch))


def build(device: str, data_root: Path, extra: list[str]):
    from gan_anneal.config import compose
    from gan_anneal.train.build import build_experiment

    cfg = compose([*DCGAN, f"dataset.root={data_root}", f"device={device}", "train.progress=false",
                   "train.sample_every=0", "train.steps=100000", "optim.decay=none", *extra])
    return build_experiment(cfg, log=lambda m: None)


def timed(fn, device: str, inner: int, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        sync(device)
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def matmul_rate(device: str, dtype_name: str, n: int) -> float:
    import torch

    dtype = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    torch.backends.cuda.matmul.allow_tf32 = dtype_name == "tf32"
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds = timed(lambda: torch.mm(a, b), device, inner=10, repeats=5)
    return 2 * n**3 / seconds


def section_step(args, save) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    data = fabricated_cifar(Path(args.work) / "cifar", per_batch=64 if args.device == "cpu" else 512)
    inner, repeats = (2, 3) if args.device == "cpu" else (20, 7)
    out: dict = {"device": args.device, "variants": {}}
    if args.device == "cuda":
        out["gpu"] = torch.cuda.get_device_name(0)
    variants = {"fp32": ["device.deterministic=true"], "tf32 (default)": [], "bf16": ["device.precision=bf16"],
                "channels_last": ["device.channels_last=true"], "bf16+channels_last":
                ["device.precision=bf16", "device.channels_last=true"], "compile": ["device.compile=true"]}
    if args.device == "cpu":  # the smoke test: compiling on a CPU takes minutes and measures nothing here
        variants.pop("compile")
    for name, extra in variants.items():
        try:
            exp = build(args.device, data, extra)
            if name == "fp32" and args.device == "cuda":
                torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
            ours = timed(ganneal_stepper(exp), args.device, inner, repeats)
            bare = timed(bare_stepper(exp), args.device, inner, repeats)
            with FlopCounterMode(display=False) as counter:
                ganneal_stepper(exp)()
            flops = counter.get_total_flops()
            out["variants"][name] = {"ganneal_ms": 1e3 * ours, "bare_ms": 1e3 * bare, "ratio_bare_over_ganneal":
                                     bare / ours, "flops_per_step": flops, "achieved_tflops": flops / ours / 1e12}
        except Exception as error:  # noqa: BLE001 -- report and go on with the next variant
            out["variants"][name] = {"error": f"{type(error).__name__}: {error}"}
        print(name, out["variants"][name], flush=True)
        save(out)  # a time limit that strikes later keeps what was measured
    n = 1024 if args.device == "cpu" else 8192
    out["matmul_tflops"] = {d: matmul_rate(args.device, d, n) / 1e12 for d in ("fp32", "tf32", "bf16")}
    return out


def worker(args) -> None:
    """One of K concurrent training processes: steps done in `seconds` after warm-up, printed as JSON."""
    exp = build(args.device, Path(args.data), [])
    step = ganneal_stepper(exp)
    for _ in range(5):
        step()
    sync(args.device)
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        step()
        done += 1
    sync(args.device)
    print(json.dumps({"steps": done, "seconds": time.perf_counter() - t0}), flush=True)


def section_concurrent(args, save) -> dict:
    data = fabricated_cifar(Path(args.work) / "cifar", per_batch=64 if args.device == "cpu" else 512)
    seconds = 3.0 if args.device == "cpu" else 15.0
    out: dict = {"device": args.device, "seconds_each": seconds, "k": {}}
    for k in ((1, 2) if args.device == "cpu" else (1, 4, 8)):
        procs = [subprocess.Popen([sys.executable, __file__, "worker", "--device", args.device, "--data",
                                   str(data), "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)
                 for _ in range(k)]
        rates, failed = [], 0
        for p in procs:
            try:
                result = json.loads(p.communicate()[0].strip().splitlines()[-1])
                rates.append(result["steps"] / result["seconds"])
            except (ValueError, IndexError, KeyError):  # a worker that died (e.g. out of memory at K = 8)
                failed += 1
        out["k"][str(k)] = {"steps_per_s_each": rates, "steps_per_s_total": sum(rates), "workers_failed": failed}
        print(k, out["k"][str(k)], flush=True)
        save(out)
    return out


def section_long(args, save) -> dict:
    data = fabricated_cifar(Path(args.work) / "cifar_long", per_batch=2000 if args.device == "cuda" else 64)
    steps, samples = (5000, 10000) if args.device == "cuda" else (20, 200)
    run = Path(args.work) / "long_run"
    shutil.rmtree(run, ignore_errors=True)  # a rerun on a warm machine would find it done and time nothing
    t0 = time.perf_counter()
    train = subprocess.run(["ganneal", "train", *DCGAN, f"dataset.root={data}", f"device={args.device}",
                            f"train.steps={steps}", f"hydra.run.dir={run}", "train.progress_every_s=10"],
                           capture_output=True, text=True)
    trained = time.perf_counter() - t0
    t1 = time.perf_counter()
    evaluation = subprocess.run(["ganneal", "evaluate", str(run), "--extractor", "ganneal-tiny", "-n", str(samples),
                                 "--metrics", "is,fid,kid", "--cache-dir", str(Path(args.work) / "cache")],
                                capture_output=True, text=True)
    evaluated = time.perf_counter() - t1
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
    return {"device": args.device, "steps": steps, "train_exit": train.returncode, "train_s": trained,
            "steps_per_s": summary.get("steps_per_second"), "backend": summary.get("backend"),
            "evaluate_exit": evaluation.returncode, "evaluate_s": evaluated, "eval_samples": samples,
            "stderr_tail": (train.stderr + evaluation.stderr)[-2000:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", choices=("step", "concurrent", "long", "worker"))
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--work", default="/tmp/ganneal-gpu-bench")
    parser.add_argument("--data", default=None)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    if args.section == "worker":
        return worker(args)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    out = Path(args.out) / f"{args.section}.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    def save(result: dict) -> None:
        out.write_text(json.dumps(result, indent=1))

    save({"section": args.section, "started": True})
    sections = {"step": section_step, "concurrent": section_concurrent, "long": section_long}
    save(sections[args.section](args, save))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
