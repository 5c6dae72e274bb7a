"""Every `experiment=` option trains end to end for a few steps (a preset that no longer composes or runs fails
here, not in a user's first command)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gan_anneal.config import CONF_DIR

EXPERIMENTS = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml"))
SMALL = ["train.steps=4", "train.log_every=2", "train.checkpoint_every=4", "train.sample_every=4",
         "train.batch_size=16", "train.eval_samples=64", "train.progress=false", "device=cpu"]


def _own_data(name: str, tmp_path: Path, write_corpus) -> list[str]:
    """The few presets whose data is not on disk already: text needs a corpus."""
    if name == "bgan_text":
        return [f"dataset.path={write_corpus(tmp_path / 'corpus.txt')}", "model.dim=16", "model.blocks=1"]
    return []


def test_the_experiment_folder_is_what_the_smoke_test_covers():
    assert {"mnist_cpu", "gibbs", "kidney_annealed", "bgan_quantized"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_trains_a_few_steps(name, train_run, tmp_path, write_corpus):
    outcome, run = train_run(f"experiment={name}", *SMALL, *_own_data(name, tmp_path, write_corpus), name=name)
    assert outcome == "done", (run.path / "train.log").read_text()
    assert run.checkpoint.is_file()
