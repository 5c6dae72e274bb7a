"""Config composition (Hydra) and the typed schema that catches wrong types at compose time.

This module imports no torch: every bad-input path goes through it and must stay fast.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from gan_anneal.errors import UserError

CONF_DIR = (Path(__file__).resolve().parent / "conf").as_posix()


@dataclass
class TrainSchema:
    steps: int = 2000
    batch_size: int = 256
    n_critic: int = 1
    g_steps: int = 1
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 500
    eval_samples: int = 10000
    snapshot_samples: int = 2000
    reuse_fake: bool = False
    progress: bool = True
    progress_every_s: float = 30.0  # plain progress lines when stdout is not a terminal (and in train.log)
    ema: float = 0.0  # decay of an EMA copy of the generator, e.g. 0.999; 0 = off (train/ema.py)


@dataclass
class OptimSchema:
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    decay: str = "linear"


@dataclass
class MetricsSchema:
    mode_min_share: float = 0.2


@dataclass
class EvaluateSchema:
    """Defaults of `ganneal evaluate` (IS / FID / KID through torch-fidelity); its options override these."""

    metrics: str = "is,fid"
    num_samples: int = 50000
    batch_size: int = 64
    extractor: str = "inception-v3-compat"  # or ganneal-tiny: the offline stand-in (tests, smoke runs)
    inception_weights: Optional[str] = None  # weights-inception-2015-12-05-6726825d.pth
    reference_split: str = "train"
    is_splits: int = 10
    generator: str = "auto"  # auto (EMA when the run kept one) | ema | raw
    cache_dir: Optional[str] = None  # real-image statistics; default $GANNEAL_CACHE/fidelity
    seed: int = 2020
    after_training: bool = False  # evaluate in the training job itself once it is done (named image sweeps)


@dataclass
class Schema:
    seed: int = 0
    resume: Optional[str] = None
    train: TrainSchema = field(default_factory=TrainSchema)
    optim: OptimSchema = field(default_factory=OptimSchema)
    metrics: MetricsSchema = field(default_factory=MetricsSchema)
    evaluate: EvaluateSchema = field(default_factory=EvaluateSchema)
    dataset: Any = MISSING
    model: Any = MISSING
    divergence: Any = MISSING
    regularizer: Any = MISSING
    anneal: Any = MISSING
    score: Any = MISSING
    device: Any = MISSING
    generator_update: Any = MISSING
    model_score: Any = MISSING  # the online model score of the entropy term
    # BGAN (issue 7): a top-level generator-loss choice that the f-divergence configs interpolate, and the
    # discrete estimator's settings (`bgan.samples_per_z=20`).
    generator_loss: Optional[str] = None
    bgan: Any = MISSING


ConfigStore.instance().store(name="ganneal_schema", node=Schema)

POSITIVE_TRAIN_KEYS = ("steps", "batch_size", "n_critic", "g_steps", "log_every", "checkpoint_every",
                       "eval_samples", "snapshot_samples")


def check_values(cfg: DictConfig) -> None:
    """Range checks a type system cannot express."""
    for key in POSITIVE_TRAIN_KEYS:
        if cfg.train[key] < 1:
            raise UserError(f"train.{key} must be a positive integer, got {cfg.train[key]}.")
    if cfg.train.sample_every < 0:
        raise UserError(f"train.sample_every must be ≥ 0 (0 turns snapshots off), got {cfg.train.sample_every}.")
    if cfg.optim.decay not in ("none", "linear"):
        raise UserError(f"optim.decay must be 'none' or 'linear', got '{cfg.optim.decay}'.")
    if cfg.optim.lr_g <= 0 or cfg.optim.lr_d <= 0:
        raise UserError("optim.lr_g and optim.lr_d must be positive.")
    chosen = cfg.get("generator_loss")
    if chosen is not None and cfg.divergence.get("generator_loss") != chosen:
        raise UserError(f"generator_loss={chosen} applies to the f-divergence configs (divergence=bgan_* or fgan_*); "
                        f"divergence={cfg.divergence.name} does not read it. "
                        f"Use divergence.generator_loss={chosen} if that divergence has the setting.")


NOISE = ("full_key:", "object_type=", "reference_type=", "Value '$VALUE'", "To append to your config", "Config search path",
         "provider=")


def _explain(error: BaseException) -> str:
    """Hydra's message plus the causes it hides (e.g. "Key 'stepz' is not in struct")."""
    lines: list[str] = []
    while error is not None:
        for line in str(error).strip().splitlines():
            line = line.strip()
            if line and "HYDRA_FULL_ERROR" not in line and not line.startswith(NOISE) \
                    and line not in lines:
                lines.append(line)
        error = error.__cause__ or error.__context__
    return "\n".join(lines)


