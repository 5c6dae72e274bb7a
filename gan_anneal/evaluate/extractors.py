"""The feature extractors ganneal evaluates with, and their weights: which exist, which fit a run's images, where
the Inception weights are found (or a clear failure, before anything heavy is imported), the digit classifier's
weights, and the torch-fidelity interface ganneal's own extractors share. No torch at import: bad input fails fast.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

from gan_anneal.errors import UserError
from gan_anneal.kinds import GREY_IMAGES

INCEPTION = "inception-v3-compat"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
TINY = "ganneal-tiny"
AUTO = "auto"  # evaluate.extractor's default: picked by the data set (extractor_for)
MNIST = "ganneal-mnist"  # evaluate/digits_classifier.py; the facts below need no torch (bad input fails fast)
DIGIT_WEIGHTS = Path(__file__).parent / "weights" / "ganneal_mnist.pt"
DIGIT_REBUILD = "python -m gan_anneal.evaluate.digits_classifier"  # --out defaults to DIGIT_WEIGHTS, the shipped file
DIGIT_SIDES = (28, 32)  # image sides ganneal-mnist takes (28 is padded to 32)
EXTRACTORS = {INCEPTION: "the standard IS/FID network, any image", MNIST: "a digit classifier, grey 28x28 or 32x32 "
              "digits (mnist_small, mnist)", TINY: "an offline stand-in for tests and smoke runs, any image"}
WEIGHTS_ENV = "GANNEAL_INCEPTION_WEIGHTS"


# Inception weights: found, or a clear failure, before anything heavy is imported ----------------------

def torch_hub_dir() -> Path:
    """torch.hub.get_dir() without importing torch: $TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")), "torch")
    return Path(os.path.expanduser(torch_home)) / "hub"


def resolve_inception_weights(cli_path: str | None, config_path: str | None, download: bool = False) -> Path | None:
    """The Inception weights file to use, in order: option, config, environment, torch's hub cache.

    Returns None only when `download` is true and no file exists (torch-fidelity then downloads it into the
    hub cache). A named file that does not exist is an error, not a fallback."""
    for source, value in (("--inception-weights", cli_path), ("evaluate.inception_weights", config_path),
                          (f"${WEIGHTS_ENV}", os.environ.get(WEIGHTS_ENV))):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise UserError(f"{source} names {path}, which is not a file. It should be torch-fidelity's "
                                f"Inception-v3 weights, {INCEPTION_FILE} (about 91 MB).")
            check_inception_file(path, source)
            return path
    cached = torch_hub_dir() / "checkpoints" / INCEPTION_FILE
    if cached.is_file():
        check_inception_file(cached, "torch's hub cache")
        return cached
    if download:
        return None
    raise UserError(
        f"IS, FID and KID need torch-fidelity's Inception-v3 weights, {INCEPTION_FILE} (about 91 MB), and none "
        f"was found: no --inception-weights, no evaluate.inception_weights in the run's config, no "
        f"${WEIGHTS_ENV}, and not in torch's hub cache ({cached}). Put the file at {cached} (or anywhere, and "
        f"pass --inception-weights PATH or set ${WEIGHTS_ENV}); on a machine with internet access, "
        f"--download-weights lets torch-fidelity fetch it there. For an offline smoke test only, "
        f"--extractor {TINY} uses a stand-in network whose numbers are not Inception scores.")


INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
TORCH_LEGACY_MAGIC = bytes.fromhex("80028a0a6cfc9c46f9206aa85019")  # torch.save before the zip format


def weights_problem(path: Path) -> str | None:
    """Why `path` cannot be a torch weights file (empty, truncated, not a torch.save archive), or None."""

    size = path.stat().st_size
    if size == 0:
        return "it is empty (0 bytes): an interrupted download?"
    if zipfile.is_zipfile(path):
        return None
    with open(path, "rb") as f:
        head = f.read(len(TORCH_LEGACY_MAGIC))
    if head == TORCH_LEGACY_MAGIC:
        return None
    return f"it is not a file written by torch.save ({size:,} bytes, neither a zip archive nor a legacy torch pickle)"


def check_inception_file(path: Path, source: str) -> None:
    problem = weights_problem(path)
    if problem:
        raise UserError(f"{source} names {path}, but {problem}. The file expected is torch-fidelity's Inception-v3 "
                        f"weights, {INCEPTION_FILE} (about 91 MB; the hex in its name is the start of its sha256, "
                        f"torch hub's convention), from {INCEPTION_URL}. This file's sha256 is "
                        f"{file_sha256(path)[:16]}….")


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _grey_side(dataset: dict) -> tuple[bool, int]:
    name = str(dataset.get("name"))
    grey = name in GREY_IMAGES or (name == "image_folder" and int(dataset.get("channels", 3)) == 1)
    return grey, int(dataset.get("size", 8 if name == "digits" else 32))


def extractors_that_fit(dataset: dict) -> list[str]:
    """The extractors for a run's images, from its dataset config (no torch): ganneal-mnist for grey digits of a
    side it takes (28 or 32), the others for any image."""
    grey, side = _grey_side(dataset)
    return [e for e in EXTRACTORS if e != MNIST or (grey and side in DIGIT_SIDES)]


