"""The training loop: critic step(s), generator step(s), then logging, pictures and checkpoints on their
own cadences. It never looks at a divergence's or schedule's name: everything comes built in `Experiment`."""

from __future__ import annotations

import math
import os
import time
from typing import Callable

import torch
from omegaconf import OmegaConf
from rich.console import Console

from gan_anneal.metric_names import EVAL_PREFIX
from gan_anneal.progress import StepProgress
from gan_anneal.results.checkpoint import rng_state, set_rng_state
from gan_anneal.results.continuation import Start
from gan_anneal.results.loggers import Loggers, build_loggers
from gan_anneal.results.rundir import RunDir, now_iso, provenance
from gan_anneal.train.build import Experiment
from gan_anneal.train.monitor import BestCheckpoint, Stopwatch, TrainingFidelity
from gan_anneal.train.precision import Precision
from gan_anneal.train.signals import stop_on_signals

FP32 = Precision("fp32")


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the run is marked `diverged` and the last good checkpoint kept."""


class TrainingInterrupted(RuntimeError):
    """SIGINT/SIGTERM: a checkpoint was written and the run can be resumed."""

    def __init__(self, message: str, signal_name: str | None = None):
        super().__init__(message)
        self.signal_name = signal_name


RUNAWAY = 1e6  # samples all farther than this from the origin (or not finite): the run has left the data for good


def ran_away(samples: torch.Tensor) -> bool:
    flat = samples.detach().flatten(1).float()
    return not bool(torch.isfinite(flat).all()) or bool((flat.abs().amax(1) > RUNAWAY).all())


def finite_state(exp: Experiment) -> bool:
    """Only finite models are checkpointed: a NaN can appear between two logging steps."""
    return all(bool(torch.isfinite(p).all()) for m in (exp.generator, exp.critic) for p in m.parameters())


def lr_factor(step: int, total: int, decay: str) -> float:
    return 1.0 - step / total if decay == "linear" else 1.0


def checkpoint_state(exp: Experiment, step: int) -> dict:
    return {
        "step": step,
        "generator": exp.generator.state_dict(),
        "critic": exp.critic.state_dict(),
        "opt_g": exp.opt_g.state_dict(),
        "opt_d": exp.opt_d.state_dict(),
        "regularizer": exp.regularizer.state_dict(),
        "generator_update": getattr(exp.generator_update, "state_dict", dict)(),  # e.g. BGAN's running log Z
        "ema": exp.ema.state_dict() if exp.ema is not None else {},
        "rng": rng_state(),
        "precision": exp.precision.state_dict((exp.opt_d, exp.opt_g)) if exp.precision else {},  # fp16 scalers
    }


def restore(exp: Experiment, state: dict) -> int:
    exp.generator.load_state_dict(state["generator"])
    exp.critic.load_state_dict(state["critic"])
    exp.opt_g.load_state_dict(state["opt_g"])
    exp.opt_d.load_state_dict(state["opt_d"])
    exp.regularizer.load_state_dict(state["regularizer"])
    if hasattr(exp.generator_update, "load_state_dict"):
        exp.generator_update.load_state_dict(state.get("generator_update", {}))
    if exp.ema is not None and state.get("ema"):
        exp.ema.load_state_dict(state["ema"])
    if exp.precision is not None and state.get("precision"):
        exp.precision.load_state_dict(state["precision"], (exp.opt_d, exp.opt_g))
    set_rng_state(state["rng"])
    return int(state["step"])


@torch.inference_mode()
def generate(exp: Experiment, n: int, batch: int = 10_000, seed: int | None = None) -> torch.Tensor:
    """n samples; with `seed`, from the same noise every call (fixed-noise snapshots) without touching the
    run's random stream."""
    g = exp.ema.model if exp.ema is not None else exp.generator  # the EMA weights, when kept, are the ones shown
    exp.generator.eval()
    with torch.random.fork_rng(devices=[exp.device] if exp.device.type == "cuda" else [], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode():
            parts = [g(g.sample_noise(min(batch, n - i), exp.device)) for i in range(0, n, batch)]
    exp.generator.train()
    return torch.cat(parts)


def train_step(exp: Experiment, step: int) -> dict[str, torch.Tensor | float]:
    cfg, g, d, div = exp.step_settings, exp.generator, exp.critic, exp.divergence
    lam = exp.schedule(step, cfg.steps)
    beta, w_lik, w_ent = exp.regularizer.coefficients(lam)
    factor = lr_factor(step, cfg.steps, cfg.decay)
    for opt, base in ((exp.opt_g, cfg.lr_g), (exp.opt_d, cfg.lr_d)):
        for group in opt.param_groups:
            group["lr"] = base * factor

    amp = exp.precision or FP32  # device.precision (train/precision.py): fp32 unless asked
    d.requires_grad_(True)
    # train.reuse_fake: with one critic and one generator step, a single G(z) serves both (the critic sees it
    # detached), as DCGAN and single-file GAN examples do. Fewer FLOPs, another random stream: on in the DCGAN
    # configs, off for the 2-D toys (conf/config.yaml says why).
    shared = None
    if cfg.reuse_fake and cfg.n_critic == 1 and cfg.g_steps == 1 and hasattr(exp.generator_update, "loss_on"):
        with amp.autocast():
            shared = g(g.sample_noise(cfg.batch_size, exp.device))
    logged_penalty = None
    for i in range(cfg.n_critic):
        real = exp.target.sample(cfg.batch_size)
        with amp.autocast():
            if shared is None:
                with torch.no_grad():
                    fake = g(g.sample_noise(cfg.batch_size, exp.device))
            else:
                fake = shared.detach()
            loss_d = div.critic_loss(d(real), d(fake))
        # outside autocast: the gradient penalty stays in fp32. train.penalty_every = k: lazy regularisation
        # (Karras et al., 2020), the penalty on every k-th critic step only, weighted k times
        lazy = cfg.penalty_every
        penalty = div.penalty(d, real, fake) if (step * cfg.n_critic + i) % lazy == 0 else None
        if penalty is not None and lazy > 1:
            penalty = penalty * lazy
        if penalty is not None:
            logged_penalty = penalty
        total_d = loss_d if penalty is None else loss_d + penalty
        exp.opt_d.zero_grad(set_to_none=True)
        amp.backward_step(total_d, exp.opt_d)
        if i == cfg.n_critic - 1 or exp.regularizer.track_every_critic_step:  # model_score.cadence
            exp.regularizer.observe_fake(fake)

    d.requires_grad_(False)  # the generator step needs gradients through the critic, not of it
    for _ in range(cfg.g_steps):
        with amp.autocast():
            if shared is None:
                loss_g, fake, extras = exp.generator_update.loss(g, d, div, cfg.batch_size, exp.device)
            else:
                loss_g, fake, extras = exp.generator_update.loss_on(shared, d, div)
        total_g = loss_g
        if w_lik or w_ent:  # both weights are exactly 0 outside annealing: skip the score calls
            total_g = loss_g - exp.regularizer.surrogate(fake, w_lik, w_ent, adversarial=loss_g)
        exp.opt_g.zero_grad(set_to_none=True)
        amp.backward_step(total_g, exp.opt_g)
    if exp.ema is not None:
        exp.ema.update(g)

    return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
            "penalty": logged_penalty.detach() if logged_penalty is not None else 0.0,  # this step's last
            "lam": lam, "beta": beta, "w_lik": w_lik, "w_ent": w_ent, "lr_scale": factor, **extras}


