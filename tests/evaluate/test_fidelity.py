"""`ganneal evaluate` and gan_anneal/evaluate/ (options, inputs, fidelity, run_eval), offline: test-only feature extractors
registered with torch-fidelity, FID against an independent NumPy/SciPy computation, IS of a uniform
classifier, the reference-statistics cache key, missing weights, and the whole path on a trained run."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from conftest import invoke

from gan_anneal.errors import UserError
from gan_anneal.evaluate import extractors, fidelity, inputs, run_eval
from gan_anneal.evaluate.options import options_from_config, resolve_options

# Test-only extractors: features are the pixels themselves, or constant logits --------------------------

def _register(name: str, cls) -> str:
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    if name not in FEATURE_EXTRACTORS_REGISTRY:  # torch-fidelity's registry is global and refuses a second call
        register_feature_extractor(name, cls)
    return name


def _pixel_extractor() -> str:
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase

    class Pixels(FeatureExtractorBase):
        """Features = the uint8 pixels as floats; logits = constant (a classifier that is uniform on everything)."""

        def __init__(self, name, features_list, **kwargs):
            super().__init__(name, features_list)

        @staticmethod
        def get_provided_features_list():
            return "pixels", "uniform_logits", "class_logits"

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return {"isc": "uniform_logits", "fid": "pixels", "kid": "pixels", "prc": "pixels"}[metric]

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return None

        def forward(self, x):
            pixels = x.flatten(1).double()
            out = {"pixels": pixels, "uniform_logits": torch.zeros(len(x), 10, dtype=torch.float64),
                   # a sure classifier: class = first pixel's value mod 4
                   "class_logits": 50.0 * torch.nn.functional.one_hot(x[:, 0, 0, 0].long() % 4, 4).double()}
            return tuple(out[name] for name in self.features_list)

    return _register("test-pixels", Pixels)


def gaussian_images(n: int, mean: float, scale: float, seed: int) -> torch.Tensor:
    """uint8 images 3×4×4 whose 48 pixels are correlated Gaussians (clipped to 0…255)."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(48, 48)) * scale / 7
    x = mean + rng.normal(size=(n, 48)) @ mixing
    return torch.from_numpy(np.clip(np.round(x), 0, 255).astype(np.uint8).reshape(n, 3, 4, 4))