def extractor_for(dataset: dict) -> str:
    """evaluate.extractor=auto: the digit classifier for grey digits it takes, Inception for anything else."""
    return MNIST if MNIST in extractors_that_fit(dataset) else INCEPTION


def check_extractor(extractor: str, dataset: dict, run_dir) -> None:
    if extractor not in EXTRACTORS:
        raise UserError(f"--extractor {extractor!r} is not one ganneal knows. Valid: "
                        + "; ".join(f"{name} ({what})" for name, what in EXTRACTORS.items()) + ".")
    fits = extractors_that_fit(dataset)
    if extractor not in fits:
        grey, side = _grey_side(dataset)
        raise UserError(f"--extractor {extractor} is {EXTRACTORS[extractor]}, and {run_dir} trained on "
                        f"dataset={dataset.get('name')} ({'grey' if grey else 'colour'} images, side {side}). "
                        f"Extractors that fit: {', '.join(fits)}.")


def unusable_digit_weights(path: Path, problem: str) -> UserError:
    return UserError(f"The {MNIST} weights {path} {problem}. Rebuild them (about 5 minutes on one CPU core): "
                     f"{DIGIT_REBUILD}")


def digit_weights(path: Path | None = None) -> Path:
    """The ganneal-mnist weights (the shipped file unless given), checked without torch; a missing or corrupt file
    names the rebuild command."""
    path = Path(path or DIGIT_WEIGHTS)
    if not path.is_file():
        raise unusable_digit_weights(path, "are missing")
    problem = weights_problem(path)
    if problem:
        raise unusable_digit_weights(path, f"are unusable: {problem}")
    return path


def features_and_logits_base():
    """torch-fidelity's extractor interface for ganneal's extractors: `features` (FID, KID, PRC) and `logits` (IS)
    from uint8 (B, 3, H, W); a subclass defines features_and_logits(x)."""
    import torch  # deferred: loads torch; this module stays torch-free at import

    # deferred: torch-fidelity is slow to import and only this path needs it
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase

    class FeaturesAndLogits(FeatureExtractorBase):
        @staticmethod
        def get_provided_features_list():
            return "features", "logits"

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return {"isc": "logits", "fid": "features", "kid": "features", "prc": "features"}[metric]

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return torch.zeros(1, 3, 32, 32, dtype=torch.uint8)

        def forward(self, x):
            features, logits = self.features_and_logits(x)
            out = {"features": features, "logits": logits}
            return tuple(out[name] for name in self.features_list)

    return FeaturesAndLogits


def _tiny_extractor_class():
    import torch  # deferred: loads torch; this module stays torch-free at import
    import torch.nn.functional as F  # deferred: loads torch; this module stays torch-free at import
    from torch import nn  # deferred: loads torch; this module stays torch-free at import

    class TinyExtractor(features_and_logits_base()):
        """uint8 (B, 3, H, W) → 32×32 → three random 3×3 convs (Kaiming, seed 0) → 64 features → 10 logits.

        Weights come from a fixed seed, or from `feature_extractor_weights_path` (a state_dict) if given."""

        def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
            super().__init__(name, features_list)
            self.convs = nn.ModuleList([nn.Conv2d(3, 16, 3, stride=2, padding=1),
                                        nn.Conv2d(16, 32, 3, stride=2, padding=1),
                                        nn.Conv2d(32, 64, 3, stride=1, padding=1)])
            self.fc = nn.Linear(64, 10)
            generator = torch.Generator().manual_seed(0)
            with torch.no_grad():
                for module, gain in ((self.convs[0], 2.0), (self.convs[1], 2.0), (self.convs[2], 2.0), (self.fc, 400.0)):
                    fan_in = module.weight[0].numel()  # Kaiming; the logits are scaled up so that IS varies
                    module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (gain / fan_in) ** 0.5)
                    module.bias.zero_()
            if feature_extractor_weights_path:
                self.load_state_dict(torch.load(feature_extractor_weights_path, map_location="cpu",
                                                weights_only=True))

        def features_and_logits(self, x):
            x = x.float() / 127.5 - 1
            x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
            for conv in self.convs:
                x = F.leaky_relu(conv(x), 0.2)
            features = x.mean(dim=(2, 3))
            return features, self.fc(features)

    return TinyExtractor


def state_dict_sha256(module) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def extractor_weights_sha256(name: str, weights_path: Path | None) -> str:
    """sha256 of the weights file when there is one, else of the extractor's own (seeded) state_dict."""
    if weights_path is not None:
        return file_sha256(weights_path)
    # deferred: torch-fidelity is slow to import and only this path needs it
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    if name not in FEATURE_EXTRACTORS_REGISTRY:
        raise UserError(f"--extractor {name}: torch-fidelity has no such feature extractor. Valid: "
                        f"{', '.join(sorted(FEATURE_EXTRACTORS_REGISTRY))}.")
    cls = FEATURE_EXTRACTORS_REGISTRY[name]
    return state_dict_sha256(cls(name, [cls.get_default_feature_layer_for_metric("fid")]))