def eval_record(step: int, metrics: dict) -> dict:
    """Sample-quality metrics over training (the learning-dynamics curves) share metrics.jsonl, prefixed."""
    return {"step": step, **{f"{EVAL_PREFIX}{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}}


def _as_record(step: int, raw: dict) -> dict:
    """One metrics.jsonl line: the step's tensors and numbers as plain floats (the only host sync)."""
    return {"step": step, **{key: float(value) for key, value in raw.items()}}


def train(exp: Experiment, run: RunDir, start_from: Start | None = None, *, console: Console | None = None,
          should_stop: Callable[[int], bool] | None = None, record: dict | None = None) -> dict:
    """Train to `train.steps`, writing the run directory as it goes (with `record`, the command's `.hydra/`
    files, once training is under way). Returns the final summary."""
    cfg, console = exp.cfg, console or Console()
    loggers = build_loggers(OmegaConf.to_container(cfg.logger, resolve=True) if "logger" in cfg else None, run)
    fidelity = None  # prepared before the run directory is touched: a bad extractor or weights file is bad input
    if exp.step_settings.eval_every:
        fidelity = TrainingFidelity(cfg, run.path, exp.step_settings.eval_num_samples,
                                    log=lambda line: console.print(f"[dim]{line}[/]"))
    try:
        return _train(exp, run, loggers, fidelity, start_from, console=console, should_stop=should_stop,
                      record=record)
    finally:
        loggers.close()  # flushes TensorBoard's events whatever ended the run


def _open_run(exp: Experiment, run: RunDir, loggers: Loggers, start_from: Start, summary: dict, *,
              console: Console, record: dict | None) -> tuple[int, float]:
    """Restore or start, extend, write the config and the command's record, mark the run running: the step to
    start from and the wall time of the attempts before this one."""
    cfg = exp.cfg
    total = cfg.train.steps
    start = 0
    previous_wall = 0.0
    if start_from.resume:
        start = restore(exp, run.load_checkpoint(map_location=exp.device, log=console.print))
        run.truncate_metrics(start)
        previous_wall = float(summary.get("wall_time_s", 0.0))
        console.print(f"[bold]resuming[/] {run.path} from step {start}")
        run.log(f"resuming from step {start} of {total}")
    else:
        run.truncate_metrics(0)  # a start over a run interrupted before its first checkpoint
        run.log(f"starting {total} steps")
    if start_from.extend_from is not None:  # a continuation: λ(t) and the LR decay are re-read on the new total
        extensions = [*summary.get("extensions", []),
                      {"from_total": start_from.extend_from, "to_total": total, "at_step": start}]
        run.update_summary(extensions=extensions)
        run.log(f"extended from train.steps={start_from.extend_from} to {total} at step {start}")
    run.write_config(cfg)  # the config this directory now continues (train.steps included)
    if record:
        run.write_hydra_record(record)  # the command that resume=DIR repeats
    loggers.start(start)  # after metrics.jsonl was cut back to the checkpoint
    if not start_from.resume:
        getattr(exp.target, "save_artifacts", lambda path: None)(run.path)  # e.g. a text dataset's vocabulary
    origin = provenance()
    started_at = now_iso()
    if start_from.resume:  # each continuation of the run keeps its own record; the first start stays
        attempts = [*summary.get("attempts", []), {"started_at": started_at, "command": origin["command"],
                                                    "source": origin["source"], "host": origin["host"],
                                                    "from_step": start}]
        origin = {"attempts": attempts, "versions": origin["versions"], "host": origin["host"]}
    else:
        origin["started_at"] = started_at
    run.update_summary(status="running", seed=int(cfg.seed), steps=start, total_steps=total, device=str(exp.device),
                       backend=exp.backend, error=None, pid=os.getpid(), finished_at=None, **origin)
    return start, previous_wall


class _Session:
    """One session's bookkeeping around the steps: the wall clock across resumes, the time spent evaluating,
    checkpoints (only of finite models whose samples stay near the data), and eval/ records."""

    def __init__(self, exp: Experiment, run: RunDir, loggers: Loggers, fidelity: TrainingFidelity | None,
                 previous_wall: float, evaluating: Stopwatch):
        self.exp, self.run, self.loggers, self.fidelity = exp, run, loggers, fidelity
        self.best = BestCheckpoint(exp.step_settings.best_metric, run)
        self.previous_wall, self.evaluating, self.t0 = previous_wall, evaluating, time.perf_counter()

    def wall(self) -> float:
        return self.previous_wall + time.perf_counter() - self.t0

    def diverged(self, at_step: int, why: str) -> TrainingDiverged:
        self.run.update_summary(status="diverged", steps=at_step, error=why)
        kept = (f"last good checkpoint kept in {self.run.checkpoint}" if self.run.has_checkpoint()
                else "no checkpoint had been written yet")
        self.run.log(f"diverged: {why}")
        return TrainingDiverged(f"{why}; {kept}")

    def save(self, at_step: int) -> None:
        exp = self.exp
        if not finite_state(exp):
            raise self.diverged(at_step, f"non-finite parameters at step {at_step}")
        if ran_away(generate(exp, 256, seed=exp.cfg.seed + 2)):  # fixed noise, the run's random stream untouched
            raise self.diverged(at_step, f"the samples ran away: all beyond {RUNAWAY:g} or not finite at step "
                                         f"{at_step}")
        self.run.save_checkpoint(checkpoint_state(exp, at_step))
        self.run.update_summary(steps=at_step, wall_time_s=self.wall(), evaluation_s=round(self.evaluating.seconds, 3))
        self.run.heartbeat()

    def evaluated(self, record: dict, at_step: int, picture=None) -> None:
        """An eval/ record into every logger, and into best.pt when it improves train.best_metric."""
        self.loggers.write([record])
        if picture is not None:
            self.loggers.picture(picture, at_step)
        self.best.offer(record, at_step, lambda: checkpoint_state(self.exp, at_step))

    def fidelity_values(self) -> dict:
        with self.evaluating:
            return self.fidelity.measure(self.exp.generator, self.exp.ema.model if self.exp.ema is not None else None)

    def logged(self, step: int, raw: dict) -> dict:
        """The step's losses as a metrics record; a non-finite one ends the run as diverged."""
        record = _as_record(step, raw)
        record["time_s"] = round(self.wall(), 3)
        self.loggers.write([record])  # metrics past the checkpoint are dropped again on resume
        if not all(math.isfinite(v) for v in record.values()):
            raise self.diverged(step, f"non-finite loss at step {step} (loss_d={record['loss_d']:.4g}, "
                                      f"loss_g={record['loss_g']:.4g})")
        return record

    def on_cadence(self, step: int, total: int) -> None:
        """Pictures and target metrics, IS/FID, checkpoints: each every its own number of steps."""
        every, cfg = self.exp.step_settings, self.exp.cfg
        if every.sample_every and step % every.sample_every == 0 and step < total:
            with self.evaluating:
                snapshot = generate(self.exp, every.snapshot_samples, seed=cfg.seed + 1)  # fixed noise
                picture = self.run.samples / f"step_{step:06d}.png"
                self.exp.target.save_picture(snapshot, picture, f"step {step}")
                record = eval_record(step, self.exp.target.metrics(snapshot, cfg.metrics))
            self.evaluated(record, step, picture)
        if self.fidelity is not None and step % every.eval_every == 0 and step < total:
            self.evaluated(eval_record(step, self.fidelity_values()), step)
        if step % every.checkpoint_every == 0 and step < total:
            self.save(step)

    def stop(self, step: int, flag: dict) -> TrainingInterrupted:
        """Checkpoint and mark interrupted; a chained handler (submitit's requeue) then takes over the process."""
        self.save(step)
        self.run.update_summary(status="interrupted")
        self.run.log(f"stopped by {flag.get('stop', 'request')} at step {step}; checkpoint written")
        if "then" in flag:  # e.g. submitit's requeue on preemption; it exits this process
            chained_handler, signum = flag["then"]
            self.run.release_lock()
            chained_handler(signum, None)
        return TrainingInterrupted(f"stopped by {flag.get('stop', 'request')} at step {step}; checkpoint "
                                   "written. Re-run the same command to continue.", flag.get("stop"))

    def finish(self, total: int, start: int, last_record: dict) -> dict:
        """The final checkpoint, samples, metrics and summary (the final evaluation is outside the wall time)."""
        exp, cfg, every = self.exp, self.exp.cfg, self.exp.step_settings
        self.save(total)
        wall, steps_per_s = self.wall(), (total - start) / max(time.perf_counter() - self.t0, 1e-9)
        evaluating_within_wall = self.evaluating.seconds
        samples = generate(exp, every.eval_samples)
        metrics = exp.target.metrics(samples, cfg.metrics)
        exp.target.save_picture(samples, self.run.samples / "final.png", f"{cfg.divergence.name} · step {total}")
        self.evaluated(eval_record(total, metrics), total, self.run.samples / "final.png")
        if self.fidelity is not None:
            final_fidelity = self.fidelity_values()
            self.evaluated(eval_record(total, final_fidelity), total)
            metrics = {**metrics, **final_fidelity}
        final = {k: last_record[k] for k in ("lam", "beta", "w_lik", "w_ent") if k in last_record}
        seconds = self.evaluating.seconds
        self.run.log(f"done: {total} steps in {wall:.1f} s" + (f", {seconds:.1f} s of it evaluating" if seconds else ""))
        return self.run.update_summary(status="done", steps=total, wall_time_s=round(wall, 3), finished_at=now_iso(),
                                       steps_per_second=round(steps_per_s, 2), metrics=metrics,
                                       final_coefficients=final, evaluation_s=round(seconds, 3),
                                       evaluation_fraction=round(evaluating_within_wall / max(wall, 1e-9), 4))


def _progress(cfg, run: RunDir, console: Console, total: int, start: int) -> StepProgress:
    """A rich bar on a terminal, plain lines every train.progress_every_s seconds elsewhere; every plain line also
    goes into train.log, whatever stdout is."""
    shown, terminal = bool(cfg.train.progress), console.is_terminal

    def log(line: str) -> None:
        run.log(line)
        if shown and not terminal:
            console.print(line, highlight=False)

    return StepProgress("train", total, log, float(cfg.train.get("progress_every_s", 30)), console, start=start,
                        draw=shown and terminal, lines=True, first_line=True, line=_train_line)


def _train_line(progress: StepProgress, step: int, losses: str, rate: float, eta: float) -> str:
    return f"step {step}/{progress.total}  {losses}  {rate:.1f} steps/s  ETA {eta:.0f} s"


def _losses(record: dict) -> str:
    return f"D {record['loss_d']:+.4f}  G {record['loss_g']:+.4f}  λ {record['lam']:+.3f}"


def _train(exp: Experiment, run: RunDir, loggers: Loggers, fidelity: TrainingFidelity | None, start_from: Start | None,
           *, console: Console, should_stop: Callable[[int], bool] | None, record: dict | None = None) -> dict:
    start_from = start_from or Start(resume=False)
    total = exp.cfg.train.steps
    summary = run.read_summary()
    start, previous_wall = _open_run(exp, run, loggers, start_from, summary, console=console, record=record)
    evaluating = Stopwatch(float(summary.get("evaluation_s", 0.0)) if start_from.resume else 0.0)
    if fidelity is not None:
        run.update_summary(eval_protocol=fidelity.protocol())
    session = _Session(exp, run, loggers, fidelity, previous_wall, evaluating)
    log_every = exp.step_settings.log_every  # plain values: read at every step
    flag: dict = {}
    step, last_record = start, {}
    with stop_on_signals(flag), _progress(exp.cfg, run, console, total, start) as progress:
        while step < total:
            raw = train_step(exp, step)
            step += 1
            if step % log_every == 0 or step == total:
                last_record = session.logged(step, raw)
                progress.update(step, _losses(last_record), force=step == total)
            session.on_cadence(step, total)
            if flag.get("stop") or (should_stop is not None and should_stop(step)):
                raise session.stop(step, flag)
    return session.finish(total, start, last_record)
