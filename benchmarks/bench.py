"""ganneal's benchmarks: one process, one run, medians over interleaved repeats after warm-up.

    make bench                          # = python benchmarks/bench.py
    python benchmarks/bench.py --quick  # fewer repeats (a smoke run, a minute or two)
    python benchmarks/bench.py --only step,eval

What is timed (docs/benchmarks.md explains each row):

  step      one training step (1 critic + 1 generator update, JSD, n_critic = 1) of ganneal's loop
            (gan_anneal.train.loop.train_step on an Experiment built by build_experiment) against a bare
            hand-written PyTorch loop with the same networks (copies with the same initial weights), batch,
            data and Adam settings, written like the popular single-file GAN examples: one G(z) reused for the
            critic (detached) and generator steps, BCE-with-logits, zero_grad / backward / step, the critic not
            frozen during the generator step. Models: the 2-D MLP toy (ring8, 3 hidden layers of 512, batch
            512) and DCGAN-32 (3×32×32, batch 64), each in its default configuration (DCGAN reuses one G(z)
            for both steps, the toy draws a fresh one for the critic); the other train.reuse_fake setting is
            timed too. Also: the likelihood regulariser on (anneal=static anneal.lam=1; exact score on the toy,
            score=dsm on DCGAN, also with the wider score.conv_hidden=32), device.precision=bf16, and
            device.channels_last on DCGAN.
  flops     the DCGAN step's FLOPs (torch.utils.flop_counter.FlopCounterMode) over its median time, against
            the fp32 matmul peak (a 2048² torch.mm) measured in the same rounds: the physical limit here.
  eval      `ganneal evaluate`'s path (evaluate_run on a DCGAN run directory) against torch-fidelity's
            calculate_metrics called directly on the same generator and reference images, with a cold and a
            warm real-statistics cache; and the generation / feature-extraction throughput on their own.
            The feature extractor is the stand-in `ganneal-tiny` (Inception costs ~140 s per 1,000 images on
            this CPU): the ratios measure ganneal's overhead, not Inception's speed.
  parallel  sweep throughput on the MLP toy: N single-thread processes at once against one N-thread process
            (steps/s summed over processes).

Rounds interleave the variants (rotating their order), so slow phases of a shared machine hit all of them;
every ratio is the median of the per-round ratios. Ratios, not absolute times, are the headline.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
WORK = RESULTS / ".work"  # fabricated CIFAR-10, the cached DSM network, the evaluation run (git-ignored)

MLP = ["model.hidden=512", "model.depth=3", "train.batch_size=512"]
DCGAN = None  # set in main(): needs the fabricated data root
REG_MLP = ["anneal=static", "anneal.lam=1", "score=exact"]
REG_DCGAN = ["anneal=static", "anneal.lam=1", "score=dsm", "score.steps=20", "score.batch_size=64"]


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# Building --------------------------------------------------------------------------------------------------

def build(overrides: list[str]):
    from gan_anneal.config import compose
    from gan_anneal.train.build import build_experiment

    common = ["train.progress=false", "train.sample_every=0", "train.steps=100000000", "device=cpu",
              "divergence=jsd", "train.n_critic=1"]
    if "score=dsm" in overrides:  # the DSM data-score network is trained once and cached with the bench's files
        common.append(f"score.cache_dir={WORK / 'scores'}")
    cfg = compose([*common, *overrides])
    return build_experiment(cfg, log=lambda msg: None)


def ganneal_stepper(exp):
    from gan_anneal.train.loop import train_step

    state = {"step": 0}

    def step():
        train_step(exp, state["step"])
        state["step"] += 1

    return step


def bare_stepper(exp):
    """The popular single-file GAN loop, on copies of the same networks (same initial weights)."""
    import torch
    import torch.nn.functional as F

    # copies that train whatever phase the loop left requires_grad in; on the experiment's device (gpu_bench.py)
    G, D = copy.deepcopy(exp.generator).requires_grad_(True), copy.deepcopy(exp.critic).requires_grad_(True)
    o = exp.cfg.optim
    opt_g = torch.optim.Adam(G.parameters(), lr=o.lr_g, betas=tuple(o.betas))
    opt_d = torch.optim.Adam(D.parameters(), lr=o.lr_d, betas=tuple(o.betas))
    n, z_dim, sample, device = exp.cfg.train.batch_size, G.z_dim, exp.target.sample, exp.device
    ones, zeros = torch.ones(n, device=device), torch.zeros(n, device=device)

    def step():
        real = sample(n)
        fake = G(torch.randn(n, z_dim, device=device))
        opt_d.zero_grad()
        loss_d = F.binary_cross_entropy_with_logits(D(real).flatten(), ones) + \
            F.binary_cross_entropy_with_logits(D(fake.detach()).flatten(), zeros)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        loss_g = F.binary_cross_entropy_with_logits(D(fake).flatten(), ones)  # non-saturating: the jsd default
        loss_g.backward()
        opt_g.step()

    return step


def matmul_stepper(n: int = 2048):
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    return lambda: torch.mm(a, b), 2 * n**3


def count_flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


# Timing ----------------------------------------------------------------------------------------------------

def rounds(variants: dict, *, repeats: int, inner: int, warmup: int, console) -> dict[str, list[float]]:
    """Seconds per call of each variant, one entry per round; the variants' order rotates every round."""
    names = list(variants)
    for name in names:
        for _ in range(warmup):
            variants[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            t0 = time.perf_counter()
            for _ in range(inner):
                variants[name]()
            times[name].append((time.perf_counter() - t0) / inner)
        console.print(f"[dim]  round {r + 1}/{repeats}: "
                      + ", ".join(f"{n} {1e3 * times[n][-1]:.1f} ms" for n in names) + "[/]")
    return times


def paired_ratio(num: list[float], den: list[float]) -> float:
    return median([a / b for a, b in zip(num, den)])


# Sections --------------------------------------------------------------------------------------------------

def bench_steps(args, console) -> dict:
    out = {}
    for model, base, reg, inner, repeats, warmup in (
            ("mlp", MLP, REG_MLP, args.mlp_inner, args.repeats, 5),
            ("dcgan", DCGAN, REG_DCGAN, args.dcgan_inner, args.dcgan_repeats, 2)):
        console.print(f"[bold]{model}[/]: building (ganneal, +regulariser, bf16"
                      + (", channels_last" if model == "dcgan" else "") + ")")
        exps = {"ganneal": build(base)}
        variants = {"ganneal": ganneal_stepper(exps["ganneal"]), "bare": bare_stepper(exps["ganneal"])}
        exps["ganneal+reg"] = build(base + reg)
        variants["ganneal+reg"] = ganneal_stepper(exps["ganneal+reg"])
        exps["bf16"] = build(base + ["device.precision=bf16"])
        variants["bf16"] = ganneal_stepper(exps["bf16"])
        # the other setting of train.reuse_fake (on by default for DCGAN, off for the 2-D toys), for comparison
        toggled = not exps["ganneal"].cfg.train.reuse_fake
        exps["toggled"] = build(base + [f"train.reuse_fake={str(toggled).lower()}"])
        variants["toggled"] = ganneal_stepper(exps["toggled"])
        peak_flops = None
        if model == "dcgan":
            exps["reg_wide"] = build(base + reg + ["score.conv_hidden=32"])  # a wider image score net than the default
            variants["reg_wide"] = ganneal_stepper(exps["reg_wide"])
            exps["channels_last"] = build(base + ["device.channels_last=true"])
            variants["channels_last"] = ganneal_stepper(exps["channels_last"])
            mm, peak_flops = matmul_stepper()
            variants["matmul"] = mm
        flops = {name: count_flops(fn) for name, fn in variants.items() if name in ("ganneal", "bare", "ganneal+reg")}
        times = rounds(variants, repeats=repeats, inner=inner, warmup=warmup, console=console)
        res = {"times_s": times, "median_s": {k: median(v) for k, v in times.items()}, "flops": flops,
               "batch": int(exps["ganneal"].cfg.train.batch_size), "inner_steps": inner, "repeats": repeats,
               "speed_vs_bare": paired_ratio(times["bare"], times["ganneal"]),
               "regularizer_overhead": paired_ratio(times["ganneal+reg"], times["ganneal"]) - 1,
               "bf16_speedup": paired_ratio(times["ganneal"], times["bf16"]),
               "toggled_reuse_fake": toggled,
               "toggled_speed_vs_bare": paired_ratio(times["bare"], times["toggled"])}
        if model == "dcgan":
            res["channels_last_speedup"] = paired_ratio(times["ganneal"], times["channels_last"])
            res["regularizer_wide_overhead"] = paired_ratio(times["reg_wide"], times["ganneal"]) - 1
            peak = [peak_flops / t for t in times["matmul"]]
            achieved = [flops["ganneal"] / t for t in times["ganneal"]]
            res["matmul_peak_flops_per_s"] = median(peak)
            res["matmul_peak_best_flops_per_s"] = max(peak)
            res["achieved_flops_per_s"] = median(achieved)
            res["achieved_bare_flops_per_s"] = median([flops["bare"] / t for t in times["bare"]])
            res["fraction_of_peak"] = median([a / p for a, p in zip(achieved, peak)])
        out[model] = res
    return out


def fabricated_cifar(per_batch: int) -> Path:
    from gan_anneal.experiments.fabricated import accept_fabricated_cifar10, write_fabricated_cifar10

    accept_fabricated_cifar10()
    return write_fabricated_cifar10(WORK / f"cifar10-{per_batch}", per_batch=per_batch)


def bench_eval(args, console) -> dict:
    import torch
    import torch_fidelity

    from gan_anneal.config import compose
    from gan_anneal.data.images import to_uint8
    from gan_anneal.evaluate import extractors, fidelity, inputs, options, run_eval
    from gan_anneal.results.rundir import RunDir
    from gan_anneal.runner import console as run_console
    from gan_anneal.runner import run_training

    run_dir = WORK / "eval-run"
    if not (run_dir / "checkpoints").exists() or RunDir(run_dir).read_summary().get("status") != "done":
        shutil.rmtree(run_dir, ignore_errors=True)
        run_console.quiet = True
        cfg = compose(["train.progress=false", "train.sample_every=0", "device=cpu", *DCGAN, "train.steps=2",
                       "train.log_every=1", "train.checkpoint_every=2", "train.eval_samples=64"])
        assert run_training(cfg, run_dir) == "done", f"could not train the evaluation run in {run_dir}"
    n = args.eval_samples
    cache = WORK / "fidelity-cache"
    opts = dict(metrics="is,fid", num_samples=n, batch_size=64, extractor=extractors.TINY, is_splits=2,
                cache_dir=str(cache), seed=2020)
    cfg = RunDir(run_dir).read_config()
    device = torch.device("cpu")

    # the same inputs torch-fidelity gets from ganneal, built by hand for the direct call
    from omegaconf import OmegaConf

    from gan_anneal.data import build_dataset

    reference = build_dataset(OmegaConf.to_container(cfg.dataset, resolve=True)).uint8_images()
    generator, _, _ = run_eval.load_generator(run_dir, cfg, tuple(reference.shape[1:]), device, "auto")
    fidelity.register_extractors()

    class Plain(torch.nn.Module):  # what a user writes: z → uint8 images
        def __init__(self, g):
            super().__init__()
            self.g = g

        def forward(self, z):
            return to_uint8(self.g(z))

    def ganneal_eval():
        return run_eval.evaluate_run(run_dir, options.resolve_options(run_dir, **opts), log=lambda m: None)

    def direct_eval():
        return torch_fidelity.calculate_metrics(
            input1=torch_fidelity.GenerativeModelModuleWrapper(Plain(generator), generator.z_dim, "normal", 0),
            input1_model_num_samples=n, input2=inputs.uint8_dataset(reference), cuda=False, save_cpu_ram=True,
            isc=True, fid=True, feature_extractor=extractors.TINY, batch_size=64, isc_splits=2, cache=False,
            verbose=False)

    cold, warm, direct = [], [], []
    ganneal_eval()  # warm-up (imports, registration)
    direct_eval()
    for r in range(args.eval_repeats):
        shutil.rmtree(cache, ignore_errors=True)
        t0 = time.perf_counter()
        protocol = ganneal_eval()["protocol"]
        cold.append(time.perf_counter() - t0)
        assert not protocol["reference_cache"]["hit"]
        t0 = time.perf_counter()
        protocol = ganneal_eval()["protocol"]
        warm.append(time.perf_counter() - t0)
        assert protocol["reference_cache"]["hit"]
        t0 = time.perf_counter()
        direct_eval()
        direct.append(time.perf_counter() - t0)
        console.print(f"[dim]  round {r + 1}/{args.eval_repeats}: ganneal cold {cold[-1]:.2f} s, warm {warm[-1]:.2f} s, "
                      f"torch-fidelity direct {direct[-1]:.2f} s[/]")

    # the two stages on their own: generation (ganneal's wrapper vs a plain module) and the extractor
    wrapper = inputs.generator_input(generator, 2020)
    plain = Plain(generator).eval()
    extractor = torch_fidelity.registry.FEATURE_EXTRACTORS_REGISTRY[extractors.TINY](extractors.TINY, ["features", "logits"]).eval()
    images = reference[:n] if len(reference) >= n else reference.repeat((n // len(reference)) + 1, 1, 1, 1)[:n]

    def gen(module):
        def f():
            with torch.no_grad():
                for i in range(0, n, 64):
                    module(torch.randn(min(64, n - i), generator.z_dim))
        return f

    def extract():
        with torch.no_grad():
            for i in range(0, n, 64):
                extractor(images[i:i + 64])

    stage = rounds({"gen_ganneal": gen(wrapper.module if hasattr(wrapper, "module") else wrapper),
                    "gen_plain": gen(plain), "extract": extract},
                   repeats=args.eval_repeats, inner=1, warmup=1, console=console)
    return {"num_samples": n, "reference_images": len(reference), "extractor": extractors.TINY,
            "cold_s": cold, "warm_s": warm, "direct_s": direct,
            "speed_vs_direct": paired_ratio(direct, cold), "warm_vs_direct": paired_ratio(direct, warm),
            "cache_speedup": paired_ratio(cold, warm),
            "gen_ganneal_img_per_s": n / median(stage["gen_ganneal"]), "gen_plain_img_per_s": n / median(stage["gen_plain"]),
            "gen_speed_vs_plain": paired_ratio(stage["gen_plain"], stage["gen_ganneal"]),
            "extract_img_per_s": n / median(stage["extract"]),
            "ganneal_img_per_s": (n + len(reference)) / median(cold), "direct_img_per_s": (n + len(reference)) / median(direct)}


def worker(threads: int, seconds: float) -> None:
    """One sweep job's inner loop, in its own process: print steps/s of the MLP toy."""
    import torch

    torch.set_num_threads(threads)
    exp = build(MLP + [f"device.threads={threads}"])
    step = ganneal_stepper(exp)
    for _ in range(5):
        step()
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        count += 1
    print(json.dumps({"threads": threads, "steps_per_s": count / (time.perf_counter() - t0)}))


def bench_parallel(args, console) -> dict:
    cores = os.cpu_count() or 1
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def launch(n_procs: int, threads: int) -> float:
        cmd = [sys.executable, __file__, "--worker", str(threads), "--seconds", str(args.parallel_seconds)]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                                  env={**env, "OMP_NUM_THREADS": str(threads)}) for _ in range(n_procs)]
        rates = [json.loads(p.communicate()[0].strip().splitlines()[-1])["steps_per_s"] for p in procs]
        return sum(rates)

    single, multi = [], []
    for r in range(args.parallel_repeats):
        for kind in (("multi", "single") if r % 2 == 0 else ("single", "multi")):
            if kind == "multi":
                multi.append(launch(1, cores))
            else:
                single.append(launch(cores, 1))
        console.print(f"[dim]  round {r + 1}/{args.parallel_repeats}: {cores}×1 thread {single[-1]:.1f} steps/s, "
                      f"1×{cores} threads {multi[-1]:.1f} steps/s[/]")
    return {"cores": cores, "single_thread_jobs_steps_per_s": single, "one_multithread_job_steps_per_s": multi,
            "parallel_speedup": paired_ratio(single, multi)}


# Report ----------------------------------------------------------------------------------------------------

def report(res: dict, console) -> None:
    from rich.table import Table

    t = Table(title=f"ganneal benchmarks · {res['machine']['cpu']} · {res['machine']['threads']} threads · "
                    f"load {res['load_before']} → {res['load_after']}")
    for col, just in (("measurement", "left"), ("ganneal", "right"), ("reference", "right"),
                      ("ratio", "right"), ("target", "right")):
        t.add_column(col, justify=just)
    ms = lambda s: f"{1e3 * s:.1f} ms"  # noqa: E731
    steps = res.get("step", {})
    names = {"mlp": "MLP toy (512×3, batch 512)", "dcgan": "DCGAN-32 (batch 64)"}
    for model, r in steps.items():
        m = r["median_s"]
        ok = "✓" if r["speed_vs_bare"] >= 1.0 else "✗"
        t.add_row(f"{names[model]}: step vs bare loop", ms(m["ganneal"]), ms(m["bare"]),
                  f"{r['speed_vs_bare']:.2f}× {ok}", "≥ 1.00×")
        other = str(r["toggled_reuse_fake"]).lower()
        t.add_row(f"{names[model]}: step with train.reuse_fake={other} (not the default) vs bare loop",
                  ms(m["toggled"]), ms(m["bare"]), f"{r['toggled_speed_vs_bare']:.2f}×", "")
    for model, r in steps.items():
        m = r["median_s"]
        score = "exact score" if model == "mlp" else "dsm score"
        ok = "✓" if r["regularizer_overhead"] <= 0.15 else "✗"
        t.add_row(f"{names[model]}: + likelihood regulariser ({score})", ms(m["ganneal+reg"]), ms(m["ganneal"]),
                  f"+{100 * r['regularizer_overhead']:.0f}% {ok}", "≤ +15%")
        if "reg_wide" in m:
            t.add_row(f"{names[model]}: + likelihood regulariser (dsm, score.conv_hidden=32, not the default)",
                      ms(m["reg_wide"]), ms(m["ganneal"]), f"+{100 * r['regularizer_wide_overhead']:.0f}%", "")
    if "dcgan" in steps:
        r = steps["dcgan"]
        ok = "✓" if r["fraction_of_peak"] >= 0.75 else "✗"
        t.add_row(f"DCGAN-32: achieved FLOP/s ({r['flops']['ganneal'] / 1e9:.1f} GFLOP/step) vs fp32 matmul peak",
                  f"{r['achieved_flops_per_s'] / 1e9:.0f} GFLOP/s", f"{r['matmul_peak_flops_per_s'] / 1e9:.0f} GFLOP/s",
                  f"{100 * r['fraction_of_peak']:.0f}% {ok}", "≥ 75%")
        t.add_row(f"DCGAN-32: bare loop FLOP/s ({r['flops']['bare'] / 1e9:.1f} GFLOP/step)",
                  "", f"{r['achieved_bare_flops_per_s'] / 1e9:.0f} GFLOP/s", "", "")
    for model, r in steps.items():
        m = r["median_s"]
        t.add_row(f"{names[model]}: device.precision=bf16 vs fp32", ms(m["bf16"]), ms(m["ganneal"]),
                  f"{r['bf16_speedup']:.2f}×", "> 1 to adopt")
    if "dcgan" in steps:
        r = steps["dcgan"]
        t.add_row("DCGAN-32: device.channels_last vs default", ms(r["median_s"]["channels_last"]),
                  ms(r["median_s"]["ganneal"]), f"{r['channels_last_speedup']:.2f}×", "")
    if "eval" in res:
        e = res["eval"]
        tag = f"{e['num_samples']} samples + {e['reference_images']} real, {e['extractor']} stand-in"
        t.add_row(f"evaluate IS+FID ({tag}) vs torch-fidelity direct", f"{median(e['cold_s']):.2f} s",
                  f"{median(e['direct_s']):.2f} s", f"{e['speed_vs_direct']:.2f}×", "")
        t.add_row("evaluate, second call (real statistics cached) vs first", f"{median(e['warm_s']):.2f} s",
                  f"{median(e['cold_s']):.2f} s", f"{e['cache_speedup']:.2f}×", "")
        t.add_row("generation, ganneal's evaluate wrapper vs plain G(z) → uint8",
                  f"{e['gen_ganneal_img_per_s']:.0f} img/s", f"{e['gen_plain_img_per_s']:.0f} img/s",
                  f"{e['gen_speed_vs_plain']:.2f}×", "")
        t.add_row("feature extraction (stand-in extractor, same for both)", f"{e['extract_img_per_s']:.0f} img/s", "",
                  "", "")
    if "parallel" in res:
        p = res["parallel"]
        c = p["cores"]
        t.add_row(f"MLP toy sweep: {c} single-thread jobs vs one {c}-thread job (steps/s summed)",
                  f"{median(p['single_thread_jobs_steps_per_s']):.1f}/s",
                  f"{median(p['one_multithread_job_steps_per_s']):.1f}/s", f"{p['parallel_speedup']:.2f}×", "")
    console.print(t)
    console.print("ratio: > 1 means ganneal (or the option) is faster; medians of per-round ratios over interleaved "
                  "rounds. Times are medians per step.")


def main() -> None:
    global DCGAN
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="step,eval,parallel", help="comma-separated: step, eval, parallel")
    parser.add_argument("--quick", action="store_true", help="fewer repeats: a smoke run")
    parser.add_argument("--repeats", type=int, default=9, help="rounds for the MLP toy")
    parser.add_argument("--mlp-inner", type=int, default=10, help="steps per round (MLP)")
    parser.add_argument("--dcgan-repeats", type=int, default=7)
    parser.add_argument("--dcgan-inner", type=int, default=2)
    parser.add_argument("--eval-samples", type=int, default=1000)
    parser.add_argument("--eval-repeats", type=int, default=3)
    parser.add_argument("--parallel-seconds", type=float, default=15.0)
    parser.add_argument("--parallel-repeats", type=int, default=2)
    parser.add_argument("--out", default=None, help="JSON file (default: benchmarks/results/bench-<time>.json)")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        return worker(args.worker, args.seconds)
    if args.quick:
        args.repeats, args.mlp_inner, args.dcgan_repeats, args.dcgan_inner = 3, 3, 3, 1
        args.eval_samples, args.eval_repeats, args.parallel_seconds, args.parallel_repeats = 256, 1, 5.0, 1

    import torch
    from rich.console import Console

    console = Console(width=max(150, Console().width))  # the table's rows stay one line each
    WORK.mkdir(parents=True, exist_ok=True)
    (RESULTS / ".gitignore").write_text(".work/\n")
    DCGAN = ["dataset=cifar10", f"dataset.root={fabricated_cifar(1000)}"]
    started = time.perf_counter()
    res = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "load_before": loadavg(),
           "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
                       "torch": torch.__version__, "python": platform.python_version()},
           "args": vars(args)}
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    for name, fn in (("step", bench_steps), ("eval", bench_eval), ("parallel", bench_parallel)):
        if name in sections:
            console.print(f"[bold blue]{name}[/] (load {loadavg()})")
            res[name] = fn(args, console)
    res["load_after"] = loadavg()
    res["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.out) if args.out else RESULTS / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    report(res, console)
    console.print(f"JSON: [bold]{out}[/] · {res['seconds']:.0f} s")


if __name__ == "__main__":
    main()
