"""Which runs are alike: a table cell may only hold runs whose configs differ in the seed alone.

A run's cell is (divergence, column). Runs in one folder may also differ in other keys (dataset=grid25 next to
ring8, another learning rate, an older version's defaults); such keys are *setting keys*, and the runs are
split into one setting per distinct value, each tabulated on its own. A key is a setting key when

  (a) two runs of the same cell differ in it, or
  (b) runs differ in it and neither the row nor the column explains that: it lies outside `anneal.*` and is
      not set by the config files of the divergences present (W-GAN sets train.n_critic and optim.*).

Keys that do not change what is trained (NEUTRAL_KEYS, `evaluate.*`) never split. Nothing here imports torch.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from gan_anneal.config import CONF_DIR
from gan_anneal.errors import UserError
from gan_anneal.results.collect import RunRecord
from gan_anneal.results.continuation import NEUTRAL_KEYS
from gan_anneal.schema import flatten

ABSENT = "<absent>"
IGNORED_PREFIXES = ("evaluate.",)  # `ganneal evaluate`'s defaults; what an evaluation used is eval.* (collect.py)
COLUMN_KEYS = ("anneal.name", "anneal.lam")  # they make the column (anneal=none is the λ = 0 column)


@dataclass
class Setting:
    label: str  # "dataset=grid25, optim.lr_g=0.0001", or "" when the folder holds one setting
    values: dict[str, Any]
    records: list[RunRecord]
    keys: list[str] = field(default_factory=list)  # the setting keys of the folder this setting came from


@lru_cache(maxsize=None)
def divergence_keys(name: str) -> frozenset[str]:
    """The keys the `divergence=<name>` config file sets (its package is global: optim.*, train.n_critic ...)."""

    path = Path(CONF_DIR) / "divergence" / f"{name}.yaml"
    if not path.is_file():
        return frozenset()
    node = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    node.pop("defaults", None)
    if not path.read_text().lstrip().startswith("# @package _global_"):
        node = {"divergence": node}
    return frozenset(flatten(node))


def _comparable(record: RunRecord) -> dict[str, Any]:
    return {k: v for k, v in record.config.items()
            if k != "seed" and k not in NEUTRAL_KEYS and k not in COLUMN_KEYS and not k.startswith(IGNORED_PREFIXES)}


def _distinct(configs: list[dict], key: str) -> set[str]:
    """The values runs hold for `key`; a run without the key (an older version, a schedule without warm-up)
    matches any value, so it adds none."""
    return {repr(c[key]) for c in configs if key in c}


def setting_keys(records: list[RunRecord]) -> list[str]:
    records = [r for r in records if r.config]  # unreadable runs are listed as unknown, never a setting
    configs = [_comparable(r) for r in records]
    keys = sorted(set().union(*configs)) if configs else []
    explained = set().union(*(divergence_keys(d) for d in {r.divergence for r in records}))
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for record, config in zip(records, configs):
        cells[(record.divergence, record.column)].append(config)
    found = []
    for key in keys:
        if len(_distinct(configs, key)) < 2:
            continue
        within_cell = any(len(_distinct(group, key)) > 1 for group in cells.values())
        by_row_or_column = key.startswith("anneal.") or key in explained
        if within_cell or not by_row_or_column:
            found.append(key)
    return found


def _label(values: dict[str, Any], keys: list[str], records: list[RunRecord]) -> str:
    """dataset=grid25 rather than dataset.name=grid25, dataset.side=5, ...: a group's other keys are shown
    only where they vary for the same group choice."""
    chosen = {k.rsplit(".", 1)[0] for k in keys if k.endswith(".name")}
    shown = []
    for key in keys:
        group = key.rsplit(".", 1)[0] if "." in key else ""
        if key.endswith(".name"):
            shown.append(f"{group}={values[key]}")
            continue
        if group in chosen:
            same_choice = defaultdict(set)
            for r in records:
                same_choice[repr(r.config.get(f"{group}.name"))].add(repr(r.config.get(key, ABSENT)))
            if all(len(v) == 1 for v in same_choice.values()):
                continue
        shown.append(f"{key}={values[key]}")
    return ", ".join(shown)


def split_settings(records: list[RunRecord]) -> list[Setting]:
    """The records grouped by their setting keys; one group (label "") when all runs are alike. Raises
    UserError when two runs of one setting and cell share a seed: they are not two samples."""
    keys = setting_keys(records)
    common = {k: Counter(repr(r.config[k]) for r in records if k in r.config).most_common(1)[0][0] for k in keys}
    groups: dict[tuple, list[RunRecord]] = defaultdict(list)
    for record in records:  # a run without a key joins the setting most runs have for it
        groups[tuple(repr(record.config[k]) if k in record.config else common[k] for k in keys)].append(record)
    settings = []
    for members in groups.values():
        values = {k: next((r.config[k] for r in members if k in r.config), ABSENT) for k in keys}
        settings.append(Setting(_label(values, keys, records), values, members, keys))
        _check_one_run_per_seed([r for r in members if r.config])
    settings.sort(key=lambda s: s.label)
    return settings


def _check_one_run_per_seed(records: list[RunRecord]) -> None:
    seen: dict[tuple, RunRecord] = {}
    for record in records:
        cell = (record.divergence, record.column, record.seed)
        if cell in seen:
            raise UserError(f"Two runs with the same settings and seed {record.seed} in one cell "
                            f"({record.divergence}, {record.column}): {seen[cell].path} and {record.path}. A cell "
                            "holds one run per seed; move one of them out of the folder (or give it another seed).")
        seen[cell] = record
