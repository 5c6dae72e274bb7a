"""What every setting may hold: its type, range or choices, checked on the composed config before any work.

The type of a key is the type of its value in the *reference* config: the defaults of the config groups the
user chose (dataset=grid25, divergence=wgan, experiment=gibbs ...), composed without the other overrides. So
each group's YAML files are the schema of its keys, and a key no chosen group defines (`+train.foo=1`) is an
error. RULES adds what a type cannot say (ranges, choices, keys whose default is null); a key with a rule is
checked by its rule. Nothing here imports torch: the check runs in milliseconds at composition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from omegaconf import DictConfig, OmegaConf

from gan_anneal.errors import UserError

NUMBER = (int, float)


@dataclass(frozen=True)
class Rule:
    kind: type | tuple = float  # int | float | bool | str | list
    low: float | None = None  # inclusive unless open_low
    high: float | None = None  # inclusive unless open_high
    open_low: bool = False
    open_high: bool = False
    choices: Sequence[Any] | None = None
    optional: bool = False  # null allowed
    length: int | None = None  # lists: exact length
    why: str = ""  # the message when the value is out of range (default: the bound)

    def problem(self, value: Any) -> str | None:
        """Why `value` breaks the rule, or None."""
        if value is None:
            return None if self.optional else "must be set (it is null)"
        if self.choices is not None:
            return None if value in self.choices else f"must be one of {', '.join(map(str, self.choices))}"
        type_problem = type_mismatch(value, self.kind)
        if type_problem:
            return type_problem
        if self.kind is list:
            if self.length is not None and len(value) != self.length:
                return f"must be a list of {self.length} numbers"
            return None
        if self.kind in (int, float):
            if not math.isfinite(value):
                return "must be a finite number"
            if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
                return self.why or f"must be {'>' if self.open_low else '≥'} {self.low:g}"
            if self.high is not None and (value > self.high or (self.open_high and value == self.high)):
                return self.why or f"must be {'<' if self.open_high else '≤'} {self.high:g}"
        return None


def type_mismatch(value: Any, kind) -> str | None:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string", list: "a list"}
    if kind is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(value, bool):
        return f"must be {names.get(kind, kind)}, not a boolean"
    if kind is int:
        return None if isinstance(value, int) else "must be an integer" + (
            f" (write {int(value)})" if isinstance(value, float) and value.is_integer() else "")
    if kind is float:
        return None if isinstance(value, NUMBER) else "must be a number"
    if kind is list:
        return None if isinstance(value, (list, tuple)) else "must be a list, e.g. [0.5,0.9]"
    if kind is str:
        return None if isinstance(value, str) else "must be a string"
    return None


COUNT = Rule(int, low=1, why="must be a positive integer")
NON_NEGATIVE_INT = Rule(int, low=0, why="must be an integer ≥ 0")
POSITIVE = Rule(float, low=0, open_low=True, why="must be positive")
FRACTION = Rule(float, low=0, high=1)
OPEN_FRACTION = Rule(float, low=0, high=1, open_low=True, open_high=True)
OPTIONAL_PATH = Rule(str, optional=True)
OPTIONAL_COUNT = Rule(int, low=1, optional=True, why="must be a positive integer (or null)")
BOX = Rule(list, length=2)

RULES: dict[str, Rule] = {
    "seed": NON_NEGATIVE_INT,
    "resume": OPTIONAL_PATH,
    **{f"train.{k}": COUNT for k in ("steps", "batch_size", "n_critic", "penalty_every", "g_steps", "log_every", "checkpoint_every",
                                     "eval_samples", "snapshot_samples")},
    "train.sample_every": NON_NEGATIVE_INT,
    "train.eval_every": NON_NEGATIVE_INT,
    "train.eval_num_samples": Rule(int, low=2),
    "train.best_metric": Rule(str, optional=True),
    "train.progress_every_s": Rule(float, low=0),  # 0: a line at every logging step
    "train.ema": Rule(float, low=0, high=1, open_high=True),
    "optim.lr_g": POSITIVE,
    "optim.lr_d": POSITIVE,
    "optim.betas": BOX,
    "optim.decay": Rule(str, choices=("none", "linear")),
    "metrics.mode_min_share": FRACTION,
    "model_score.sigma": POSITIVE,
    "model_score.lr": POSITIVE,
    "model_score.hidden": COUNT,
    "model_score.depth": COUNT,
    "model_score.conv_hidden": COUNT,
    "model_score.updates": COUNT,
    "model_score.cadence": Rule(str, choices=("generator", "critic")),
    "generator_loss": Rule(str, choices=(None, "boundary", "proxy", "minimax"), optional=True),
    "bgan.samples_per_z": COUNT,
    "bgan.weight_norm": Rule(str, choices=("per_z", "batch")),
    "generator_update.samples_per_z": COUNT,
    "generator_update.weight_norm": Rule(str, choices=("per_z", "batch")),
    "generator_update.estimator": Rule(str, choices=("bgan", "reinforce")),
    "generator_update.logz_gamma": Rule(float, low=0, high=1, open_high=True),
    # evaluate: the defaults of `ganneal evaluate`
    "evaluate.num_samples": Rule(int, low=2),
    "evaluate.batch_size": COUNT,
    "evaluate.is_splits": COUNT,
    "evaluate.extractor": Rule(str, choices=("auto", "inception-v3-compat", "ganneal-mnist", "ganneal-tiny")),
    "evaluate.generator": Rule(str, choices=("auto", "ema", "raw")),
    "evaluate.inception_weights": OPTIONAL_PATH,
    "evaluate.cache_dir": OPTIONAL_PATH,
    "evaluate.seed": NON_NEGATIVE_INT,
    # anneal
    "anneal.lam": Rule(float),
    "anneal.negative": Rule(str, choices=("entropy", "data", "raw", "symmetric")),
    "anneal.decay": Rule(str, choices=("linear", "exp")),
    "anneal.decay_rate": POSITIVE,
    "anneal.cycles": POSITIVE,
    "anneal.warmup": Rule(float, low=0, high=1, open_high=True),
    "anneal.hold": Rule(float, low=0, high=1, open_high=True),
    "anneal.fraction": Rule(float, low=0, high=1, open_low=True),
    # divergence
    "divergence.penalty": Rule(str, choices=("none", "gp0", "roth")),
    "divergence.penalty_weight": Rule(float, low=0),
    "divergence.gp_weight": Rule(float, low=0),
    "divergence.generator_loss": Rule(str, choices=("boundary", "proxy", "minimax")),
    # regularizer, score
    "regularizer.force": Rule(str, choices=("unit", "critic")),
    "regularizer.reduction": Rule(str, choices=("auto", "sum", "mean")),
    "score.sigma": POSITIVE,
    "score.smoothing": Rule(float, low=0),
    "score.steps": COUNT,
    "score.hidden": COUNT,
    "score.depth": COUNT,
    "score.conv_hidden": COUNT,
    "score.lr": POSITIVE,
    "score.batch_size": COUNT,
    "score.held_out": COUNT,
    "score.eval_every": NON_NEGATIVE_INT,
    "score.patience": NON_NEGATIVE_INT,
    "score.seed": NON_NEGATIVE_INT,
    "score.cache_dir": OPTIONAL_PATH,
    # device
    "device.threads": OPTIONAL_COUNT,
    "device.precision": Rule(str, choices=("fp32", "bf16", "fp16")),
    "device.deterministic": Rule(bool),
    # model
    **{f"model.{k}": COUNT for k in ("z_dim", "hidden", "depth", "base", "max_width", "g_width", "g_hidden",
                                     "d_width", "d_hidden", "dim", "blocks")},
    "model.init": Rule(str, choices=(None, "blob"), optional=True),
    "model.cpu_threads": OPTIONAL_COUNT,
    "model.init_center": Rule(list, optional=True),
    "model.init_scale": POSITIVE,
    "model.critic_norm": Rule(str, choices=("none", "batch", "layer", "auto")),
    "model.prior": Rule(str, choices=("uniform", "normal")),
    # dataset
    **{f"dataset.{k}": POSITIVE for k in ("std", "std1", "std2", "radius", "spacing", "ring_std", "lobe_std",
                                          "reference_std", "bandwidth")},
    **{f"dataset.{k}": COUNT for k in ("n_modes", "side", "grid", "cover_cells", "size", "channels", "colours",
                                       "length", "limit")},
    "dataset.max_vocab": Rule(int, low=3),
    "dataset.cover_min_share": FRACTION,
    "dataset.threshold": FRACTION,
    "dataset.test_fraction": OPEN_FRACTION,
    "dataset.split_seed": NON_NEGATIVE_INT,
    "dataset.max_images": OPTIONAL_COUNT,
    "dataset.crop": OPTIONAL_COUNT,
    "dataset.root": OPTIONAL_PATH,
    "dataset.path": OPTIONAL_PATH,
    "dataset.folder": OPTIONAL_PATH,
    "dataset.vocab_file": OPTIONAL_PATH,
    "dataset.box": BOX,
    "dataset.reference_box": Rule(list, length=2, optional=True),
    "dataset.poor_start": Rule(list, optional=True),
    "dataset.reference": Rule(str, choices=("uniform", "gaussian")),
    "dataset.binarize": Rule(str, choices=("threshold", "stochastic", "dynamic")),
}
NEUTRAL_PREFIXES = ("hydra",)  # Hydra's own node is Hydra's business


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """{'train.steps': 2000, ...}; an empty mapping is a leaf."""
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def _container(cfg: DictConfig) -> dict:
    """The resolved config without Hydra's node (whose sweep keys only resolve inside a job)."""
    out = {}
    for key in cfg:
        if key in NEUTRAL_PREFIXES:
            continue
        node = cfg._get_node(key)
        if not OmegaConf.is_config(node):
            out[key] = cfg[key]
            continue
        try:
            out[key] = OmegaConf.to_container(node, resolve=True)
        except Exception as error:  # noqa: BLE001 -- OmegaConf raises several types
            if "HydraConfig" not in str(error):  # a typo like ${trian.steps}: the user's override
                raise UserError(f"The config does not resolve: {str(error).splitlines()[0]}") from None
            out[key] = OmegaConf.to_container(node, resolve=False)  # ${hydra:...}: resolved inside the job
    return out


