"""Image data sets: torchvision's on-disk formats (fabricated), the offline digit sets, DCGAN models,
the convolutional score network, the generator EMA, and a short image training run writing sample grids."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
import torch
from conftest import invoke

from gan_anneal.errors import UserError

# Fabricated data sets in torchvision's exact on-disk formats ---------------------------------------------

def write_fake_cifar10(root, per_batch: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """<root>/cifar-10-batches-py/ as torchvision expects it: pickled dicts, `data` uint8 N×3072 in R|G|B
    planes (each plane row-major 32×32), `labels`; `batches.meta` with `label_names`. Returns the arrays."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    arrays = {}
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        entry = {"batch_label": name, "data": data, "labels": rng.integers(0, 10, per_batch).tolist(),
                 "filenames": [f"{name}_{i}.png" for i in range(per_batch)]}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
        arrays[name] = data
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                                     "ship", "truck"], "num_cases_per_batch": per_batch}, f, protocol=2)
    return arrays


@pytest.fixture
def no_md5(monkeypatch):
    """The fabricated files cannot carry the real files' MD5 sums: accept them (the data files' check and the
    metadata file's check both go through torchvision.datasets.cifar.check_integrity)."""
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: True)


def test_cifar10_reads_torchvision_format(tmp_path, no_md5):
    from gan_anneal.data import build_dataset

    arrays = write_fake_cifar10(tmp_path)
    train = build_dataset({"name": "cifar10", "root": str(tmp_path), "download": False, "split": "train"})
    assert train.shape == (3, 32, 32) and len(train) == 100
    expected = np.concatenate([arrays[f"data_batch_{i}"] for i in range(1, 6)]).reshape(-1, 3, 32, 32)
    assert torch.equal(train.uint8_images(), torch.from_numpy(expected))  # channel 0 is the R plane, etc.
    test = build_dataset({"name": "cifar10", "root": str(tmp_path), "split": "test"})
    assert torch.equal(test.uint8_images(), torch.from_numpy(arrays["test_batch"].reshape(-1, 3, 32, 32)))
    x = train.sample(64)
    assert x.shape == (64, 3, 32, 32) and x.min() >= -1 and x.max() <= 1
    from gan_anneal.data.images import to_uint8

    levels = torch.unique(to_uint8(x).float() / 127.5 - 1 - x).abs().max()
    assert levels < 1e-6  # sample() and to_uint8() are exact inverses on the 256 levels


def test_missing_cifar10_names_files_and_flag(tmp_path):
    from gan_anneal.data import build_dataset

    with pytest.raises(UserError) as error:
        build_dataset({"name": "cifar10", "root": str(tmp_path / "nowhere"), "download": False})
    message = str(error.value)
    assert "data_batch_1" in message and "cifar-10-batches-py" in message and "dataset.download=true" in message


def test_missing_dataset_exit_code_2(tmp_path):

    result = invoke("train", "dataset=cifar10", f"dataset.root={tmp_path / 'empty'}", "device=cpu",
                    "train.progress=false", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2, result.output
    assert "dataset.download=true" in result.output.replace("\n", "")


def write_idx(path, array: np.ndarray) -> None:
    code = 0x08  # unsigned byte
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, code, array.ndim))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def test_mnist_reads_torchvision_format_and_pads(tmp_path):
    from gan_anneal.data import build_dataset

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8)
    for prefix, n in (("train", 30), ("t10k", 10)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images[:n])
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n))
    target = build_dataset({"name": "mnist", "root": str(tmp_path), "split": "train", "size": 32})
    held = target.uint8_images()
    assert held.shape == (30, 1, 32, 32)
    assert torch.equal(held[:, 0, 2:30, 2:30], torch.from_numpy(images)) and held[:, :, :2].sum() == 0
    with pytest.raises(UserError, match="train-images-idx3-ubyte"):
        build_dataset({"name": "mnist", "root": str(tmp_path / "none")})


