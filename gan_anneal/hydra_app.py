"""The Hydra entry point behind `ganneal train`: Hydra's own machinery gives run and sweep directories,
`.hydra/` records, and launcher plugins (joblib, submitit) for multirun."""

from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from gan_anneal.config import CONF_DIR

OUTCOMES: list[str] = []  # outcomes of the jobs run in this process, read by the CLI for its exit code


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def hydra_train(cfg: DictConfig) -> str:
    from gan_anneal.runner import run_training

    outcome = run_training(cfg, HydraConfig.get().runtime.output_dir)
    OUTCOMES.append(outcome)
    return outcome
