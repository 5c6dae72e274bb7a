"""Named sweeps (`conf/sweep/<name>.yaml`): the paper's grid as one Hydra multirun per block, resumable.

    ganneal sweep cifar10_table [--out DIR] [--launcher basic|joblib|submitit_local|submitit_slurm] [--jobs N]
                                [--retry] [OVERRIDES...]

A sweep file names the divergences, the static λ values, the dynamic schedules, the seeds, the overrides
every run shares, and, for image sweeps, the evaluation that follows each run (IS / FID, written to the run's
eval.json by the job itself). The grid is launched as two Hydra multiruns (static: divergence × λ × seed;
dynamic: divergence × schedule × seed) through the chosen launcher, each job in a deterministic folder

    <out>/<divergence>/static_<λ>_seed<k>   or   <out>/<divergence>/<pma|nma|oa>_seed<k>

Started again, every job decides from its own folder (results/continuation.py): finished jobs end at once
(and evaluate if their eval.json lacks a metric), interrupted or killed ones resume from their checkpoint. A
folder holding a run with other settings (differs) or a failed run is reported and trained afresh only with
--retry; a diverged run is a result and stays. Where the jobs run is the launcher's business: joblib for
parallel single-thread jobs on one machine, submitit on SLURM (a preempted job is requeued and resumes).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from gan_anneal.config import CONF_DIR, compose, force_swept_group_keys
from gan_anneal.errors import UserError
from gan_anneal.evaluate.extractors import resolve_inception_weights
from gan_anneal.experiments.sweep_progress import SweepProgress
from gan_anneal.hydra_app import hydra_train
from gan_anneal.results.collect import MANIFEST, column_key
from gan_anneal.results.continuation import launch_action
from gan_anneal.results.evaluations import has_metrics
from gan_anneal.results.rundir import RunDir, atomic_write_text
from gan_anneal.results.slurm_jobs import ON_THE_CLUSTER, live_jobs
from gan_anneal.runner import EXIT_CODES
from gan_anneal.train.signals import signal_handlers

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
    evaluate: dict[str, Any] | None = None  # options of gan_anneal.evaluate.options.resolve_options
    requires: dict[str, Any] = field(default_factory=dict)  # gpu, dataset, inception_weights
    fabricate: dict[str, Any] | None = None  # {cifar10: {root, per_batch}}: fabricated data for smoke runs


def available_sweeps() -> list[str]:
    return sorted(p.stem for p in SWEEP_DIR.glob("*.yaml"))


def load_sweep(name: str) -> SweepSpec:

    given = Path(name).expanduser()
    if given.suffix in (".yaml", ".yml") or "/" in name:  # a sweep file of the user's own, validated alike
        if not given.is_file():
            raise UserError(f"No sweep file {given}. Copy one of {SWEEP_DIR}/*.yaml and edit it.")
        path, name = given, given.stem
    else:
        path = SWEEP_DIR / f"{name}.yaml"
        if not path.is_file():
            raise UserError(f"No sweep named '{name}'. Valid: {', '.join(available_sweeps())} (files in {SWEEP_DIR}), "
                            "or the path of a sweep file (my_sweep.yaml).")
    try:
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as error:  # noqa: BLE001 -- a YAML or interpolation error in the user's file
        raise UserError(f"{path} does not load: {error}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a sweep file is a mapping (description, divergences, static, dynamic, seeds, ...).")
    unknown = set(data) - set(SweepSpec.__dataclass_fields__)
    if unknown:
        raise UserError(f"{path}: unknown keys {', '.join(sorted(unknown))}. "
                        f"Valid: {', '.join(SweepSpec.__dataclass_fields__)}.")
    for key in ("divergences", "static", "dynamic", "seeds", "overrides"):
        if key in data and not isinstance(data[key], list):
            raise UserError(f"{path}: {key} must be a list, e.g. {key}: [{'0, 1' if key == 'seeds' else '...'}], "
                            f"got {data[key]!r}.")
    if not all(isinstance(seed, int) and not isinstance(seed, bool) for seed in data.get("seeds", [0])):
        raise UserError(f"{path}: seeds must be integers, got {data['seeds']}.")
    data.setdefault("out", f"runs/{name}")
    try:
        return SweepSpec(name=name, **{k: v for k, v in data.items() if k != "name"})
    except TypeError as error:  # a required key missing
        raise UserError(f"{path}: {error}. Valid keys: {', '.join(SweepSpec.__dataclass_fields__)}.") from None


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
              columns: list[str] | None = None, seeds: list[int] | None = None) -> list[Job]:
    """The grid in table order: divergence × (static λ ascending as listed, then the dynamic schedules) × seed.
    `divergences` / `columns` (column keys such as -1, 0, PMA) / `seeds` restrict it."""
    unknown_seeds = [s for s in (seeds or []) if s not in [int(x) for x in spec.seeds]]
    if unknown_seeds:
        raise UserError(f"--seeds: {', '.join(map(str, unknown_seeds))} not in sweep {spec.name} "
                        f"({', '.join(map(str, spec.seeds))}).")
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
    base = shared_overrides(spec, out)
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
                if seeds is not None and int(seed) not in seeds:
                    continue
                jobs.append(Job(divergence, anneal, lam, int(seed), str(out / divergence / f"{name}_seed{seed}"),
                                [*base, f"divergence={divergence}", *schedule, f"seed={seed}", *extra]))
    return jobs


def shared_overrides(spec: SweepSpec, out: str | Path) -> list[str]:
    """What every job of the sweep shares: its overrides, the fabricated data's root, its evaluation settings."""
    base = list(spec.overrides)
    if spec.fabricate and "cifar10" in spec.fabricate:
        base.append(f"dataset.root={fabricated_root(spec, Path(out))}")
    return [*base, *evaluation_overrides(spec)]


