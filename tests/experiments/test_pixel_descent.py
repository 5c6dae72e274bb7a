"""`ganneal pixel-descent`: gradient descent on the samples themselves under the two generator losses (BGAN §6.5).
The proxy loss −T(F(x)) rewards a larger critic output without end; the boundary-seeking loss ½F(x)² is
smallest on the decision boundary F = 0. Descending each must move F that way."""

from __future__ import annotations

import json


def test_the_proxy_loss_pushes_f_up_and_the_boundary_loss_pulls_it_to_zero(train_run, ganneal):
    _, run = train_run("divergence=jsd", "train.steps=60", "train.log_every=20", "train.eval_samples=200",
                       name="jsd")
    result = ganneal("pixel-descent", str(run.path), "--critic-steps", "20", "--steps", "40", "--lr", "0.05",
                     "-n", "256")
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads((run.path / "pixel_descent" / "pixel_descent.json").read_text())
    proxy, boundary = record["trajectories"]["proxy"], record["trajectories"]["boundary"]
    assert proxy[-1]["mean_F"] > proxy[0]["mean_F"]
    assert boundary[-1]["mean_abs_F"] < boundary[0]["mean_abs_F"]
    assert proxy[0]["mean_F"] == boundary[0]["mean_F"]  # the same starting samples and critic
    assert (run.path / "pixel_descent" / "boundary_step_0040.png").is_file()


def test_pixel_descent_refuses_what_it_cannot_descend(train_run, ganneal, tmp_path):
    assert ganneal("pixel-descent", str(tmp_path / "missing")).returncode == 2
    _, run = train_run("divergence=wgan", "train.steps=20", "train.log_every=10", "train.eval_samples=200",
                       name="wgan")
    result = ganneal("pixel-descent", str(run.path), "--critic-steps", "2", "--steps", "2")
    assert result.returncode == 2 and "proxy/boundary" in result.stderr and "Traceback" not in result.stderr
    assert ganneal("pixel-descent", str(run.path), "--steps", "0").returncode == 2