def _valid_keys_hint(message: str, overrides: list[str]) -> str:
    """For a misspelt key, name the keys that do exist at that level."""
    match = re.search(r"Could not override '([\w.]+)'", message)
    if not match:
        return ""
    parent = match.group(1).rsplit(".", 1)[0] if "." in match.group(1) else ""
    others = [o for o in overrides if not o.split("=", 1)[0].lstrip("+~").startswith(match.group(1))]
    try:
        cfg = compose(others)
        node = OmegaConf.select(cfg, parent) if parent else cfg
        return f"\nValid keys{f' under {parent!r}' if parent else ''}: {', '.join(map(str, node.keys()))}."
    except Exception:
        return ""


def compose(overrides: list[str], return_hydra_config: bool = False) -> DictConfig:
    """Compose the config as `ganneal train` would, raising UserError with Hydra's message on bad input."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = hydra_compose("config", overrides=list(overrides), return_hydra_config=return_hydra_config)
    except Exception as error:  # Hydra and OmegaConf raise many types; all are the user's input here
        message = _explain(error)
        raise UserError(message + _valid_keys_hint(message, overrides)) from None
    finally:
        GlobalHydra.instance().clear()
    check_values(cfg)
    return cfg


def sweep_choices(overrides: list[str]) -> list[list[str]]:
    """Expand sweep syntax (a=1,2 · range() · glob()) into one list of overrides per value to check.

    Every value of every swept key is checked once, against the first value of the other keys, so a
    42-job grid is validated in a few compositions rather than 42.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except Exception as error:
        raise UserError(_explain(error)) from None
    expanded = []
    for override in parsed:
        if override.is_sweep_override():
            values = [f"{override.get_key_element()}={v}" for v in override.sweep_string_iterator()]
        else:
            values = [override.input_line]
        expanded.append(values)
    firsts = [values[0] for values in expanded]
    checks = [firsts]
    for i, values in enumerate(expanded):
        for value in values[1:]:
            checks.append(firsts[:i] + [value] + firsts[i + 1:])
    return checks


def first_writable_problem(directory: str) -> str | None:
    """Why `directory` cannot be created and written, or None if it can (probed without creating it)."""
    probe = Path(directory).expanduser().absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        return f"'{probe}' exists and is not a directory"
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as error:
        return f"'{probe}' is not writable ({error.strerror})"
    return None


def validate_cli_overrides(overrides: list[str], multirun: bool) -> DictConfig:
    """Compose every configuration a `train` call would run; return the first one's full config."""
    checks = sweep_choices(overrides) if multirun else [list(overrides)]
    first = None
    for check in checks:
        cfg = compose(check, return_hydra_config=True)
        first = first or cfg
    out_dir = first.hydra.sweep.dir if multirun else first.hydra.run.dir
    problem = first_writable_problem(out_dir)
    if problem:
        raise UserError(f"Cannot write the run directory {out_dir}: {problem}. "
                        "Choose another with hydra.run.dir=... (or hydra.sweep.dir=... with -m).")
    return first




def force_swept_group_keys(overrides: list[str]) -> list[str]:
    """Make `ganneal train -m anneal=pma,oa anneal.warmup=0.2` work.

    Hydra's multirun first composes the base config without the sweep overrides, where a key that only the
    swept group options define (anneal.warmup under the default anneal=none) does not exist yet, and fails.
    Every job's own config has already been validated with the plain override (validate_cli_overrides), so
    typos are still caught; for the base composition such overrides are passed as `++key=value`.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    lines = {o.get_key_element(): o.input_line for o in parsed}
    swept = {o.get_key_element() for o in parsed if o.is_sweep_override()}
    for _ in range(len(lines)):
        try:
            compose([line for key, line in lines.items() if key not in swept])
            break
        except UserError as error:
            match = re.search(r"Could not override '([\w.]+)'", str(error))
            if not match or match.group(1) not in lines or lines[match.group(1)].startswith("+"):
                break  # some other problem: leave it to Hydra, which reports it
            lines[match.group(1)] = "++" + lines[match.group(1)]
    return list(lines.values())
