"""Every config option composes; bad input fails before training with a message and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import invoke, job_dir

from gan_anneal.config import CONF_DIR, compose

GROUPS = sorted(p.name for p in Path(CONF_DIR).iterdir() if p.is_dir() and p.name not in ("sweep",))


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes(group, option):
    cfg = compose([f"{group}={option}"])
    assert cfg.train.steps > 0


def test_defaults_are_the_documented_ones():
    cfg = compose([])
    assert (cfg.dataset.name, cfg.divergence.name, cfg.anneal.name) == ("ring8", "jsd", "none")


def test_divergence_groups_set_their_optimiser():
    wgan = compose(["divergence=wgan"])
    assert wgan.train.n_critic == 5 and list(wgan.optim.betas) == [0.0, 0.9]
    # the command line still wins over the group
    assert compose(["divergence=wgan", "train.n_critic=2"]).train.n_critic == 2
    # the image recipe's Adam 1e-4, and 1e-3 on the MLP toys (divergence_model/wgan_mlp.yaml)
    assert wgan.optim.lr_g == wgan.optim.lr_d == 1e-3
    images = compose(["divergence=wgan", "dataset=cifar10"])
    assert images.optim.lr_g == images.optim.lr_d == 1e-4 and images.model.name == "dcgan32"
    # the penalty: WGAN-GP's 10 on images, its own toy code's 0.1 on the MLP toys (the drift, docs/toys.md)
    assert images.divergence.gp_weight == 10 and wgan.divergence.gp_weight == 0.1
    assert compose(["divergence=wgan", "divergence.gp_weight=5"]).divergence.gp_weight == 5
    assert compose(["divergence=wgan", "optim.lr_g=5e-4"]).optim.lr_g == 5e-4


def test_rkl_takes_the_image_penalty_on_the_dcgan_models_and_the_toy_one_on_the_mlp():
    # divergence_model/rkl_dcgan32.yaml (and dcgan64 through it): 10 on images, the Gibbs check's 0.1 on the toys
    assert compose(["divergence=rkl"]).divergence.penalty_weight == 0.1
    for data in ("experiment=mnist_cpu", "dataset=cifar10", "dataset=celeba"):
        assert compose(["divergence=rkl", data]).divergence.penalty_weight == 10
    assert compose(["divergence=rkl", "experiment=mnist_cpu", "divergence.penalty_weight=0.1"]
                   ).divergence.penalty_weight == 0.1


def test_the_cpu_digit_recipe_trains_at_constant_rates_and_the_toys_decay_theirs():
    # experiment/mnist_cpu.yaml: the linear decay to 0 halved the digits' FID at the same cost (docs/mnist-table.md)
    assert compose([]).optim.decay == "linear"
    for divergence in ("jsd", "rkl", "wgan"):
        assert compose([f"divergence={divergence}", "experiment=mnist_cpu"]).optim.decay == "none"
    assert compose(["experiment=mnist_cpu", "optim.decay=linear"]).optim.decay == "linear"


def test_jsd_on_the_toys_starts_its_dynamic_schedules_after_a_warm_up():
    # divergence_anneal/jsd_mlp_{pma,nma,oa}.yaml: JSD's one-step critic must form before the regulariser acts
    for anneal in ("pma", "nma", "oa"):
        assert compose(["divergence=jsd", f"anneal={anneal}"]).anneal.warmup == 0.25
        assert compose(["divergence=rkl", f"anneal={anneal}"]).anneal.warmup == 0.0
        assert compose(["divergence=wgan", f"anneal={anneal}"]).anneal.warmup == 0.0
        assert compose(["divergence=jsd", f"anneal={anneal}", "dataset=mnist_small"]).anneal.warmup == 0.0
    assert "warmup" not in compose(["divergence=jsd", "anneal=static"]).anneal  # a static λ acts from step 0
    assert compose(["divergence=jsd", "anneal=oa", "anneal.warmup=0"]).anneal.warmup == 0.0  # the command line wins
    swept = compose(["divergence=jsd", "anneal=oa"], return_hydra_config=True)
    assert swept.hydra.runtime.choices["divergence_anneal"] == "jsd_mlp_oa"




@pytest.mark.parametrize(
    "args,needle",
    [
        (["divergence=nope"], "Available options in 'divergence'"),
        (["train.stepz=3"], "Valid keys under 'train': steps"),
        (["train.steps=abc"], "could not be converted to Integer"),
        (["train.steps=-5"], "train.steps=-5: must be a positive integer"),
        (["optim.decay=cosine"], "optim.decay='cosine': must be one of none, linear"),
        (["hydra.run.dir=/proc/forbidden/run"], "Cannot write the run directory"),
        (["-m", "divergence=rkl,nope"], "Could not find 'divergence/nope'"),
    ],
)
def test_bad_input_exits_2_with_a_message(args, needle):
    result = invoke("train", *args)
    assert result.returncode == 2, result.output
    assert needle in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output


def test_resume_of_a_missing_run_is_a_user_error(tmp_path):
    result = invoke("train", f"resume={tmp_path / 'nothing'}")
    assert result.returncode == 2
    assert "not a run directory" in result.output


def test_keys_of_a_swept_group_are_forced_for_hydras_base_composition():
    from gan_anneal.config import force_swept_group_keys

    out = force_swept_group_keys(["anneal=pma,oa", "anneal.warmup=0.2", "train.steps=5", "seed=0,1"])
    assert out == ["anneal=pma,oa", "++anneal.warmup=0.2", "train.steps=5", "seed=0,1"]


def test_multirun_over_a_group_with_one_of_its_keys_set(tmp_path, ganneal):
    result = ganneal("train", "-m", "anneal=pma,oa", "anneal.warmup=0.2", "train.steps=4", "train.log_every=2",
                     "train.eval_samples=200", "train.sample_every=0", "train.progress=false",
                     f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (job_dir(tmp_path, 1) / "summary.json").exists()
    assert "warmup: 0.2" in (job_dir(tmp_path, 1) / "config.yaml").read_text()


def test_a_flat_model_on_images_is_a_user_error(tmp_path):
    from gan_anneal.config import compose
    from gan_anneal.runner import run_training

    cfg = compose(["dataset=digits", "model=mlp", "train.steps=2", "train.progress=false"])
    assert run_training(cfg, tmp_path / "run") == "bad-input"


def test_schedule_names_the_warm_up_and_compare_takes_anneal_keys(tmp_path):
    shown = invoke("schedule", "anneal=oa")
    assert shown.returncode == 0 and "divergence=jsd" in shown.output and "the first 25% at λ = 0" in shown.output
    assert "│  400 │ +0.0000 │" in shown.output  # still at λ = 0 at step 400 of 2000
    assert "the first" not in invoke("schedule", "anneal=oa", "divergence=rkl").output
    plot = tmp_path / "figure4.png"  # the paper's Figure 4: the three schedules without a warm-up
    compared = invoke("schedule", "--compare", "--plot", str(plot), "anneal.warmup=0")
    assert compared.returncode == 0, compared.output
    assert plot.stat().st_size > 0 and "the first" not in compared.output


def test_a_comma_list_is_its_stripped_non_empty_items():
    from gan_anneal.config import comma_list

    assert comma_list(" is, fid,,prc ,") == ["is", "fid", "prc"]
    assert comma_list(None) == [] and comma_list("") == [] and comma_list(" , ") == []
