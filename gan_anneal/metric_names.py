"""The sample-quality metric vocabulary, once: what `--metrics` takes, the keys the numbers are stored under
(eval.json, summary.json, metrics.jsonl as eval/<key>), torch-fidelity's names for them, and which way is better.
A leaf module: no torch; of ganneal only its error type.
"""

from __future__ import annotations

from dataclasses import dataclass

from gan_anneal.errors import UserError

# `--metrics` / evaluate.metrics names → the torch-fidelity switch that computes them
FIDELITY_METRICS = {"is": "isc", "fid": "fid", "kid": "kid", "prc": "prc"}
# torch-fidelity's result names → ganneal's keys
TORCH_FIDELITY_KEYS = {"inception_score_mean": "is_mean", "inception_score_std": "is_std",
                       "frechet_inception_distance": "fid", "kernel_inception_distance_mean": "kid_mean",
                       "kernel_inception_distance_std": "kid_std", "precision": "precision", "recall": "recall",
                       "f_score": "f_score"}
FIDELITY_KEYS = tuple(TORCH_FIDELITY_KEYS.values())  # every key a torch-fidelity evaluation writes
# the key that shows a metric name was computed (sweeps ask whether a run is evaluated)
PRIMARY_KEY = {"is": "is_mean", "fid": "fid", "kid": "kid_mean", "prc": "precision"}
REFERENCE_METRICS = frozenset({"fid", "kid", "prc"})  # compared with the reference images
PRC_NEIGHBORHOOD = 3  # k of Kynkäänniemi et al. (2019): a sample's ball reaches its k-th nearest neighbour


@dataclass(frozen=True)
class Metric:
    name: str  # what --metric takes
    key: str  # the number's key in a run's metrics (summary.json "metrics" or eval.json "fidelity")
    title: str
    higher_is_better: bool
    digits: int
    label: str = ""  # its short name in one-line listings (ganneal runs)


METRICS = {m.name: m for m in (
    Metric("is", "is_mean", "Inception score (higher is better)", True, 2, "IS"),
    Metric("fid", "fid", "FID (lower is better)", False, 1, "FID"),
    Metric("kid", "kid_mean", "KID (lower is better)", False, 4, "KID"),
    Metric("precision", "precision", "precision, k = 3 (higher is better)", True, 3, "P"),
    Metric("recall", "recall", "recall, k = 3 (higher is better)", True, 3, "R"),
    Metric("modes_covered", "modes_covered", "modes covered (higher is better)", True, 1, "modes"),
    Metric("hq_fraction", "hq_fraction", "high-quality fraction (higher is better)", True, 3, "hq"),
    Metric("kl_target_model", "kl_target_model", "KL(target ‖ model) (lower is better)", False, 3, "KL"),
    Metric("kl_model_target", "kl_model_target", "KL(model ‖ target) (lower is better)", False, 3, "KL(ρ‖μ)"),
)}
IMAGE_METRICS = ("is", "fid")  # a table's default for image runs; precision and recall join when present
PRC_METRICS = ("precision", "recall")
TOY_METRICS = ("modes_covered", "hq_fraction", "kl_target_model")


EVAL_PREFIX = "eval/"  # metrics.jsonl's sample-quality records: eval/fid, eval/modes_covered ...


def higher_is_better(metric: str) -> bool:
    """The better direction of a metrics.jsonl eval/ key (eval/fid → False, eval/modes_covered → True)."""
    key = metric[len(EVAL_PREFIX):] if metric.startswith(EVAL_PREFIX) else metric
    for known in METRICS.values():
        if key == known.key:
            return known.higher_is_better
    choices = ", ".join(f"{EVAL_PREFIX}{m.key}" for m in METRICS.values())
    raise UserError(f"train.best_metric={metric}: not a metric with a known better direction. Choose one of "
                    f"{choices} (IS/FID/KID need train.eval_every; the toy metrics come every train.sample_every).")