def _listed(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:24]) + (f", … ({len(keys)} in all)" if len(keys) > 24 else "")


def reference_values(reference: DictConfig) -> dict[str, Any]:
    """The flat {key: default} that check_settings compares a config with."""
    return {k: v for k, v in flatten(_container(reference)).items() if not k.startswith(NEUTRAL_PREFIXES)}


def check_settings(cfg: DictConfig, reference: DictConfig | dict, groups: Sequence[str] = ()) -> None:
    """Raise UserError naming every key of `cfg` that breaks its rule, its reference type, or exists only in
    `cfg`. `reference` is the composed defaults of the chosen groups (or its reference_values); `groups` their names (a group's `name`
    key is set by choosing the group, not by assignment)."""
    values = {k: v for k, v in flatten(_container(cfg)).items() if not k.startswith(NEUTRAL_PREFIXES)}
    defaults = reference if isinstance(reference, dict) else reference_values(reference)
    problems = []
    for key, value in values.items():
        if isinstance(value, str) and "${" in value and key in defaults:
            continue  # an interpolation Hydra resolves in the job itself: its value is not known here
        if key not in defaults:
            inside = [k[len(key) + 1:] for k in defaults if k.startswith(key + ".")]
            if inside:
                problems.append(f"{key}={_show(value)}: {key} is a section, not a value; set its keys "
                                f"({_listed(inside)}), e.g. {key}.{inside[0]}=...")
                continue
            parent = key.rsplit(".", 1)[0] if "." in key else ""
            siblings = [k.rsplit(".", 1)[-1] for k in defaults if parent and k.startswith(parent + ".")]
            problems.append(f"{key}: not a setting of this config" + (
                f" (keys under {parent}: {_listed(siblings)})" if siblings else ""))
            continue
        group = key.rsplit(".", 1)[0]
        one_gpu = key == "device.name" and defaults[key] == "cuda" and str(value).startswith("cuda:")  # device=cuda:K
        if key.endswith(".name") and group in groups and value != defaults[key] and not one_gpu:
            problems.append(f"{key}={value}: choose the {group} with {group}=NAME, not by setting its name")
            continue
        rule = RULES.get(key)
        if rule is not None:
            problem = rule.problem(value)
        elif defaults[key] is None or value is None and defaults[key] is None:
            problem = None
        elif value is None:
            problem = "must be set (it is null)"
        else:
            problem = type_mismatch(value, _kind(defaults[key]))
        if problem:
            problems.append(f"{key}={_show(value)}: {problem}")
    problems += cross_checks(values)
    if problems:
        raise UserError("Invalid settings:\n  " + "\n  ".join(problems))