def _is_number(text: Any) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def fabricated_root(spec: SweepSpec, out: Path) -> Path:
    root = Path(os.path.expanduser(str((spec.fabricate or {}).get("cifar10", {}).get("root", "data"))))
    return root if root.is_absolute() else (Path(out) / root).absolute()


# What each job's folder holds ----------------------------------------------------------------------------

def evaluated(path: Path, spec: SweepSpec) -> bool:
    """Whether the run holds the sweep's evaluation (its metrics, sample count and extractor)."""
    ev = spec.evaluate or {}
    return has_metrics(path, ev.get("metrics"), ev.get("num_samples"), ev.get("extractor"))


def next_action(job: Job, spec: SweepSpec) -> str:
    """train | resume | evaluate | skip | differs | failed | diverged | busy: what launching this job will do
    (continuation.launch_action with the sweep's evaluation; a finished, evaluated run is skipped)."""
    if not RunDir(job.path).exists():
        return "train"
    action = launch_action(job.path, compose(job.overrides))
    if action == "done":
        return "skip" if evaluated(job.path, spec) else "evaluate"
    return action


def clear_run(path: Path) -> None:
    """--retry: drop what a differing or failed attempt left, so the job trains afresh."""
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "eval.json", "error.txt", "eval_error.txt",
                 "train.log"):
        (path / name).unlink(missing_ok=True)
    shutil.rmtree(path / "checkpoints", ignore_errors=True)


def evaluation_overrides(spec: SweepSpec) -> list[str]:
    """The sweep's evaluation as the jobs' own `evaluate.*` settings: each job evaluates after training."""
    if not spec.evaluate:
        return []
    def value(v):  # quoted, so that 'is,fid' stays one value rather than a sweep over two
        return f"'{v}'" if isinstance(v, str) else v

    settings = [f"evaluate.{k}={value(v)}" for k, v in spec.evaluate.items() if k in EVAL_KEYS and v is not None]
    return [*settings, "evaluate.after_training=true"]


def launch_blocks(spec: SweepSpec, out: Path, extra: list[str], divergences: list[str] | None,
                  columns: list[str] | None, seeds: list[int] | None = None) -> list[list[str]]:
    """The grid as Hydra multirun override lists, one per cartesian block, whose job folders are plan_jobs' paths."""
    jobs = plan_jobs(spec, out, extra, divergences, columns, seeds)
    rows = list(dict.fromkeys(j.divergence for j in jobs))
    seeds = ",".join(dict.fromkeys(str(j.seed) for j in jobs))
    base = [*shared_overrides(spec, out), *extra, f"hydra.sweep.dir={out}"]
    blocks = []
    lams = list(dict.fromkeys(f"{j.lam:g}" for j in jobs if j.anneal == "static"))
    if lams:
        blocks.append([*base, f"divergence={','.join(rows)}", "anneal=static", f"anneal.lam={','.join(lams)}",
                       f"seed={seeds}", "hydra.sweep.subdir=${divergence.name}/static_${anneal.lam}_seed${seed}"])
    dynamic = list(dict.fromkeys(j.anneal for j in jobs if j.anneal != "static"))
    if dynamic:
        blocks.append([*base, f"divergence={','.join(rows)}", f"anneal={','.join(dynamic)}", f"seed={seeds}",
                       "hydra.sweep.subdir=${divergence.name}/${anneal.name}_seed${seed}"])
    return blocks


