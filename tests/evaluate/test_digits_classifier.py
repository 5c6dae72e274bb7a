"""`--extractor ganneal-mnist`: the shipped digit classifier and IS / FID made with its features.

Each check can fail: held-out accuracy of the shipped weights; FID of real held-out digits against the
training digits far below that of noise; FID growing with added pixel noise; IS of real digits near the
class count and of one repeated digit near 1; `ganneal evaluate` equal to torch-fidelity called directly;
the training command deterministic; bad input (wrong images, broken weights) exit 2 before any generation.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import invoke

from gan_anneal.evaluate import digits_classifier as dc
from gan_anneal.evaluate import extractors, fidelity, inputs, run_eval


@pytest.fixture(scope="module")
def split():
    return dc.digit_split()


def _metrics(images, reference, metrics, cache=None):
    return fidelity.compute_metrics(inputs.uint8_dataset(images), inputs.uint8_dataset(reference)
                                    if reference is not None else None, metrics, extractor=extractors.MNIST,
                                    weights_path=dc.WEIGHTS, batch_size=500, cache_root=cache,
                                    input2_cache_name="train-digits" if cache else None)


def test_shipped_weights_classify_held_out_digits(split):
    _, _, x_held, y_held = split
    state = torch.load(dc.WEIGHTS, map_location="cpu", weights_only=True)
    measured = dc.accuracy(dc.load_classifier(), x_held, y_held)
    assert measured >= 0.97
    assert measured == pytest.approx(state["held_out_accuracy"])  # the record beside the weights is this file's
    assert state["split"]["held_out"] == len(x_held) == 1000 and dc.WEIGHTS.stat().st_size <= 1_000_000


def test_fid_separates_real_digits_from_noise_and_grows_with_noise(split, tmp_path):
    x_train, _, x_held, _ = split
    x_held = x_held[:500]  # enough for FID's 128 features, half the extraction time
    real = _metrics(x_held, x_train, ["fid"], tmp_path)["fid"]  # the training digits' statistics, cached once
    noise = _metrics(torch.randint(0, 256, x_held.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0)),
                     x_train, ["fid"], tmp_path)["fid"]
    assert real * 20 < noise
    generator = torch.Generator().manual_seed(1)
    noisy = []
    for sigma in (0.1, 0.2, 0.4):
        x = x_held.float() + sigma * 255 * torch.randn(x_held.shape, generator=generator)
        noisy.append(_metrics(x.round().clamp(0, 255).to(torch.uint8), x_train, ["fid"], tmp_path)["fid"])
    assert real < noisy[0] < noisy[1] < noisy[2]


def test_inception_score_of_real_and_of_one_repeated_digit(split):
    _, _, x_held, _ = split
    assert _metrics(x_held, None, ["is"])["is_mean"] >= 8
    assert _metrics(x_held[:1].expand(500, -1, -1, -1).contiguous(), None, ["is"])["is_mean"] == pytest.approx(1, abs=0.05)


def test_the_training_command_is_deterministic():
    torch.set_num_threads(1)
    first, record = dc.train_classifier(epochs=1, limit=128, log=lambda m: None)
    second, _ = dc.train_classifier(epochs=1, limit=128, log=lambda m: None)
    assert extractors.state_dict_sha256(first) == extractors.state_dict_sha256(second)
    assert record["split"]["held_out"] == 1000 and "digits_classifier" in record["command"]


RUN = ["dataset=mnist_small", "device=cpu", "model.base=8", "train.steps=6", "train.batch_size=16",
       "train.sample_every=0", "train.checkpoint_every=6", "train.log_every=6", "train.progress=false",
       "train.eval_samples=64"]


@pytest.fixture(scope="module")
def digit_run(tmp_path_factory):
    from gan_anneal.config import compose
    from gan_anneal.runner import run_training

    path = tmp_path_factory.mktemp("digit_run") / "run"
    assert run_training(compose(RUN), path) == "done"
    return path


def test_evaluate_with_the_digit_classifier_equals_torch_fidelity(digit_run, tmp_path):
    import torch_fidelity
    from omegaconf import OmegaConf

    from gan_anneal.data.images import mnist_small

    result = invoke("evaluate", str(digit_run), "--metrics", "is,fid", "-n", "300", "--extractor", "ganneal-mnist",
                    "--generator", "raw", "--cache-dir", str(tmp_path / "c"))
    assert result.returncode == 0, result.output
    record = json.loads((digit_run / "eval.json").read_text())["fidelity"]
    extractor = record["protocol"]["feature_extractor"]
    assert extractor == {"name": "ganneal-mnist", "weights": str(dc.WEIGHTS), "stand_in": False,
                         "weights_sha256": extractors.file_sha256(dc.WEIGHTS)}

    cfg = OmegaConf.load(digit_run / "config.yaml")
    generator, _, _ = run_eval.load_generator(digit_run, cfg, (1, 32, 32), torch.device("cpu"), "raw")
    raw = torch_fidelity.calculate_metrics(
        input1=inputs.generator_input(generator, 2020), input1_model_num_samples=300,
        input2=inputs.uint8_dataset(mnist_small().uint8_images()), isc=True, fid=True,
        feature_extractor="ganneal-mnist", feature_extractor_weights_path=str(dc.WEIGHTS), cuda=False,
        save_cpu_ram=True, verbose=False, cache=False, batch_size=64, rng_seed=2020)
    assert record["metrics"]["fid"] == pytest.approx(raw["frechet_inception_distance"], rel=1e-5)
    assert record["metrics"]["is_mean"] == pytest.approx(raw["inception_score_mean"], rel=1e-5)


def test_digit_classifier_on_colour_images_is_refused_naming_what_fits(tmp_path):
    from omegaconf import OmegaConf

    run = tmp_path / "colour"
    run.mkdir()
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.pt").write_bytes(b"not read: the refusal comes first")
    OmegaConf.save(OmegaConf.create({"dataset": {"name": "cifar10", "root": "~/data"}}), run / "config.yaml")
    (run / "summary.json").write_text('{"status": "done"}')
    result = invoke("evaluate", str(run), "--extractor", "ganneal-mnist", "-n", "10")
    assert result.returncode == 2, result.output
    text = " ".join(result.output.split())
    assert "Extractors that fit: inception-v3-compat, ganneal-tiny" in text


@pytest.mark.parametrize("content", [None, b"", b"PK\x03\x04 truncated zip"])
def test_missing_or_corrupt_digit_weights_name_the_rebuild_command(digit_run, tmp_path, monkeypatch, content):
    weights = tmp_path / "ganneal_mnist.pt"
    if content is not None:
        weights.write_bytes(content)
    from gan_anneal.evaluate import extractors

    monkeypatch.setattr(extractors, "DIGIT_WEIGHTS", weights)
    result = invoke("evaluate", str(digit_run), "--extractor", "ganneal-mnist", "-n", "10", "--cache-dir", str(tmp_path / "c"))
    assert result.returncode == 2, result.output
    assert "python -m gan_anneal.evaluate.digits_classifier" in " ".join(result.output.split())


# Precision and recall (Kynkäänniemi et al., 2019, k = 3) on the classifier's features. Each check can fail if
# torch-fidelity's two inputs were swapped (its issue 58): one repeated digit is inside the real manifold
# (precision high) but covers almost none of it (recall near 0); swapped, the two numbers trade places.

def test_precision_and_recall_of_one_repeated_digit(split):
    x_train, _, x_held, _ = split
    repeated = x_held[:1].expand(1000, -1, -1, -1).contiguous()
    prc = _metrics(repeated, x_train[:1000], ["prc"])
    assert prc["precision"] >= 0.9 and prc["recall"] <= 0.05


def test_precision_and_recall_of_held_out_real_digits(split):
    x_train, _, x_held, _ = split
    prc = _metrics(x_held, x_train[:1000], ["prc"])
    assert prc["precision"] >= 0.7 and prc["recall"] >= 0.7


def test_precision_falls_with_heavy_pixel_noise(split):
    x_train, _, x_held, _ = split
    noisy = x_held.float() + 0.6 * 255 * torch.randn(x_held.shape, generator=torch.Generator().manual_seed(0))
    prc = _metrics(noisy.round().clamp(0, 255).to(torch.uint8), x_train[:1000], ["prc"])
    clean = _metrics(x_held, x_train[:1000], ["prc"])
    assert prc["precision"] <= 0.3 < clean["precision"]


def test_precision_and_recall_match_a_direct_k_nearest_neighbour_count(split):
    """The definition computed here from the extractor's features, independently of torch-fidelity's code."""
    x_train, _, x_held, _ = split
    fake, real = x_held[:300], x_train[:400]
    extractor = dc.extractor_class()("ganneal-mnist", ["features"], feature_extractor_weights_path=str(dc.WEIGHTS))
    with torch.no_grad():
        f_fake, f_real = (extractor(x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x)[0] for x in (fake, real))
    f_fake, f_real = f_fake.double(), f_real.double()

    def inside(points, support):  # is each point within some support sample's k-th neighbour radius?
        radius = torch.cdist(support, support).kthvalue(4, dim=1).values  # k = 3, the sample itself excluded
        return (torch.cdist(points, support) <= radius[None, :]).any(1).double().mean().item()

    prc = _metrics(fake, real, ["prc"])
    assert prc["precision"] == pytest.approx(inside(f_fake, f_real), abs=0.01)
    assert prc["recall"] == pytest.approx(inside(f_real, f_fake), abs=0.01)