def _kind(default: Any):
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, (list, tuple)):
        return list
    return str


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def gradient_penalised(divergence: dict | None) -> bool:
    """Whether the critic's loss penalises its per-sample input gradients (WGAN-GP, gp0, Roth et al.)."""
    divergence = divergence or {}
    return bool(divergence.get("gp_weight")) or divergence.get("penalty") not in (None, "none")


def cross_checks(values: dict[str, Any]) -> list[str]:
    """Rules between keys."""
    problems = []
    warmup, hold = values.get("anneal.warmup"), values.get("anneal.hold")
    if isinstance(warmup, NUMBER) and isinstance(hold, NUMBER) and warmup + hold >= 1:
        problems.append(f"anneal.warmup + anneal.hold = {warmup + hold:g}: together they must stay below 1 "
                        "(both are fractions of training)")
    betas = values.get("optim.betas")
    if isinstance(betas, (list, tuple)) and not all(isinstance(b, NUMBER) and 0 <= b < 1 for b in betas):
        problems.append(f"optim.betas={list(betas)}: Adam's betas are two numbers in [0, 1)")
    lam, negative = values.get("anneal.lam"), values.get("anneal.negative")
    if (values.get("anneal.name") == "static" and negative == "raw" and isinstance(lam, NUMBER) and lam <= -1
            and values.get("regularizer.name") in ("likelihood", "entropy")):
        problems.append(f"anneal.lam={lam:g} with anneal.negative=raw gives a weight ≤ −1 (β ≤ 0); raw needs λ > −1. "
                        "Use anneal.negative=entropy (the default) for λ ≤ −1")
    divergence = {"gp_weight": values.get("divergence.gp_weight"), "penalty": values.get("divergence.penalty")}
    if values.get("model.critic_norm") == "batch" and gradient_penalised(divergence):
        problems.append("model.critic_norm=batch with a gradient penalty: the penalty is on each sample's input "
                        "gradient, which batch statistics mix across the batch. Use critic_norm=layer, none or auto")
    return problems
