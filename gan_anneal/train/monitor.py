"""What a run measures about itself while it trains: IS/FID/KID every `train.eval_every` steps, and the best
checkpoint of `train.best_metric`. Neither touches the run's random stream, so resume stays exact.

The evaluation uses the run's own `evaluate:` settings (metrics, extractor: `ganneal-mnist` for digits,
`inception-v3-compat` on a GPU, `ganneal-tiny` for smoke tests) on `train.eval_num_samples` samples of the
generator ganneal evaluate would use (the EMA copy when kept). Its protocol is recorded once, in summary.json.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import torch
from omegaconf import DictConfig, OmegaConf

from gan_anneal.errors import UserError
from gan_anneal.evaluate.fidelity import Fidelity
from gan_anneal.evaluate.options import resolve_options
from gan_anneal.metric_names import higher_is_better
from gan_anneal.results.checkpoint import save_checkpoint
from gan_anneal.results.rundir import RunDir


class BestCheckpoint:
    """checkpoints/best.pt: the full training state at the best value of one eval/ metric seen so far (the record
    lives in summary.json "best", so it survives a resume)."""

    def __init__(self, metric: str | None, run: RunDir):
        self.metric, self.run = metric, run
        self.higher_is_better = higher_is_better(metric) if metric else True
        previous = run.read_summary().get("best") or {}
        self.best = previous if previous.get("metric") == metric else None

    def better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best["value"] if self.higher_is_better else value < self.best["value"]

    def offer(self, record: dict, step: int, state: Callable[[], dict]) -> bool:
        """Keep `state()` as best.pt when `record` holds a better value of the metric; True if it did."""
        value = float(record.get(self.metric, math.nan)) if self.metric else math.nan
        if not math.isfinite(value) or not self.better(value):
            return False

        save_checkpoint(self.run.best_checkpoint, state())
        self.best = {"metric": self.metric, "value": value, "step": int(step)}
        self.run.update_summary(best=self.best)
        return True


class TrainingFidelity:
    """IS/FID/KID of the generator during training, prepared once (reference statistics cached on disk)."""

    def __init__(self, cfg: DictConfig, run_dir, num_samples: int, log: Callable[[str], None]):

        config = OmegaConf.to_container(cfg, resolve=True)
        self.options = resolve_options(run_dir, num_samples=num_samples, config=config)
        if not self.options.metrics:
            raise UserError("train.eval_every needs metrics to compute: set evaluate.metrics (e.g. is,fid).")
        self.num_samples = num_samples
        # preparing draws random numbers (the extractor's initial weights before its file loads): fork, so that a
        # run with train.eval_every trains exactly what the same run without it trains
        with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
            self.fidelity = Fidelity(cfg, self.options, log)

    def protocol(self) -> dict:
        return {**self.fidelity.protocol(self.num_samples), "generator": self.options.generator}

    def measure(self, generator: torch.nn.Module, ema_model: torch.nn.Module | None) -> dict[str, float]:
        use_ema = ema_model is not None and self.options.generator in ("auto", "ema")
        model = ema_model if use_ema else generator
        was_training = model.training
        model.eval()
        devices = [p.device for p in model.parameters() if p.device.type == "cuda"][:1]
        with torch.random.fork_rng(devices=devices):  # the run's stream is untouched: resume stays exact
            values = self.fidelity.measure(model, self.num_samples, show_progress=False)
        model.train(was_training)
        return values


class Stopwatch:
    """Seconds spent in evaluation (snapshots, IS/FID), reported as a fraction of the run's wall time."""

    def __init__(self, seconds: float = 0.0):
        self.seconds = float(seconds)

    def __enter__(self):
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds += time.perf_counter() - self.started
        return False
