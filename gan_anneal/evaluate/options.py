"""What an evaluation computes, read from the command line, else the run's `evaluate:` config, else the shipped
defaults, with every bad input refused here, before torch is imported: unknown metrics, a run that is not images,
an extractor that does not fit, too few samples, missing weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from gan_anneal.config import comma_list
from gan_anneal.defaults import shipped
from gan_anneal.errors import UserError
from gan_anneal.evaluate.extractors import (
    AUTO,
    INCEPTION,
    MNIST,
    check_extractor,
    digit_weights,
    extractor_for,
    resolve_inception_weights,
    weights_problem,
)
from gan_anneal.kinds import dataset_kind
from gan_anneal.metric_names import FIDELITY_METRICS, PRC_NEIGHBORHOOD
from gan_anneal.results.rundir import RunDir

KIND_WORDS = {"toy": "a 2-D mixture", "energy": "an energy target", "discrete": "binary or one-hot samples",
              "unknown": "not a data set ganneal knows as images"}
KIND_ADVICE = {
    "toy": "Its own metrics (modes covered, hq fraction, KL) are in summary.json: `ganneal table DIR` shows them. ",
    "energy": "Its own metrics (KL on a grid, coverage) are in summary.json: `ganneal table DIR` shows them. ",
    "discrete": "Its held-out metrics are in summary.json. ",
}


def parse_metrics(text: str) -> list[str]:
    names = [m.lower() for m in comma_list(text)]
    if names == ["none"]:
        return []
    unknown = [m for m in names if m not in FIDELITY_METRICS]
    if unknown or not names:
        raise UserError(f"--metrics {text!r}: unknown {', '.join(unknown) or 'empty list'}. "
                        f"Valid: a comma-separated subset of {','.join(FIDELITY_METRICS)}, or none.")
    return list(dict.fromkeys(names))


CHECKPOINTS = ("last", "best")


@dataclass
class EvalOptions:
    metrics: list[str]
    num_samples: int
    batch_size: int
    extractor: str
    weights_path: Path | None
    download_weights: bool
    reference_split: str
    reference_count: int | None
    is_splits: int
    generator: str  # auto | ema | raw
    cache_dir: Path
    seed: int
    verbose: bool = False
    checkpoint: str = "last"  # last | best (checkpoints/best.pt, kept with train.best_metric)


def default_cache_dir() -> Path:
    return Path(os.environ.get("GANNEAL_CACHE", Path.home() / ".cache" / "ganneal")) / "fidelity"


def resolve_options(run_dir: Path, *, checkpoint: str = "last", config: dict | None = None, **choices) -> EvalOptions:
    """Options from the command line (`choices`: metrics, num_samples, extractor ...), else the run's `evaluate:`
    config, else the defaults. No torch import: every bad-input path (unknown metric, missing run, missing
    weights) fails here, at once. With `config` (training's own evaluation, train.eval_every) the run directory
    need not hold a checkpoint or a config yet."""

    if checkpoint not in CHECKPOINTS:
        raise UserError(f"--checkpoint must be one of {', '.join(CHECKPOINTS)}, got '{checkpoint}'.")
    if config is None:
        run = RunDir(run_dir).require(checkpoint=True)
        run.checkpoint_file(checkpoint)  # a missing best.pt fails here, before any torch import
        config = OmegaConf.to_container(run.read_config(), resolve=False)
    return options_from_config(config, run_dir, checkpoint=checkpoint, **choices)


def options_from_config(cfg: dict, run_dir, *, metrics=None, num_samples=None, batch_size=None, extractor=None,
                        inception_weights=None, download_weights=False, reference_split=None, reference_count=None,
                        is_splits=None, generator=None, cache_dir=None, seed=None, verbose=False,
                        checkpoint="last") -> EvalOptions:
    # a run recorded before a key existed gets the shipped default, and the extractor its data set calls for
    ev = {**shipped("evaluate"), "extractor": AUTO, **(cfg.get("evaluate") or {})}

    def pick(cli, key):
        return cli if cli is not None else ev[key]

    names = parse_metrics(pick(metrics, "metrics"))
    dataset = str((cfg.get("dataset") or {}).get("name", "?"))
    kind = dataset_kind(dataset)
    if names and kind != "images":
        raise UserError(
            f"IS, FID, KID and precision/recall (prc) compare images through an image network's features, and "
            f"{run_dir} trained on dataset={dataset} ({KIND_WORDS.get(kind, kind)}). "
            f"{KIND_ADVICE.get(kind, '')}Fresh-critic divergences apply to every run: "
            f"ganneal evaluate {run_dir} --probe js,rkl,w.")
    extractor = str(pick(extractor, "extractor"))
    if extractor == AUTO:
        extractor = extractor_for(cfg.get("dataset") or {})
    if names:
        check_extractor(extractor, cfg.get("dataset") or {}, run_dir)
    generator = str(pick(generator, "generator"))
    if generator not in ("auto", "ema", "raw"):
        raise UserError(f"--generator must be auto, ema or raw, got '{generator}'.")
    n = int(pick(num_samples, "num_samples"))
    if n < 2:
        raise UserError(f"--num-samples must be at least 2, got {n}.")
    if "prc" in names and n < PRC_NEIGHBORHOOD + 1:
        raise UserError(f"precision/recall (prc) looks for each sample's {PRC_NEIGHBORHOOD} nearest neighbours among "
                        f"the samples: it needs at least {PRC_NEIGHBORHOOD + 1} samples, got {n}.")
    splits = int(pick(is_splits, "is_splits"))
    if "is" in names and not 1 <= splits <= n:
        raise UserError(f"IS splits must be between 1 and the sample count {n}, got {splits}.")
    weights = None
    if names and extractor == INCEPTION:
        weights = resolve_inception_weights(inception_weights, ev.get("inception_weights"), download_weights)
    elif names and extractor == MNIST:
        weights = digit_weights()
    elif inception_weights:
        weights = Path(inception_weights).expanduser()
        if not weights.is_file():
            raise UserError(f"--inception-weights names {weights}, which is not a file.")
        problem = weights_problem(weights)
        if problem:
            raise UserError(f"--inception-weights names {weights}, but {problem}.")
    cache = pick(cache_dir, "cache_dir")
    return EvalOptions(
        metrics=names, num_samples=n, batch_size=int(pick(batch_size, "batch_size")), extractor=extractor,
        weights_path=weights, download_weights=download_weights,
        reference_split=str(pick(reference_split, "reference_split")),
        reference_count=int(reference_count) if reference_count else None, is_splits=splits, generator=generator,
        cache_dir=Path(cache).expanduser() if cache else default_cache_dir(),
        seed=int(pick(seed, "seed")), verbose=verbose, checkpoint=checkpoint)
