"""Older runs read by the current code: gan_anneal/legacy.py is the one place that knows which keys and names came later."""

from __future__ import annotations

from omegaconf import OmegaConf


def test_an_older_config_is_upgraded_to_what_its_code_did_and_the_yaml_fills_later_keys():
    from gan_anneal.defaults import shipped
    from gan_anneal.legacy import upgrade

    old = OmegaConf.create({"train": {"steps": 10}, "model_score": {"sigma": 0.1},
                            "anneal": {"name": "oa", "negative": "symmetric"}})
    new = upgrade(old)
    assert new.train.steps == 10 and new.train.snapshot_samples == shipped("train")["snapshot_samples"]
    assert new.evaluate.num_samples == shipped("evaluate")["num_samples"]
    assert new.model_score.cadence == "critic"  # the older code's DSM step at every critic step, not the current default
    assert new.anneal.negative == "data"
    assert "regularizer" not in new  # an assumed key needs its section: nothing is invented
    assert old.anneal.negative == "symmetric" and "snapshot_samples" not in old.train  # a copy


def test_a_run_recorded_before_a_key_existed_is_rebuilt_for_probes(train_run):
    import yaml

    from gan_anneal.experiments.critic_probe import load_run

    _, run = train_run("train.steps=10", "train.log_every=5", "train.eval_samples=200", name="old")
    config = yaml.safe_load((run.path / "config.yaml").read_text())
    del config["train"]["snapshot_samples"], config["model_score"]["cadence"]  # as an older ganneal wrote it
    (run.path / "config.yaml").write_text(yaml.safe_dump(config))
    _, exp, step = load_run(run.path)
    assert step == 10 and exp.step_settings.snapshot_samples > 0