# Prerequisites -------------------------------------------------------------------------------------------

def check_prerequisites(spec: SweepSpec, extra: list[str] = ()) -> list[str]:
    """What a sweep needs and this machine lacks, as sentences saying what to do (empty: all present)."""
    problems = []
    requires = spec.requires or {}
    if requires.get("gpu"):
        import torch  # deferred: loads torch; this module stays torch-free at import

        if not torch.cuda.is_available():
            problems.append("GPU: PyTorch sees no CUDA device (100k DCGAN steps take about 14 h per run on a CPU). "
                            "Run on a GPU machine, or try the pipeline first with `make cifar10-table-smoke`.")
    if requires.get("dataset") == "cifar10":
        # deferred: loads torch; this module stays torch-free at import
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

        try:
            resolve_inception_weights(None, (spec.evaluate or {}).get("inception_weights"))
        except UserError as error:
            problems.append(f"Inception weights: {error}")
    return problems


# The sweep -----------------------------------------------------------------------------------------------

LAUNCHERS = ("basic", "joblib", "submitit_local", "submitit_slurm", "slurm")  # slurm: ganneal's (cluster.md)


@dataclass
class SweepReport:
    planned: int
    before: dict[str, int]  # what each job was going to do, counted
    after: dict[str, str]  # job path -> status read back from its folder (done, interrupted, ...)
    interrupted: str | None  # None, or the outcome that stopped the launch (interrupted | terminated)

    @property
    def exit_code(self) -> int:

        if self.interrupted:
            return EXIT_CODES[self.interrupted]
        ended = ("done", "diverged", *ON_THE_CLUSTER)  # differing, failed or busy jobs are reported, not trained
        return 0 if all(status in ended for status in self.after.values()) else 1


def write_manifest(spec: SweepSpec, out: Path, jobs: list[Job], extra: list[str]) -> None:
    """The sweep's whole grid (never a --divergences/--columns subset), for `ganneal table`."""

    columns = list(dict.fromkeys(j.column for j in jobs))
    data = {"sweep": spec.name, "description": spec.description, "divergences": list(dict.fromkeys(
        j.divergence for j in jobs)), "columns": columns, "seeds": spec.seeds, "extra_overrides": list(extra),
        "spec": asdict(spec), "runs": [j.path for j in jobs]}
    atomic_write_text(out / MANIFEST, OmegaConf.to_yaml(OmegaConf.create(data)))


def launcher_overrides(launcher: str, jobs: int, wait: bool = True) -> list[str]:
    if launcher not in LAUNCHERS:
        raise UserError(f"--launcher {launcher!r}: valid choices are {', '.join(LAUNCHERS)}.")
    if not wait and launcher != "slurm":
        raise UserError("--no-wait submits to SLURM and returns: it needs --launcher slurm.")
    if launcher == "basic":
        return []
    chosen = [f"hydra/launcher={launcher}"]
    if launcher == "joblib":
        chosen.append(f"hydra.launcher.n_jobs={jobs}")
    if not wait:
        chosen.append("hydra.launcher.wait=false")
    return chosen


