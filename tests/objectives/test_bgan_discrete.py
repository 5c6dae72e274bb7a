"""Discrete BGAN: the policy-gradient estimator against exact gradients on enumerable problems, the generator heads,
the discrete datasets, and short end-to-end runs (training, checkpointed estimator state, fresh-critic probes)."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
from torch import nn

from gan_anneal.models.discrete import DiscreteHead
from gan_anneal.objectives.divergences import DIVERGENCES
from gan_anneal.objectives.generator_updates import GENERATOR_UPDATES


class TableHead(DiscreteHead):
    """A generator whose logits are free parameters depending on z only through a sign flip of one row."""

    def __init__(self, shape, seed=0):
        super().__init__()
        self.channels = shape[0]
        self.z_dim = 1
        torch.manual_seed(seed)
        self.theta = nn.Parameter(torch.randn(*shape, dtype=torch.float64))

    def sample_noise(self, n, device=None):
        return torch.tensor([[1.0], [-1.0]] * (n // 2) + [[1.0]] * (n % 2), dtype=torch.float64)

    def logits(self, z):
        flip = torch.ones_like(self.theta)
        flip[..., 0] = -1  # the first position's logits depend on z
        return torch.where(z.view(-1, *[1] * self.theta.dim()) > 0, self.theta, self.theta * flip)


class TableCritic(nn.Module):
    """A fixed critic: F(x) = a·x + b·x₀x₁ (not linear, so the weights are not a product over dimensions)."""

    def __init__(self, shape, seed=1):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.a = torch.randn(*shape, generator=g, dtype=torch.float64)

    def forward(self, x):
        flat = x.double().flatten(1)
        return (flat * self.a.flatten()).sum(1) + 0.8 * flat[:, 0] * flat[:, 1]


def enumerate_states(shape):
    """Every discrete x for a head with `shape` = (C, L): 0/1 vectors (C = 1) or one-hot sequences (C = K)."""
    c, length = shape
    if c == 1:
        return torch.tensor(list(itertools.product([0.0, 1.0], repeat=length)), dtype=torch.float64).view(-1, 1, length)
    states = []
    for classes in itertools.product(range(c), repeat=length):
        states.append(torch.nn.functional.one_hot(torch.tensor(classes), c).T.double())
    return torch.stack(states)


def exact_gradients(head, critic, z):
    """Exact ∇θ of the two objectives for a batch of z (per-z means), enumerating every x.

    bgan:      −E_z Σ_x p̃(x|z) ∇ log g(x|z),  p̃(x|z) ∝ w(x) g(x|z), p̃ held fixed (the conditional KL(p̃‖g))
    reinforce: −E_z Σ_x ∇ g(x|z) · log w(x)                (∇ of the reverse-KL form, p̃ held fixed)"""
    states = enumerate_states(tuple(head.theta.shape))
    log_w = critic(states)
    grads = {}
    for kind in ("bgan", "reinforce"):
        head.zero_grad()
        logits = head.logits(z)  # (n, C, L)
        n, s = len(z), len(states)
        log_g = head.log_prob(states.repeat(n, 1, 1), logits.repeat_interleave(s, 0)).view(n, s)
        if kind == "bgan":
            target = torch.softmax(log_w[None] + log_g.detach(), dim=1)
            loss = -(target * log_g).sum(1).mean()
        else:
            loss = -(log_g.exp() * log_w[None]).sum(1).mean()
        loss.backward()
        grads[kind] = head.theta.grad.clone()
    return grads


@pytest.mark.parametrize("shape", [(1, 3), (3, 2)], ids=["3 Bernoulli bits", "2 positions x 3 classes"])
@pytest.mark.parametrize("estimator", ["bgan", "reinforce"])
def test_policy_gradient_matches_exact_gradient(shape, estimator):
    torch.manual_seed(0)
    head, critic = TableHead(shape), TableCritic(shape)
    z = head.sample_noise(2)
    exact = exact_gradients(head, critic, z)[estimator]
    update = GENERATOR_UPDATES.build("policy_gradient", samples_per_z=100_000, estimator=estimator,
                                     logz_gamma=0.0)
    div = DIVERGENCES.build("bgan_js")
    if estimator == "reinforce":
        update.loss(head, critic, div, 2, "cpu")  # prime the moving-average log Z (γ = 0: last batch's value)
    head.zero_grad()
    loss, fake, extras = update.loss(head, critic, div, 2, "cpu")
    loss.backward()
    assert fake is None
    assert 1.0 <= extras["ess"] <= 100_000
    assert torch.allclose(head.theta.grad, exact, atol=0.03 * float(exact.abs().max()) + 1e-3), \
        (head.theta.grad, exact)


def test_batch_normalisation_matches_per_z_when_z_does_not_matter():
    class Constant(TableHead):
        def logits(self, z):
            return self.theta.expand(len(z), *self.theta.shape)

    shape = (1, 3)
    head, critic, div = Constant(shape), TableCritic(shape), DIVERGENCES.build("bgan_rkl")
    grads = []
    for norm in ("per_z", "batch"):
        torch.manual_seed(0)
        head.zero_grad()
        GENERATOR_UPDATES.build("policy_gradient", samples_per_z=50_000, weight_norm=norm).loss(
            head, critic, div, 2, "cpu")[0].backward()
        grads.append(head.theta.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=0.03 * float(grads[0].abs().max()))


def test_weights_uniform_give_full_ess_and_zero_variance():
    from gan_anneal.objectives.policy_gradient import normalised_weights, weight_diagnostics

    log_w = torch.full((7, 4), -2.5)
    d = weight_diagnostics(log_w)
    assert float(d["ess"]) == pytest.approx(7.0) and float(d["weight_var"]) == pytest.approx(0.0, abs=1e-10)
    assert torch.allclose(normalised_weights(log_w, "per_z").sum(0), torch.ones(4))
    assert torch.allclose(normalised_weights(log_w, "batch").sum(0), torch.ones(4))


@pytest.mark.parametrize("shape", [(1, 28, 28), (16, 28, 28)])
def test_dcgan_heads_sample_detached_discrete_values_and_exact_log_prob(shape):
    from gan_anneal.models import build_models

    g, d = build_models({"name": "discrete_dcgan", "g_width": 8, "g_hidden": 16, "d_width": 8, "d_hidden": 16},
                        shape)
    z = g.sample_noise(5)
    x = g(z)
    assert x.shape == (5, *shape) and not x.requires_grad and d(x).shape == (5,)
    logits = g.logits(z)
    if shape[0] == 1:
        assert set(x.unique().tolist()) <= {0.0, 1.0}
        ref = torch.distributions.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    else:
        assert torch.allclose(x.sum(1), torch.ones(5, *shape[1:]))
        ref = torch.distributions.Categorical(logits=logits.movedim(1, -1)).log_prob(x.argmax(1)).flatten(1).sum(1)
    assert torch.allclose(g.log_prob(x, logits), ref, atol=1e-4)


def test_text_heads_and_relaxed_output():
    from gan_anneal.models import build_models

    g, d = build_models({"name": "text_resnet", "dim": 8, "blocks": 1, "relaxed": True}, (12, 32))
    probs = g(g.sample_noise(3))
    assert probs.requires_grad and torch.allclose(probs.sum(1), torch.ones(3, 32))
    x = g.sample_discrete(g.sample_noise(3))
    assert torch.allclose(x.sum(1), torch.ones(3, 32)) and d(x).shape == (3,)


def test_text_dataset_vocab_and_split(tmp_path, write_corpus):
    from gan_anneal.data import build_dataset

    t = build_dataset({"name": "text", "path": str(write_corpus(tmp_path / "c.txt")), "max_vocab": 192})
    x = t.sample(4)
    assert x.shape == (4, t.vocab_size, 32) and torch.allclose(x.sum(1), torch.ones(4, 32))
    assert all(len(s) <= 32 for s in t.decode(x))
    t.save_artifacts(tmp_path)
    vocab = json.loads((tmp_path / "vocab.json").read_text())
    assert vocab["length"] == 32 and "c" in vocab["chars"] and len(vocab["chars"]) == t.vocab_size
    assert sum(len(b) for b in t.test_batches(7)) == len(t.test)


def test_binary_mnist_threshold_and_stochastic():
    from gan_anneal.data import build_dataset

    thr = build_dataset({"name": "mnist_binary"})
    sto = build_dataset({"name": "mnist_binary", "binarize": "stochastic"})
    for t in (thr, sto):
        x = t.sample(16)
        assert x.shape == (16, 1, 28, 28) and set(x.unique().tolist()) <= {0.0, 1.0}
        assert len(t.train) == 4000 and len(t.test) == 1000
    assert 0.05 < float(thr.train.mean()) < 0.25


def test_text_run_trains_resumes_state_and_is_probed(train_run, tmp_path, write_corpus):
    from gan_anneal.experiments.critic_probe import run_probes
    from gan_anneal.results.checkpoint import load_checkpoint

    corpus = write_corpus(tmp_path / "corpus.txt")
    common = ["experiment=bgan_text", f"dataset.path={corpus}", "model.dim=16", "model.blocks=1",
              "train.batch_size=16", "bgan.samples_per_z=4", "train.log_every=4", "train.checkpoint_every=8",
              "train.eval_samples=50", "generator_update.estimator=reinforce", "train.sample_every=8"]
    outcome, run = train_run(*common, "train.steps=12")
    assert outcome == "done"
    assert (run.path / "vocab.json").is_file() and (run.samples / "final.txt").is_file()
    assert (run.samples / "step_000008.txt").is_file()
    state = load_checkpoint(run.checkpoint)
    assert math.isfinite(state["generator_update"]["log_z"])
    records = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    record = [r for r in records if "loss_g" in r][-1]  # training records (evaluation records may follow)
    assert {"ess", "weight_var", "log_z_ema"} <= set(record)

    (run.path / "eval.json").write_text(json.dumps({"fid": 1.0}))
    results = run_probes(run.path, ["js", "rkl", "w"], steps=5, batch_size=16, test_batch=8, samples_per_z=2)
    assert set(results) == {"js", "rkl", "w"}
    saved = json.loads((run.path / "eval.json").read_text())
    assert saved["fid"] == 1.0 and saved["probes"]["js"]["steps"] == 5
    assert all(math.isfinite(r["mean"]) and r["n_batches"] >= 1 for r in results.values())
    assert results["js"]["mean"] <= 2 * math.log(2) + 1e-6  # the JS bound never exceeds 2 ln 2

    outcome, resumed = train_run(*common, "train.steps=16", name="run")
    assert outcome == "done" and resumed.read_summary()["steps"] == 16


def test_discrete_mnist_and_wgan_baseline_smoke(train_run):
    small = ["model.g_width=8", "model.g_hidden=32", "model.d_width=8", "model.d_hidden=32", "train.steps=3",
             "train.batch_size=8", "train.log_every=1", "train.eval_samples=20", "train.sample_every=0"]
    outcome, _ = train_run("experiment=bgan_mnist_discrete", "divergence=bgan_rkl", "bgan.samples_per_z=3",
                           "train.g_steps=5", *small, name="bgan")  # the paper's 5 G steps per D step
    assert outcome == "done"
    outcome, run = train_run("experiment=wgan_mnist_discrete", *small, name="wgan")
    assert outcome == "done"
    assert (run.samples / "final.png").is_file()
