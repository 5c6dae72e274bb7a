"""conf/config.yaml as written, uncomposed: the one source of the top-level defaults, for what cannot compose a
config (the command line's help text) and for settings an older run's config lacks. PyYAML only: `--help` stays
fast and torch-free."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

CONFIG_YAML = Path(__file__).resolve().parent / "conf" / "config.yaml"


@lru_cache(maxsize=None)
def shipped(section: str) -> dict[str, Any]:
    """One top-level section of config.yaml (train, optim, evaluate ...), e.g. shipped("evaluate")["num_samples"]."""

    return dict(yaml.safe_load(CONFIG_YAML.read_text())[section])