def test_offline_digit_sets():
    from gan_anneal.data import build_dataset

    small = build_dataset({"name": "mnist_small", "size": 32})
    assert small.uint8_images().shape == (5000, 1, 32, 32)
    assert small.uint8_images()[:, :, :2].sum() == 0 and small.uint8_images().max() == 255
    digits = build_dataset({"name": "digits", "size": 8})
    assert digits.uint8_images().shape == (1797, 1, 8, 8) and digits.uint8_images().max() == 255
    assert build_dataset({"name": "digits", "size": 16}).shape == (1, 16, 16)
    assert not hasattr(digits, "log_prob")  # score=exact is refused; score=dsm is the data score for images


def test_image_folder(tmp_path):
    from PIL import Image

    from gan_anneal.data import build_dataset

    rng = np.random.default_rng(0)
    (tmp_path / "sub").mkdir()
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(tmp_path / "sub" / f"{i}.png")
    target = build_dataset({"name": "image_folder", "path": str(tmp_path), "size": 16})
    assert target.uint8_images().shape == (5, 3, 16, 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="No images"):
        build_dataset({"name": "image_folder", "path": str(tmp_path / "empty")})
    with pytest.raises(UserError, match="not a folder"):
        build_dataset({"name": "image_folder", "path": str(tmp_path / "missing")})


def test_save_picture_writes_a_grid(tmp_path):
    from PIL import Image

    from gan_anneal.data import build_dataset

    target = build_dataset({"name": "digits"})
    target.save_picture(target.sample(64), tmp_path / "grid.png", "title")
    image = Image.open(tmp_path / "grid.png")
    assert image.size == (8 * 34 + 2, 8 * 34 + 2)  # 8×8 digits enlarged ×4, padding 2


# Models --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,shape", [("dcgan32", (3, 32, 32)), ("dcgan64", (3, 64, 64)),
                                        ("dcgan", (1, 8, 8)), ("dcgan32", (1, 32, 32))])
def test_dcgan_shapes(name, shape):
    from gan_anneal.models import build_models

    g, d = build_models({"name": name, "z_dim": 16, "base": 8}, shape)
    x = g(g.sample_noise(5))
    assert x.shape == (5, *shape) and x.abs().max() <= 1
    assert d(x).shape == (5,)


def test_dcgan32_matches_design_widths():
    from gan_anneal.models import build_models

    g, d = build_models({"name": "dcgan32"}, (3, 32, 32))
    assert g.z_dim == 128 and g.project[0].out_features == 4 * 4 * 512
    widths = [m.out_channels for m in g.net if isinstance(m, torch.nn.ConvTranspose2d)]
    assert widths == [256, 128, 64]
    assert [m.out_channels for m in d.features if isinstance(m, torch.nn.Conv2d)] == [64, 128, 256]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())


def test_dcgan_refuses_wrong_size():
    from gan_anneal.models import build_models

    with pytest.raises(UserError, match="model=dcgan"):
        build_models({"name": "dcgan32"}, (1, 8, 8))
    with pytest.raises(UserError, match="power of two"):
        build_models({"name": "dcgan"}, (1, 28, 28))


def test_critic_norm_auto_is_batch_norm_unless_a_gradient_penalty_needs_per_sample_critics():
    from torch import nn

    from gan_anneal.models import build_models

    def norms(divergence):
        _, critic = build_models({"name": "dcgan32", "base": 8, "critic_norm": "auto"}, (1, 32, 32), divergence)
        return {type(m) for m in critic.modules() if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm))}

    assert norms({"name": "jsd"}) == {nn.BatchNorm2d}
    assert norms({"name": "wgan", "gp_weight": 10.0}) == {nn.LayerNorm}
    assert norms({"name": "bgan_js", "penalty": "roth", "penalty_weight": 5.0}) == {nn.LayerNorm}


def test_batch_norm_critic_with_a_gradient_penalty_is_refused(make_cfg):
    with pytest.raises(UserError, match="critic_norm=batch with a gradient penalty"):
        make_cfg("experiment=mnist_cpu", "divergence=wgan", "model.critic_norm=batch")
    make_cfg("experiment=mnist_cpu", "divergence=wgan")  # auto: layer norm