def run_sweep(spec: SweepSpec, out: str | Path, extra: list[str] = (), launcher: str = "basic", jobs: int = 1,
              retry: bool = False, divergences: list[str] | None = None, columns: list[str] | None = None,
              seeds: list[int] | None = None, log: Callable[[str], None] = print,
              progress_every_s: float = 60.0, wait: bool = True) -> SweepReport:
    """Plan, report what each job will do, then launch the grid's blocks through Hydra with `launcher`."""
    out = Path(out).absolute()
    extra = list(extra)
    planned = plan_jobs(spec, out, extra, divergences, columns, seeds)
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(spec, out, plan_jobs(spec, out, extra), extra)
    if spec.fabricate and "cifar10" in spec.fabricate:
        # deferred: loads torch; this module stays torch-free at import
        from gan_anneal.experiments.fabricated import write_fabricated_cifar10

        root = write_fabricated_cifar10(fabricated_root(spec, out),
                                        per_batch=int(spec.fabricate["cifar10"].get("per_batch", 64)))
        log(f"fabricated CIFAR-10 (random images, smoke only) in {root}")
    actions = {job.path: next_action(job, spec) for job in planned}
    if launcher == "slurm":  # a job SLURM still holds is the cluster's (the launcher submits no second copy)
        actions.update({path: state for path, state in cluster_states(out).items() if path in actions})
    for job in planned:
        action = actions[job.path]
        if action in ("differs", "failed") and retry:
            clear_run(Path(job.path))
            actions[job.path] = "train"
        elif action in ("differs", "failed"):
            why = "holds a run with other settings" if action == "differs" else "failed before"
            log(f"  {job.label}: {why}; left as it is (pass --retry to train it afresh) — {job.path}")
    counts: dict[str, int] = {}
    for action in actions.values():
        counts[action] = counts.get(action, 0) + 1
    log(f"sweep {spec.name}: {len(planned)} runs in {out} · " + ", ".join(f"{n} {a}" for a, n in counts.items())
        + f" · launcher {launcher}" + (f" ({jobs} jobs)" if launcher == "joblib" else ""))
    interrupted = None
    if any(a in ("train", "resume", "evaluate") for a in actions.values()):

        chosen = launcher_overrides(launcher, jobs, wait)
        parallel = jobs if launcher == "joblib" else 1
        running = [job for job in planned if actions[job.path] in ("train", "resume", "evaluate")]
        blocks = launch_blocks(spec, out, extra, divergences, columns, seeds)
        if wait:
            with SweepProgress(running, parallel, log, every_s=progress_every_s,
                               measured=plan_jobs(spec, out, extra)) as progress:
                log(progress.poll(quiet=True))
                interrupted = launch_each(blocks, chosen)
        else:
            interrupted = launch_each(blocks, chosen)
    left = {"differs": "other settings, left as it was", "failed": "failed, left as it was", "busy": "busy elsewhere"}
    on_cluster = cluster_states(out) if launcher == "slurm" else {}
    after = {}
    for job in planned:
        status = _status(Path(job.path), spec)
        unfinished = status not in ("done", "diverged")
        after[job.path] = (unfinished and on_cluster.get(str(job.path))) or left.get(actions[job.path]) or status
    if interrupted:
        log("sweep interrupted: run `ganneal sweep` again to resume it (finished runs are kept).")
    return SweepReport(len(planned), counts, after, interrupted)


def launch_each(blocks: list[list[str]], chosen: list[str]) -> str | None:
    """Launch the blocks one after another; stop at the first interrupted one (its outcome)."""

    for block in blocks:
        interrupted = launch_multirun(force_swept_group_keys([*chosen, *block]))
        if interrupted:
            return interrupted
    return None


def cluster_states(out: Path) -> dict[str, str]:
    """{job folder: queued | running} for the sweep's jobs that SLURM still holds."""

    return {folder: state for folder, (_, state) in live_jobs(out).items()}


def _status(path: Path, spec: SweepSpec) -> str:

    status = RunDir(path).read_summary().get("status", "missing")
    if status == "done" and not evaluated(path, spec):
        return "not evaluated"
    return status


def _children(pid: int) -> list[int]:
    """The live child processes of `pid` (Linux /proc; empty elsewhere)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


@contextmanager
def forward_stop_signals(received: dict):
    """SIGINT/SIGTERM reach a launcher's worker processes (joblib's) too, so the jobs running there checkpoint
    and stop as they would in this process; nothing new is launched. In-process jobs install their own handlers."""
    def handler(signum, frame):
        received["signal"] = signum
        children = _children(os.getpid())
        if not children:  # between two in-process jobs: stop launching
            raise KeyboardInterrupt
        for child in children:
            try:
                os.kill(child, signum)
            except OSError:
                pass

    with signal_handlers((signal.SIGINT, signal.SIGTERM), handler):
        yield


def launch_multirun(overrides: list[str]) -> str | None:
    """One Hydra multirun in this process (the launcher decides where its jobs run). Returns None, or the outcome
    that stopped it (interrupted | terminated)."""

    saved, sys.argv = sys.argv, ["ganneal", "--multirun", *overrides]
    received: dict = {}
    try:
        with forward_stop_signals(received):
            hydra_train()
    except KeyboardInterrupt as stop:
        if received.get("signal") == signal.SIGTERM:
            return "terminated"
        return getattr(stop, "outcome", "interrupted")
    except Exception:  # a worker the signal reached between two jobs ends the launcher's pool
        if received:
            return "terminated" if received["signal"] == signal.SIGTERM else "interrupted"
        raise
    except SystemExit as error:  # Hydra reports a launcher failure by exiting
        if received:  # the failure was the stop we forwarded to the workers
            return "terminated" if received["signal"] == signal.SIGTERM else "interrupted"
        if error.code not in (0, None):
            raise UserError(f"the Hydra launch failed (exit {error.code}); run with HYDRA_FULL_ERROR=1 to see why.") \
                from None
    finally:
        sys.argv = saved
    return None