def numpy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (independent of torch-fidelity)."""
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_matches_numpy_scipy_on_gaussian_features():
    name = _pixel_extractor()
    real, fake = gaussian_images(2000, 128, 25, seed=1), gaussian_images(1500, 120, 30, seed=2)
    ours = fidelity.compute_metrics(inputs.uint8_dataset(fake), inputs.uint8_dataset(real), ["fid"],
                                    extractor=name, weights_path=None, batch_size=256)
    expected = numpy_fid(fake.flatten(1).double().numpy(), real.flatten(1).double().numpy())
    assert expected > 1.0
    assert ours["fid"] == pytest.approx(expected, rel=1e-5)
    same = fidelity.compute_metrics(inputs.uint8_dataset(real), inputs.uint8_dataset(real), ["fid"],
                                    extractor=name, weights_path=None)
    assert abs(same["fid"]) < 1e-6


def test_inception_score_of_uniform_classifier_is_one():
    name = _pixel_extractor()
    images = gaussian_images(500, 128, 40, seed=3)
    result = fidelity.compute_metrics(inputs.uint8_dataset(images), None, ["is"], extractor=name,
                                      weights_path=None, is_splits=10)
    assert result["is_mean"] == pytest.approx(1.0, abs=1e-12) and result["is_std"] == pytest.approx(0, abs=1e-12)
    # and a sure classifier over 4 balanced classes scores 4 (the other end of the scale)
    images = torch.zeros(400, 3, 2, 2, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(400) % 4
    import torch_fidelity

    raw = torch_fidelity.calculate_metrics(input1=inputs.uint8_dataset(images), isc=True, feature_extractor=name,
                                           feature_layer_isc="class_logits", isc_splits=1, cuda=False,
                                           save_cpu_ram=True, verbose=False, cache=False)
    assert raw["inception_score_mean"] == pytest.approx(4.0, rel=1e-6)


def test_grey_images_become_three_channels():
    data = inputs.uint8_dataset(torch.arange(2 * 4, dtype=torch.uint8).reshape(2, 1, 2, 2))
    assert data[1].shape == (3, 2, 2) and torch.equal(data[1][0], data[1][2]) and data[1].dtype == torch.uint8


def test_stand_in_registration_is_idempotent():
    assert fidelity.register_extractors() == fidelity.register_extractors() == extractors.TINY


# Inception weights: found, or a clear and fast failure ------------------------------------------------

@pytest.fixture
def no_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(extractors.WEIGHTS_ENV, raising=False)


def test_missing_weights_name_the_file(no_weights, tmp_path):
    with pytest.raises(UserError) as error:
        extractors.resolve_inception_weights(None, None)
    message = str(error.value)
    assert extractors.INCEPTION_FILE in message
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints") in message and "--inception-weights" in message
    assert extractors.resolve_inception_weights(None, None, download=True) is None


def test_weights_found_in_order(no_weights, tmp_path, monkeypatch):
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    import torch

    torch.save({"w": torch.zeros(1)}, hub / extractors.INCEPTION_FILE)
    assert extractors.resolve_inception_weights(None, None) == hub / extractors.INCEPTION_FILE
    env_file = tmp_path / "env.pth"
    torch.save({"w": torch.ones(1)}, env_file)
    monkeypatch.setenv(extractors.WEIGHTS_ENV, str(env_file))
    assert extractors.resolve_inception_weights(None, None) == env_file
    assert extractors.resolve_inception_weights(str(hub / extractors.INCEPTION_FILE), None) == hub / extractors.INCEPTION_FILE
    with pytest.raises(UserError, match="not a file"):
        extractors.resolve_inception_weights(str(tmp_path / "absent.pth"), None)


@pytest.mark.parametrize("content,needle", [(b"", "empty (0 bytes)"), (bytes(range(256)) * 4, "not a file written by torch.save")])
def test_broken_weights_files_are_named_with_the_expected_file(no_weights, tmp_path, content, needle):
    broken = tmp_path / "weights.pth"
    broken.write_bytes(content)
    with pytest.raises(UserError) as error:
        extractors.resolve_inception_weights(str(broken), None)
    message = str(error.value)
    assert needle in message and extractors.INCEPTION_FILE in message and extractors.file_sha256(broken)[:16] in message
    import torch.hub

    assert extractors.torch_hub_dir() == __import__("pathlib").Path(torch.hub.get_dir())


# The whole path on a trained run ----------------------------------------------------------------------

RUN = ["dataset=digits", "device=cpu", "model.base=16", "train.steps=12", "train.batch_size=32",
       "train.sample_every=6", "train.checkpoint_every=6", "train.log_every=6", "train.progress=false",
       "train.eval_samples=128", "train.ema=0.9"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from gan_anneal.config import compose
    from gan_anneal.runner import run_training

    path = tmp_path_factory.mktemp("image_run") / "run"
    assert run_training(compose(RUN), path) == "done"
    return path


def test_evaluate_end_to_end_with_stand_in(trained_run, tmp_path):
    cache = tmp_path / "cache"
    result = invoke("evaluate", str(trained_run), "--metrics", "is,fid,kid,prc", "--num-samples", "200", "--extractor",
                    "ganneal-tiny", "--cache-dir", str(cache), "--batch-size", "50")
    assert result.returncode == 0, result.output
    record = json.loads((trained_run / "eval.json").read_text())["fidelity"]
    metrics, protocol = record["metrics"], record["protocol"]
    assert set(metrics) == {"is_mean", "is_std", "fid", "kid_mean", "kid_std", "precision", "recall", "f_score"}
    assert 0 <= metrics["precision"] <= 1 and 0 <= metrics["recall"] <= 1 and protocol["prc_neighborhood"] == 3
    assert all(np.isfinite(v) for v in metrics.values()) and metrics["is_mean"] >= 1 and metrics["fid"] > 0
    assert protocol["num_samples"] == 200 and protocol["generator"] == "ema" and protocol["is_splits"] == 10
    assert protocol["reference"] | {"pixels_sha256": None} == {
        "dataset": "digits", "split": "train", "size": 1797, "pixels_sha256": None,
        "preprocessing": "sklearn load_digits, 8x8 grey, levels x255/16"}
    assert protocol["feature_extractor"]["name"] == "ganneal-tiny" and protocol["feature_extractor"]["stand_in"]
    assert len(protocol["feature_extractor"]["weights_sha256"]) == 64
    assert protocol["torch_fidelity"] and protocol["reference_cache"]["hit"] is False

    again = invoke("evaluate", str(trained_run), "--metrics", "fid", "-n", "200", "--extractor", "ganneal-tiny",
                   "--cache-dir", str(cache), "--generator", "raw")
    assert again.returncode == 0, again.output
    second = json.loads((trained_run / "eval.json").read_text())["fidelity"]
    assert second["protocol"]["reference_cache"] == {**protocol["reference_cache"], "hit": True}
    assert second["protocol"]["generator"] == "raw"


def test_evaluate_equals_torch_fidelity_on_the_same_samples(trained_run, tmp_path):
    """The documented check, with the stand-in: generate the same samples, call torch-fidelity directly."""
    import torch_fidelity
    from omegaconf import OmegaConf

    from gan_anneal.data.images import digits

    options = resolve_options(trained_run, metrics="is,fid", num_samples=300, extractor=extractors.TINY,
                                       cache_dir=str(tmp_path / "c"), generator="raw")
    ours = run_eval.evaluate_run(trained_run, options, log=lambda m: None)["metrics"]

    cfg = OmegaConf.load(trained_run / "config.yaml")
    generator, _, _ = run_eval.load_generator(trained_run, cfg, (1, 8, 8), torch.device("cpu"), "raw")
    wrapped = inputs.generator_input(generator, options.seed)
    samples = torch.cat([wrapped(torch.zeros(n, 1)) for n in (64, 64, 64, 64, 44)])  # torch-fidelity's batches
    direct = torch_fidelity.calculate_metrics(
        input1=inputs.uint8_dataset(samples), input2=inputs.uint8_dataset(digits().uint8_images()), isc=True,
        fid=True, feature_extractor=extractors.TINY, cuda=False, save_cpu_ram=True, verbose=False, cache=False,
        rng_seed=options.seed)
    assert ours["is_mean"] == pytest.approx(direct["inception_score_mean"], rel=1e-6)
    assert ours["fid"] == pytest.approx(direct["frechet_inception_distance"], rel=1e-6)


def test_cache_key_changes_with_weights_and_data(trained_run, tmp_path):
    from gan_anneal.evaluate.extractors import _tiny_extractor_class

    def key(**kw):
        options = resolve_options(trained_run, metrics="fid", num_samples=100, extractor=extractors.TINY,
                                           cache_dir=str(tmp_path / "c"), **kw)
        return run_eval.evaluate_run(trained_run, options, log=lambda m: None)["protocol"]["reference_cache"]

    base = key()
    assert key()["key"] == base["key"]
    weights = _tiny_extractor_class()(extractors.TINY, ["features"]).state_dict()
    weights["fc.bias"] += 1.0
    torch.save(weights, tmp_path / "tiny.pth")
    other_weights = key(inception_weights=str(tmp_path / "tiny.pth"))
    assert other_weights["key"] != base["key"] and other_weights["hit"] is False
    fewer = key(reference_count=1000)
    assert fewer["key"] not in (base["key"], other_weights["key"])

    # the data themselves: the same config, different pixels
    from gan_anneal.data import images

    original = images.digits

    def brighter(size=8, split="train"):
        target = original(size, split)
        target.images[0, 0, 0, 0] ^= 1
        return target

    from gan_anneal.data import DATASETS

    try:
        DATASETS._items["digits"] = brighter
        changed = key()
    finally:
        DATASETS._items["digits"] = original
    assert changed["key"] != base["key"]


def test_evaluate_without_weights_fails_fast_with_exit_2(trained_run, no_weights):
    result = invoke("evaluate", str(trained_run), "--metrics", "is,fid")
    assert result.returncode == 2
    assert extractors.INCEPTION_FILE in result.output.replace("\n", "")


def test_evaluate_bad_input_exit_2(trained_run, tmp_path):
    assert invoke("evaluate", str(tmp_path / "not_a_run")).returncode == 2
    assert invoke("evaluate", str(trained_run), "--metrics", "is,precision", "--extractor", "ganneal-tiny").returncode == 2
    assert invoke("evaluate", str(trained_run), "--extractor", "vgg16").returncode == 2
    # --probe: an unknown measure (critic_probe present) or no critic_probe module at all: both are exit 2
    assert invoke("evaluate", str(trained_run), "--probe", "nonsense", "--probe-steps", "5").returncode == 2


def test_evaluate_missing_dataset_exit_2(trained_run, tmp_path):
    import shutil

    from omegaconf import OmegaConf

    run = tmp_path / "moved"
    shutil.copytree(trained_run, run)
    cfg = OmegaConf.load(run / "config.yaml")
    cfg.dataset = {"name": "cifar10", "root": str(tmp_path / "gone"), "download": False, "split": "train",
                   "max_images": None}
    OmegaConf.save(cfg, run / "config.yaml")
    result = invoke("evaluate", str(run), "--extractor", "ganneal-tiny", "-n", "50", "--cache-dir", str(tmp_path / "c"))
    assert result.returncode == 2
    assert "dataset.download=true" in result.output.replace("\n", "")


@pytest.mark.slow
def test_real_inception_matches_torch_fidelity_directly(tmp_path):
    """With the real Inception weights and CIFAR-10 on disk, `ganneal evaluate` on a tiny run gives the same IS
    and FID as torch-fidelity called directly on the same samples. Skipped unless both are present."""
    weights = os.environ.get(extractors.WEIGHTS_ENV) or str(extractors.torch_hub_dir() / "checkpoints" /
                                                          extractors.INCEPTION_FILE)
    root = os.path.expanduser(os.environ.get("GANNEAL_DATA", "~/data"))
    if not os.path.isfile(weights):
        pytest.skip(f"needs {extractors.INCEPTION_FILE} (set {extractors.WEIGHTS_ENV} or place it in torch's hub cache)")
    if not os.path.isfile(os.path.join(root, "cifar-10-batches-py", "data_batch_1")):
        pytest.skip(f"needs CIFAR-10 in {root}/cifar-10-batches-py (set GANNEAL_DATA)")
    import torch_fidelity

    from gan_anneal.config import compose
    from gan_anneal.data.images import cifar10
    from gan_anneal.runner import run_training

    run = tmp_path / "run"
    assert run_training(compose(["dataset=cifar10", f"dataset.root={root}", "device=cpu", "train.steps=2",
                                 "train.progress=false", "train.eval_samples=64"]), run) == "done"
    options = resolve_options(run, metrics="is,fid", num_samples=500, inception_weights=weights,
                                       reference_count=2000, cache_dir=str(tmp_path / "c"))
    ours = run_eval.evaluate_run(run, options, log=lambda m: None)["metrics"]
    from omegaconf import OmegaConf

    generator, _, _ = run_eval.load_generator(run, OmegaConf.load(run / "config.yaml"), (3, 32, 32),
                                              torch.device("cpu"), "auto")
    wrapped = inputs.generator_input(generator, options.seed)
    samples = torch.cat([wrapped(torch.zeros(n, 1)) for n in [64] * 7 + [52]])
    direct = torch_fidelity.calculate_metrics(
        input1=inputs.uint8_dataset(samples), input2=inputs.uint8_dataset(cifar10(root).uint8_images()[:2000]),
        isc=True, fid=True, feature_extractor_weights_path=weights, cuda=torch.cuda.is_available(),
        save_cpu_ram=True, verbose=False, cache=False, rng_seed=options.seed)
    assert ours["is_mean"] == pytest.approx(direct["inception_score_mean"], rel=1e-5)
    assert ours["fid"] == pytest.approx(direct["frechet_inception_distance"], rel=1e-5)


def test_prc_with_fewer_samples_than_k_plus_one_exits_2_naming_the_minimum(trained_run):
    result = invoke("evaluate", str(trained_run), "--metrics", "prc", "-n", "3", "--extractor", "ganneal-tiny")
    assert result.returncode == 2 and "at least 4 samples" in " ".join(result.output.split())


def _stub_run(path, dataset: dict):
    from omegaconf import OmegaConf

    (path / "checkpoints").mkdir(parents=True)
    (path / "checkpoints" / "last.pt").write_bytes(b"not read: the refusal comes first")
    OmegaConf.save(OmegaConf.create({"dataset": dataset}), path / "config.yaml")
    (path / "summary.json").write_text('{"status": "done"}')
    return path


def test_prc_on_a_toy_run_exits_2_naming_what_applies_there(tmp_path):
    run = _stub_run(tmp_path / "toy", {"name": "ring8"})
    result = invoke("evaluate", str(run), "--metrics", "prc", "-n", "100")
    text = " ".join(result.output.split())
    assert result.returncode == 2 and "precision/recall (prc) compare images" in text and "--probe" in text


def test_digit_data_sets_evaluate_with_the_digit_classifier_unless_told_otherwise(tmp_path, no_weights):
    from gan_anneal.config import compose

    assert compose(["dataset=mnist_small"]).evaluate.extractor == extractors.MNIST
    assert compose(["dataset=cifar10"]).evaluate.extractor == extractors.INCEPTION
    assert compose(["dataset=mnist_small", "evaluate.extractor=ganneal-tiny"]).evaluate.extractor == extractors.TINY
    auto = {"evaluate": {"extractor": "auto", "metrics": "is"}}
    pick = lambda dataset: options_from_config({**auto, "dataset": dataset}, tmp_path).extractor  # noqa: E731
    assert pick({"name": "mnist_small", "size": 32}) == extractors.MNIST
    assert pick({"name": "image_folder", "channels": 1, "size": 28}) == extractors.MNIST
    with pytest.raises(UserError, match="Inception-v3 weights"):  # auto chose Inception, whose weights are absent
        pick({"name": "image_folder", "channels": 1, "size": 64})
