"""What a job does with the directory it is given: start, resume, extend, or stop at once.

Every run starts through Hydra, and a job's directory (`hydra.run.dir`, or a multirun's sweep dir/subdir) may
already hold a run. Deciding from that directory alone makes a restarted sweep, a requeued SLURM job and a person
re-typing the command all do the same thing:

    no run there                               start
    same config, interrupted or stale running  resume from the checkpoint (bit-exact)
    same config, done                          nothing to do (exit 0)
    train.steps larger                         extend from the checkpoint (recorded in summary.json)
    train.steps smaller                        refuse (exit 2)
    any other key differs                      refuse, naming the keys (exit 2); the directory is untouched
    failed or diverged                         leave it; say how to retry
    running, with a live writer                refuse (exit 2): one writer per directory

Extending is a continuation, not a longer run: λ(t) and the learning-rate decay are functions of (step, total),
so at the join they are re-read on the new total (e.g. a linear decay that had reached 0 starts again from
1 − old/new). summary.json's `extensions` records each join; compare extended runs only with runs extended alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from gan_anneal.errors import UserError
from gan_anneal.legacy import ASSUMED
from gan_anneal.results.evaluations import has_metrics
from gan_anneal.results.rundir import RunDir
from gan_anneal.schema import flatten

# Keys that change neither the numbers nor the record: progress display, host threads, the resume shorthand.
NEUTRAL_KEYS = ("resume", "train.progress", "device.threads", "model.cpu_threads", "train.progress_every_s")


class NothingToDo(Exception):
    """The directory already holds the finished (or failed, or diverged) result of this config."""

    def __init__(self, message: str, outcome: str):
        super().__init__(message)
        self.outcome = outcome


@dataclass
class Start:
    resume: bool  # continue from checkpoints/last.pt
    extend_from: int | None = None  # the stored train.steps, when train.steps grew


def flat(cfg: DictConfig | dict) -> dict:
    """{'train.steps': 2000, ...} of a resolved config."""

    return flatten(OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg)


def differences(stored: DictConfig, wanted: DictConfig) -> dict[str, tuple]:
    """Keys whose values differ (stored, wanted), ignoring NEUTRAL_KEYS."""
    a, b = flat(stored), flat(wanted)
    a = {**{k: v for k, v in ASSUMED.items() if k in b}, **a}  # keys an older run's config lacks
    return {k: (a.get(k, "<absent>"), b.get(k, "<absent>")) for k in sorted(set(a) | set(b))
            if k not in NEUTRAL_KEYS and a.get(k, "<absent>") != b.get(k, "<absent>")}


class RunBusy(UserError):
    """Another live process is writing the run directory."""


def plan_start(run: RunDir, cfg: DictConfig, writer_alive: bool) -> Start:
    """Decide what training `cfg` in `run` means; raise UserError or NothingToDo when it must not train."""
    if not run.exists():
        return Start(resume=False)
    summary = run.read_summary()
    status = summary.get("status", "interrupted")
    if status == "running" and writer_alive:
        raise RunBusy(f"{run.path} is being trained right now by another process "
                        f"({run.lock_holder() or 'see its .lock'}). Wait for it, or choose another hydra.run.dir.")
    stored = run.read_config()
    diff = differences(stored, cfg)
    steps = diff.pop("train.steps", None)
    if diff:
        shown = "; ".join(f"{k}: {old!r} there, {new!r} now" for k, (old, new) in list(diff.items())[:8])
        more = f" (and {len(diff) - 8} more)" if len(diff) > 8 else ""
        raise UserError(f"{run.path} already holds a run with other settings: {shown}{more}. Nothing was changed. "
                        "Choose another directory (hydra.run.dir=... or hydra.sweep.dir=...), or re-run with the "
                        "stored settings: ganneal train resume=" + str(run.path))
    if status in ("failed", "diverged"):
        raise NothingToDo(f"{run.path} ended {status} ({summary.get('error') or 'see summary.json'}); it is left as "
                          f"it is. To retry, delete the directory (rm -r {run.path}) or train into another one.",
                          status)
    done_steps = int(summary.get("steps", 0))
    if steps is not None:
        old, new = int(steps[0]), int(steps[1])
        if new < old:
            raise UserError(f"{run.path} was set up for train.steps={old}; train.steps={new} would shorten it. "
                            f"Use train.steps={old} (or more, to extend it), or another directory.")
        return Start(resume=run.has_checkpoint(), extend_from=old)
    if status == "done":
        raise NothingToDo(f"{run.path} has already finished its {done_steps} steps with this config; nothing to do. "
                          "Extend it with train.steps=<more>.", "done")
    return Start(resume=run.has_checkpoint())


LAUNCH_ACTIONS = ("train", "resume", "evaluate", "done", "failed", "diverged", "differs", "busy")


def launch_action(path, cfg: DictConfig) -> str:
    """What launching `cfg` into `path` will do, one of LAUNCH_ACTIONS: train afresh, resume, only evaluate (a
    finished run lacking the evaluation its config asks for after training), end at once (done, failed,
    diverged), or be refused (differs: a run with other settings; busy: a live writer). Not `ganneal runs`'
    "stale", which is a run marked running whose writer is gone."""
    run = RunDir(path)
    try:
        start = plan_start(run, cfg, writer_alive=run.writer_alive())
    except RunBusy:
        return "busy"
    except UserError:
        return "differs"
    except NothingToDo as nothing:
        evaluate = cfg.get("evaluate") or {}
        if nothing.outcome == "done" and evaluate.get("after_training") and not has_metrics(
                run.path, evaluate.get("metrics"), evaluate.get("num_samples"), evaluate.get("extractor")):
            return "evaluate"
        return nothing.outcome
    return "resume" if start.resume else "train"
    return None
