"""Config composition (Hydra) and the typed schema that catches wrong types at compose time.

This module imports no torch: every bad-input path goes through it and must stay fast.
"""

from __future__ import annotations

import difflib
import re
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import MISSING, DictConfig, OmegaConf, open_dict

from gan_anneal.errors import UserError
from gan_anneal.kinds import dataset_kind
from gan_anneal.metric_names import FIDELITY_KEYS, higher_is_better
from gan_anneal.schema import check_settings

CONF_DIR = (Path(__file__).resolve().parent / "conf").as_posix()


# The typed schema of the top-level sections: types only. Their values live in conf/config.yaml, the one source of
# every default (defaults.py reads it for the command line's help).
@dataclass
class TrainSchema:
    steps: int = MISSING
    batch_size: int = MISSING
    n_critic: int = MISSING
    penalty_every: int = MISSING
    g_steps: int = MISSING
    log_every: int = MISSING
    sample_every: int = MISSING
    checkpoint_every: int = MISSING
    eval_samples: int = MISSING
    snapshot_samples: int = MISSING
    reuse_fake: bool = MISSING
    progress: bool = MISSING
    progress_every_s: float = MISSING
    ema: float = MISSING
    eval_every: int = MISSING
    eval_num_samples: int = MISSING
    best_metric: Optional[str] = MISSING


@dataclass
class OptimSchema:
    lr_g: float = MISSING
    lr_d: float = MISSING
    betas: list[float] = MISSING
    decay: str = MISSING


@dataclass
class MetricsSchema:
    mode_min_share: float = MISSING


@dataclass
class EvaluateSchema:
    """`ganneal evaluate`'s settings (config.yaml has their defaults)."""

    metrics: str = MISSING
    num_samples: int = MISSING
    batch_size: int = MISSING
    extractor: str = MISSING
    inception_weights: Optional[str] = MISSING
    reference_split: str = MISSING
    is_splits: int = MISSING
    generator: str = MISSING
    cache_dir: Optional[str] = MISSING
    seed: int = MISSING
    after_training: bool = MISSING


@dataclass
class Schema:
    seed: int = MISSING
    resume: Optional[str] = MISSING
    train: TrainSchema = MISSING
    optim: OptimSchema = MISSING
    metrics: MetricsSchema = MISSING
    evaluate: EvaluateSchema = MISSING
    dataset: Any = MISSING
    model: Any = MISSING
    divergence: Any = MISSING
    regularizer: Any = MISSING
    anneal: Any = MISSING
    score: Any = MISSING
    device: Any = MISSING
    generator_update: Any = MISSING
    model_score: Any = MISSING  # the online model score of the entropy term
    logger: Any = MISSING  # logger=[jsonl,csv,tensorboard]: one node per selected writer (results/loggers.py)
    # BGAN: a top-level generator-loss choice that the f-divergence configs interpolate, and the
    # discrete estimator's settings (`bgan.samples_per_z=20`).
    generator_loss: Optional[str] = None
    bgan: Any = MISSING


ConfigStore.instance().store(name="ganneal_schema", node=Schema)


def comma_list(text: str | None) -> list[str]:
    """A comma-separated option or setting as its items, stripped, empty ones dropped ("is, fid," → ["is", "fid"])."""
    return [item.strip() for item in str(text or "").split(",") if item.strip()]

def check_values(cfg: DictConfig) -> None:
    """Checks between settings that the schema (schema.py) does not express."""
    chosen = cfg.get("generator_loss")
    if chosen is not None and cfg.divergence.get("generator_loss") != chosen:
        raise UserError(f"generator_loss={chosen} applies to the f-divergence configs (divergence=bgan_* or fgan_*); "
                        f"divergence={cfg.divergence.name} does not read it. "
                        f"Use divergence.generator_loss={chosen} if that divergence has the setting.")
    best = cfg.train.get("best_metric")
    if best:
        higher_is_better(best)  # a metric with no known direction is refused here, before any training
        if best.split("/")[-1] in FIDELITY_KEYS and not cfg.train.get("eval_every"):
            raise UserError(f"train.best_metric={best} is measured only with train.eval_every > 0 "
                            "(e.g. train.eval_every=500).")
    if cfg.train.get("eval_every"):
        if dataset_kind(str(cfg.dataset.name)) != "images":
            raise UserError(f"train.eval_every computes IS/FID/KID, which compare images; dataset={cfg.dataset.name} "
                            "is not one. Its own metrics come every train.sample_every steps (eval/… in "
                            "metrics.jsonl), and train.best_metric can track them (e.g. eval/kl_target_model).")


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
        keys = list(map(str, node.keys()))
    except Exception:
        return ""

    close = difflib.get_close_matches(match.group(1).rsplit(".", 1)[-1], keys, n=1)
    guess = f" Did you mean '{(parent + '.') if parent else ''}{close[0]}'?" if close else ""
    return f"{guess}\nValid keys{f' under {parent!r}' if parent else ''}: {', '.join(keys)}."


def _group_options_hint(message: str) -> str:
    """For an option that does not exist in a group (logger=[jsonl,tensorbord]), the options that do."""
    match = re.search(r"Could not load '(\w+)/([^']+)'", message)
    if not match or "Available options" in message:
        return ""

    options = [name for name, _ in group_options().get(match.group(1), [])]
    close = difflib.get_close_matches(match.group(2), options, n=1)
    guess = f" Did you mean '{close[0]}'?" if close else ""
    return f"{guess}\nValid options for {match.group(1)}: {', '.join(options)}."