def test_the_online_model_score_on_images_has_its_own_conv_width(make_cfg):
    from gan_anneal.train.build import build_experiment

    cfg = make_cfg("experiment=mnist_cpu", "anneal=static", "anneal.lam=-1", "model_score.conv_hidden=4",
                   "train.steps=2", "device=cpu")
    net = build_experiment(cfg, log=lambda m: None).regularizer.model_score.net
    assert net.inp.out_channels == 4


def test_score_conv_net():
    from gan_anneal.score.dsm import build_score_network, dsm_loss

    net = build_score_network((1, 8, 8), 16, 3)
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    assert net(x).shape == x.shape
    assert torch.isfinite(dsm_loss(net, x, 0.1))
    assert build_score_network((3, 32, 32), 8, 3)(torch.zeros(2, 3, 32, 32)).shape == (2, 3, 32, 32)


def test_ema_update():
    from gan_anneal.train.ema import EMA

    model = torch.nn.Linear(2, 2)
    ema = EMA(model, 0.5)
    with torch.no_grad():
        model.weight.add_(1.0)
    before = ema.model.weight.clone()
    ema.update(model)  # first update: d = min(0.5, 2/11)
    d = 2 / 11
    assert torch.allclose(ema.model.weight, d * before + (1 - d) * model.weight)
    with pytest.raises(UserError):
        EMA(model, 1.5)


# A short image training run ------------------------------------------------------------------------------

IMAGE_RUN = ["dataset=digits", "device=cpu", "model.base=16", "train.steps=20", "train.batch_size=32",
             "train.sample_every=10", "train.checkpoint_every=10", "train.log_every=10", "train.progress=false",
             "train.eval_samples=128", "train.ema=0.9"]


def test_digits_run_writes_grids_and_ema(tmp_path):
    from gan_anneal.config import compose
    from gan_anneal.results.checkpoint import load_checkpoint
    from gan_anneal.results.rundir import RunDir
    from gan_anneal.runner import run_training

    cfg = compose(IMAGE_RUN)
    assert cfg.model.name == "dcgan"  # the data set picks its model
    assert run_training(cfg, tmp_path / "run") == "done"
    run = RunDir(tmp_path / "run")
    assert (run.samples / "step_000010.png").is_file() and (run.samples / "final.png").is_file()
    summary = run.read_summary()
    assert summary["status"] == "done" and 0 < summary["metrics"]["diversity_ratio"]
    state = load_checkpoint(run.checkpoint)
    assert state["ema"]["updates"] == 20 and set(state["ema"]["model"]) == set(state["generator"])


def test_image_run_resumes_with_ema(tmp_path):
    from gan_anneal.config import compose
    from gan_anneal.results.checkpoint import load_checkpoint
    from gan_anneal.runner import run_training

    cfg = compose(IMAGE_RUN)
    assert run_training(cfg, tmp_path / "full") == "done"
    assert run_training(cfg, tmp_path / "part", should_stop=lambda step: step == 10) == "interrupted"
    assert run_training(cfg, tmp_path / "part") == "done"
    full, part = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt"), \
        load_checkpoint(tmp_path / "part" / "checkpoints" / "last.pt")
    for key in full["ema"]["model"]:
        assert torch.equal(full["ema"]["model"][key], part["ema"]["model"][key]), key
    for key in full["generator"]:
        assert torch.equal(full["generator"][key], part["generator"][key]), key


def test_mnist_small_short_run(tmp_path):
    from gan_anneal.config import compose
    from gan_anneal.runner import run_training

    cfg = compose(["dataset=mnist_small", "device=cpu", "model.base=8", "model.z_dim=16", "train.steps=3",
                   "train.batch_size=8", "train.sample_every=2", "train.progress=false", "train.eval_samples=64"])
    assert cfg.model.name == "dcgan32"
    assert run_training(cfg, tmp_path / "run") == "done"
    assert (tmp_path / "run" / "samples" / "step_000002.png").is_file()
