"""Named sweeps (`conf/sweep/<name>.yaml`): the paper's grid as deterministic run directories, resumable.

    ganneal sweep cifar10_table [--out DIR] [--jobs N] [--retry-failed] [OVERRIDES...]

A sweep file names the divergences, the static λ values, the dynamic schedules, the seeds, the overrides
every run shares, and, for image sweeps, the evaluation that follows each run (IS / FID through
gan_anneal.evaluate.fidelity, written to the run's eval.json). Each run lives in

    <out>/<divergence>/static_<λ>_seed<k>   or   <out>/<divergence>/<pma|nma|oa>_seed<k>

so a restart finds it and decides from its files alone:

    no summary.json                     train
    status running | interrupted        resume from checkpoints/last.pt (train afresh if there is none)
    status done, evaluation missing     evaluate only
    status done (and evaluated)         skip
    status failed                       skip; train afresh with --retry-failed
    status diverged                     skip: a result (the table shows it), not an accident

SIGINT / SIGTERM stop the sweep cleanly: the training run in progress saves a checkpoint and is marked
interrupted, nothing else starts, and the next `ganneal sweep` resumes it.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gan_anneal.config import CONF_DIR
from gan_anneal.errors import UserError
from gan_anneal.results.collect import MANIFEST, column_key

SWEEP_DIR = Path(CONF_DIR) / "sweep"
EVAL_KEYS = ("metrics", "num_samples", "batch_size", "extractor", "inception_weights", "reference_split",
             "reference_count", "is_splits", "generator", "cache_dir")


@dataclass
class SweepSpec:
    name: str
    description: str = ""
    out: str = ""
    divergences: list[str] = field(default_factory=list)
    static: list[float] = field(default_factory=list)
    dynamic: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    overrides: list[str] = field(default_factory=list)
    evaluate: dict[str, Any] | None = None  # options of gan_anneal.evaluate.fidelity.resolve_options
    requires: dict[str, Any] = field(default_factory=dict)  # gpu, dataset, inception_weights
    fabricate: dict[str, Any] | None = None  # {cifar10: {root, per_batch}}: fabricated data for smoke runs


def available_sweeps() -> list[str]:
    return sorted(p.stem for p in SWEEP_DIR.glob("*.yaml"))


def load_sweep(name: str) -> SweepSpec:
    from omegaconf import OmegaConf

    path = SWEEP_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"No sweep named '{name}'. Valid: {', '.join(available_sweeps())} (files in {SWEEP_DIR}).")
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    unknown = set(data) - set(SweepSpec.__dataclass_fields__)
    if unknown:
        raise UserError(f"{path}: unknown keys {', '.join(sorted(unknown))}. "
                        f"Valid: {', '.join(SweepSpec.__dataclass_fields__)}.")
    data.setdefault("out", f"runs/{name}")
    return SweepSpec(name=name, **{k: v for k, v in data.items() if k != "name"})


@dataclass
class Job:
    divergence: str
    anneal: str
    lam: float | None
    seed: int
    path: str
    overrides: list[str]

    @property
    def column(self) -> str:
        return column_key(self.anneal, self.lam)

    @property
    def label(self) -> str:
        return f"{self.divergence} {self.column} seed {self.seed}"


def _keep(value: str, chosen: list[str] | None) -> bool:
    return chosen is None or value.lower() in {c.lower() for c in chosen}


def plan_jobs(spec: SweepSpec, out: str | Path, extra: list[str] = (), divergences: list[str] | None = None,
              columns: list[str] | None = None) -> list[Job]:
    """The grid in table order: divergence × (static λ ascending as listed, then the dynamic schedules) × seed.
    `divergences` / `columns` (column keys such as -1, 0, PMA) restrict it."""
    out = Path(out)
    wanted_columns = [column_key("static", c) if _is_number(c) else c.upper() for c in columns] if columns else None
    unknown = [d for d in (divergences or []) if d not in spec.divergences]
    if unknown:
        raise UserError(f"--divergences: {', '.join(unknown)} not in sweep {spec.name} ({', '.join(spec.divergences)}).")
    grid = [("static", float(lam)) for lam in spec.static] + [(name, None) for name in spec.dynamic]
    known = [column_key(a, lam) for a, lam in grid]
    unknown = [c for c in (wanted_columns or []) if c not in known]
    if unknown:
        raise UserError(f"--columns: {', '.join(unknown)} not in sweep {spec.name} ({', '.join(known)}).")
    base = list(spec.overrides)
    if spec.fabricate and "cifar10" in spec.fabricate:
        base.append(f"dataset.root={fabricated_root(spec, out)}")
    jobs = []
    for divergence in spec.divergences:
        if not _keep(divergence, divergences):
            continue
        for anneal, lam in grid:
            if not _keep(column_key(anneal, lam), wanted_columns):
                continue
            name = f"static_{lam:g}" if anneal == "static" else anneal
            schedule = [f"anneal={anneal}"] + ([f"anneal.lam={lam:g}"] if anneal == "static" else [])
            for seed in spec.seeds:
                jobs.append(Job(divergence, anneal, lam, int(seed), str(out / divergence / f"{name}_seed{seed}"),
                                [*base, f"divergence={divergence}", *schedule, f"seed={seed}", *extra]))
    return jobs


def _is_number(text: Any) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def fabricated_root(spec: SweepSpec, out: Path) -> Path:
    root = Path(os.path.expanduser(str((spec.fabricate or {}).get("cifar10", {}).get("root", "data"))))
    return root if root.is_absolute() else (Path(out) / root).absolute()


# What to do with one run, from its files alone -----------------------------------------------------------

def evaluated(path: Path, spec: SweepSpec) -> bool:
    import json

    if not spec.evaluate:
        return True
    try:
        numbers = json.loads((path / "eval.json").read_text())["fidelity"]["metrics"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    wanted = {"is": "is_mean", "fid": "fid", "kid": "kid_mean"}
    names = [m.strip() for m in str(spec.evaluate.get("metrics", "is,fid")).split(",") if m.strip()]
    return all(wanted[m] in numbers for m in names if m in wanted)


def next_action(job: Job, spec: SweepSpec, retry_failed: bool = False) -> str:
    """train | resume | evaluate | skip | skip-failed (see the module docstring)."""
    from gan_anneal.results.rundir import RunDir

    run = RunDir(job.path)
    status = run.read_summary().get("status") if run.exists() else None
    if status is None:
        return "train"
    if status in ("running", "interrupted"):
        return "resume" if run.checkpoint.is_file() else "train"
    if status == "done":
        return "skip" if evaluated(run.path, spec) else "evaluate"
    if status == "failed":
        return "train" if retry_failed else "skip-failed"
    return "skip"  # diverged


def _clear(path: Path) -> None:
    """Before training afresh in an old run folder: drop what the last attempt left."""
    for name in ("metrics.jsonl", "summary.json", "eval.json", "error.txt", "eval_error.txt"):
        (path / name).unlink(missing_ok=True)
    shutil.rmtree(path / "checkpoints", ignore_errors=True)


def run_job(task: dict) -> dict:
    """Train (or resume) one run, then evaluate it. Top level, so a process pool can run it."""
    started = time.perf_counter()
    spec = SweepSpec(**task["spec"])
    job = Job(**task["job"])
    action = task["action"]
    path = Path(job.path)
    threads = task.get("threads")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    if spec.fabricate:
        from gan_anneal.experiments.fabricated import accept_fabricated_cifar10

        accept_fabricated_cifar10()
    from gan_anneal import runner

    quiet, runner.console.quiet = runner.console.quiet, bool(task.get("quiet", True))  # the sweep reports each run
    try:
        return _run_job(task, spec, job, action, path, started)
    finally:
        runner.console.quiet = quiet


def _run_job(task: dict, spec: SweepSpec, job: Job, action: str, path: Path, started: float) -> dict:
    import traceback

    outcome = "done"
    if action in ("train", "resume"):
        from gan_anneal.config import compose
        from gan_anneal.runner import run_training

        if action == "train" and path.exists():
            _clear(path)
        try:
            cfg = compose(job.overrides)
        except UserError as error:
            from gan_anneal.results.rundir import RunDir

            RunDir(path).update_summary(status="failed", error=str(error))
            return {"path": job.path, "action": action, "outcome": "bad-input", "eval": None,
                    "seconds": time.perf_counter() - started, "error": str(error)}
        outcome = run_training(cfg, path)
        if outcome != "done":
            from gan_anneal.results.rundir import RunDir

            error = RunDir(path).read_summary().get("error")
            return {"path": job.path, "action": action, "outcome": outcome, "eval": None,
                    "seconds": round(time.perf_counter() - started, 2), "error": error}
    evaluation = None
    if outcome == "done" and spec.evaluate:
        evaluation = "done"
        try:
            from gan_anneal.evaluate.fidelity import evaluate_run, resolve_options

            options = resolve_options(path, **{k: v for k, v in spec.evaluate.items() if k in EVAL_KEYS})
            evaluate_run(path, options, log=lambda message: None)
            (path / "eval_error.txt").unlink(missing_ok=True)
        except KeyboardInterrupt:
            evaluation, outcome = "interrupted", "interrupted"
        except Exception as error:  # noqa: BLE001 -- the run stays done; the next `ganneal sweep` evaluates again
            (path / "eval_error.txt").write_text(traceback.format_exc())
            evaluation = f"failed: {type(error).__name__}: {error}"
    return {"path": job.path, "action": action, "outcome": outcome, "eval": evaluation,
            "seconds": round(time.perf_counter() - started, 2)}


# Prerequisites -------------------------------------------------------------------------------------------

def check_prerequisites(spec: SweepSpec, extra: list[str] = ()) -> list[str]:
    """What a sweep needs and this machine lacks, as sentences saying what to do (empty: all present)."""
    problems = []
    requires = spec.requires or {}
    if requires.get("gpu"):
        import torch

        if not torch.cuda.is_available():
            problems.append("GPU: PyTorch sees no CUDA device (100k DCGAN steps take about 14 h per run on a CPU). "
                            "Run on a GPU machine, or try the pipeline first with `make cifar10-table-smoke`.")
    if requires.get("dataset") == "cifar10":
        from gan_anneal.config import compose
        from gan_anneal.data.images import CIFAR10_FILES

        try:
            cfg = compose([o for o in [*spec.overrides, *extra] if not o.startswith("device=")])
            root = Path(os.path.expanduser(str(cfg.dataset.root)))
        except UserError as error:
            problems.append(f"config: {error}")
            root = None
        if root is not None:
            missing = [f for f in CIFAR10_FILES if not (root / "cifar-10-batches-py" / f).is_file()]
            if missing:
                problems.append(f"dataset: CIFAR-10 is not in {root / 'cifar-10-batches-py'} (missing "
                                f"{', '.join(missing)}). Unpack cifar-10-python.tar.gz there, or set "
                                "GANNEAL_DATA (or pass dataset.root=DIR) to the folder holding cifar-10-batches-py.")
    if requires.get("inception_weights"):
        from gan_anneal.evaluate.fidelity import resolve_inception_weights

        try:
            resolve_inception_weights(None, (spec.evaluate or {}).get("inception_weights"))
        except UserError as error:
            problems.append(f"Inception weights: {error}")
    return problems


# The sweep -----------------------------------------------------------------------------------------------

@dataclass
class SweepReport:
    planned: int
    actions: dict[str, int]
    results: list[dict]
    interrupted: bool

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        bad = [r for r in self.results if r["outcome"] != "done" or (r["eval"] not in (None, "done"))]
        return 1 if bad else 0


def write_manifest(spec: SweepSpec, out: Path, jobs: list[Job], extra: list[str]) -> None:
    from omegaconf import OmegaConf

    from gan_anneal.results.rundir import atomic_write_text

    columns = list(dict.fromkeys(j.column for j in jobs))
    data = {"sweep": spec.name, "description": spec.description, "divergences": list(dict.fromkeys(
        j.divergence for j in jobs)), "columns": columns, "seeds": spec.seeds, "extra_overrides": list(extra),
        "spec": asdict(spec), "runs": [j.path for j in jobs]}
    atomic_write_text(out / MANIFEST, OmegaConf.to_yaml(OmegaConf.create(data)))


def run_sweep(spec: SweepSpec, out: str | Path, extra: list[str] = (), jobs: int = 1, retry_failed: bool = False,
              divergences: list[str] | None = None, columns: list[str] | None = None,
              log: Callable[[str], None] = print) -> SweepReport:
    out = Path(out)
    extra = list(extra)
    if jobs > 1 and not any(o.startswith("device.threads=") for o in extra):
        threads = max(1, (os.cpu_count() or 1) // jobs)
        extra.append(f"device.threads={threads}")  # parallel single-thread jobs beat one multi-thread job on CPU
    planned = plan_jobs(spec, out, extra, divergences, columns)
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(spec, out, planned, extra)
    if spec.fabricate and "cifar10" in spec.fabricate:
        from gan_anneal.experiments.fabricated import write_fabricated_cifar10

        root = write_fabricated_cifar10(fabricated_root(spec, out),
                                        per_batch=int(spec.fabricate["cifar10"].get("per_batch", 64)))
        log(f"fabricated CIFAR-10 (random images, smoke only) in {root}")
    actions = {job.path: next_action(job, spec, retry_failed) for job in planned}
    counts: dict[str, int] = {}
    for action in actions.values():
        counts[action] = counts.get(action, 0) + 1
    log(f"sweep {spec.name}: {len(planned)} runs in {out} · " + ", ".join(f"{n} {a}" for a, n in counts.items()))
    for job in planned:
        if actions[job.path] == "skip-failed":
            log(f"  {job.label}: failed before; skipped (pass --retry-failed to train it again)")
    todo = [j for j in planned if actions[j.path] in ("train", "resume", "evaluate")]
    spec_dict = asdict(spec)
    tasks = [{"spec": spec_dict, "job": asdict(j), "action": actions[j.path]} for j in todo]
    results: list[dict] = []
    interrupted = False

    def report(result: dict) -> None:
        results.append(result)
        evaluation = f", evaluation {result['eval']}" if result["eval"] else ""
        error = f" — {result['error']}" if result.get("error") else ""
        log(f"  [{len(results)}/{len(todo)}] {result['action']} {result['path']}: {result['outcome']}{evaluation} "
            f"({result['seconds']:.1f} s){error}")

    def to_keyboard_interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, to_keyboard_interrupt) if _main_thread() else None
    try:
        if jobs <= 1:
            for task in tasks:
                result = run_job(task)
                report(result)
                if result["outcome"] == "interrupted":
                    interrupted = True
                    break
        else:
            interrupted = _run_pool(tasks, jobs, report)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if interrupted:
        log("sweep interrupted: run `ganneal sweep` again to resume it (finished runs are kept).")
    return SweepReport(len(planned), counts, results, interrupted)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _run_pool(tasks: list[dict], jobs: int, report: Callable[[dict], None]) -> bool:
    """Run tasks in `jobs` fresh (spawned) processes. On SIGTERM the workers are sent SIGTERM too (a Ctrl-C
    reaches them from the terminal): their training loops checkpoint and mark the run interrupted, and nothing
    new starts. The signal only sets a flag here, so it never lands inside the pool's own locks."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))
    stop = {"signal": None}

    def on_signal(signum, frame):
        stop["signal"] = signum
        if signum == signal.SIGTERM:
            for process in list(getattr(pool, "_processes", {}).values()):
                try:
                    os.kill(process.pid, signal.SIGTERM)
                except OSError:
                    pass

    previous = {}
    if _main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    pending: set = set()
    queue = list(tasks)
    interrupted = False
    try:
        while queue and len(pending) < jobs:
            pending.add(pool.submit(run_job, queue.pop(0)))
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    result = future.result()
                except Exception as error:  # noqa: BLE001 -- a worker killed while idle breaks the pool
                    result = {"path": "?", "action": "?", "outcome": "interrupted" if stop["signal"] else "failed",
                              "eval": None, "seconds": 0.0, "error": f"{type(error).__name__}: {error}"}
                report(result)
                interrupted |= result["outcome"] == "interrupted"
            interrupted |= stop["signal"] is not None
            while queue and len(pending) < jobs and not interrupted:
                pending.add(pool.submit(run_job, queue.pop(0)))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        pool.shutdown(wait=True, cancel_futures=True)
    return interrupted
