"""Run configs written by older ganneal, read by the current code: the one place that knows what changed since.

- ASSUMED: keys added after runs were made, with the value the older code behaved as (not always the current
  default), so an older run continues under its own command instead of being called "other settings";
- RENAMED: values that changed name (anneal.negative=symmetric is the current data);
- upgrade(): a stored config with all of that applied and the top-level sections' later keys filled from
  conf/config.yaml (train.snapshot_samples ...), so an older run can be rebuilt for evaluation and probes.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from gan_anneal.defaults import shipped

ASSUMED = {"regularizer.force": "unit", "regularizer.reduction": "sum", "model_score.updates": 1,
           "device.deterministic": False, "model_score.cadence": "critic", "train.penalty_every": 1}
RENAMED = {"anneal.negative": {"symmetric": "data"}}
SECTIONS = ("train", "optim", "metrics", "evaluate")  # top-level sections whose defaults live in config.yaml


def renamed(key: str, value: Any) -> Any:
    """The current name of a stored setting's value."""
    return RENAMED.get(key, {}).get(value, value)


def upgrade(cfg: DictConfig) -> DictConfig:
    """The stored config as the current code reads it (a copy): later section keys, assumed keys, renamed values."""
    cfg = cfg.copy()
    with open_dict(cfg):
        for section in SECTIONS:
            stored = OmegaConf.to_container(cfg[section]) if section in cfg else {}
            cfg[section] = {**shipped(section), **(stored or {})}
        for key, value in ASSUMED.items():
            parent, name = key.rsplit(".", 1)
            node = OmegaConf.select(cfg, parent)
            if isinstance(node, DictConfig) and name not in node:
                node[name] = value
        for key in RENAMED:
            value = OmegaConf.select(cfg, key)
            if value is not None:
                OmegaConf.update(cfg, key, renamed(key, value))
    return cfg