def _quoting_hint(overrides: list[str], message: str) -> str:
    """Hydra's grammar reads an unquoted value as plain words: characters outside it (ü, spaces, #) need quotes."""
    plain = re.compile(r"[\w.:/\\+\-*,=\[\]{}()@$%~'\" ]*")
    bad = [o for o in overrides if not plain.fullmatch(o) or not o.isascii()]
    if not bad:
        return message
    key, _, value = bad[0].partition("=")
    return (f"{bad[0]}: Hydra reads an unquoted value as plain ASCII words, and this one has other characters. "
            f"Quote the value, with outer single quotes for your shell: '{key}=\"{value}\"'.")


def _hydra_compose(overrides: list[str]) -> DictConfig:
    """Hydra's composition with its own node, raising UserError with Hydra's message on bad input."""

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return hydra_compose("config", overrides=list(overrides), return_hydra_config=True)
    except Exception as error:  # Hydra and OmegaConf raise many types; all are the user's input here
        message = _explain(error)
        if "LexerNoViableAltException" in message or "token recognition error" in message:
            raise UserError(_quoting_hint(overrides, message)) from None
        raise UserError(message + _valid_keys_hint(message, overrides) + _group_options_hint(message)) from None
    finally:
        GlobalHydra.instance().clear()


@lru_cache(maxsize=64)
def _reference(choices: tuple[tuple[str, str], ...]) -> DictConfig:
    """The defaults of these group choices: the types and keys the schema checks a config against."""
    return _hydra_compose([f"{group}={option}" for group, option in choices])


LIST_GROUPS = ("logger",)  # groups chosen as lists (logger=[jsonl,csv]), which Hydra's runtime choices omit


def group_choices(cfg: DictConfig) -> dict[str, str]:
    """{'dataset': 'ring8', 'experiment': 'gibbs', 'logger': '[jsonl,csv]', ...}: ganneal's config groups as
    chosen (Hydra's excluded)."""
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
    chosen = {g: str(o) for g, o in choices.items() if "/" not in g and g != "hydra" and o is not None
              and (Path(CONF_DIR) / g).is_dir()}
    for group in LIST_GROUPS:  # each selected option adds its own node under the group
        if OmegaConf.is_dict(cfg.get(group)):
            chosen[group] = "[" + ",".join(cfg[group].keys()) + "]"
    return chosen


def compose(overrides: list[str], return_hydra_config: bool = False) -> DictConfig:
    """Compose the config as `ganneal train` would and check every setting (schema.py); bad input raises
    UserError with a message that names the key and what it may hold."""
    cfg = _hydra_compose(overrides)
    choices = group_choices(cfg)
    check_settings(cfg, _reference(tuple(sorted(choices.items()))), groups=tuple(choices))
    check_values(cfg)
    if not return_hydra_config:
        with open_dict(cfg):
            del cfg["hydra"]
    return cfg


def sweep_choices(overrides: list[str]) -> list[list[str]]:
    """Expand sweep syntax (a=1,2 · range() · glob()) into one list of overrides per value to check.

    Every value of every swept key is checked once, against the first value of the other keys, so a
    42-job grid is validated in a few compositions rather than 42.
    """

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




def first_sentence(file: Path) -> str:
    """A config file's description: its opening comment block up to the end of the first sentence."""
    lines = []
    for line in file.read_text().splitlines():
        if not line.startswith("#"):
            break
        if not line.startswith("# @package"):
            lines.append(line.lstrip("#").strip())
    text = " ".join(part for part in lines if part)
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return match.group(1) if match else text


def group_options() -> dict[str, list[tuple[str, str]]]:
    """{group: [(option, one-line description)]} of the shipped config groups (sweeps are `ganneal sweep`'s)."""
    groups = {}
    for folder in sorted(Path(CONF_DIR).iterdir()):
        if not folder.is_dir() or folder.name == "sweep":
            continue
        options = []
        for file in sorted(folder.glob("*.yaml")):
            options.append((file.stem, first_sentence(file)))
        groups[folder.name] = options
    return groups


def default_choices() -> dict[str, str]:
    """The option each group takes when the command line names none (config.yaml's defaults list)."""
    defaults = OmegaConf.to_container(OmegaConf.load(Path(CONF_DIR) / "config.yaml"), resolve=False)["defaults"]
    out = {}
    for entry in defaults:
        if isinstance(entry, dict):
            for key, value in entry.items():
                group = str(key).removeprefix("optional ").strip()
                if not group.startswith("override") and "${" not in str(value):
                    out[group] = "null" if value is None else str(value)
    return out


def swept_keys(overrides: list[str]) -> list[str]:
    """The keys of the overrides that sweep (a,b,c · range() · choice() · glob()), by Hydra's own parser."""

    return [o.get_key_element() for o in OverridesParser.create().parse_overrides(list(overrides))
            if o.is_sweep_override()]


def force_swept_group_keys(overrides: list[str]) -> list[str]:
    """Make `ganneal train -m anneal=pma,oa anneal.warmup=0.2` work.

    Hydra's multirun first composes the base config without the sweep overrides, where a key that only the
    swept group options define (anneal.warmup under the default anneal=none) does not exist yet, and fails.
    Every job's own config has already been validated with the plain override (validate_cli_overrides), so
    typos are still caught; for the base composition such overrides are passed as `++key=value`.
    """

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    lines = {o.get_key_element(): o.input_line for o in parsed}
    swept = set(swept_keys(overrides))
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
