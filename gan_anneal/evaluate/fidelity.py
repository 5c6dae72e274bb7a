"""IS / FID / KID / precision-recall through torch-fidelity, with the protocol written next to every number.

torch-fidelity computes the metrics (`calculate_metrics`); nothing here re-implements them. `Fidelity` prepares a
run's reference once and measures a generator as often as asked (after training, and every `train.eval_every`
steps during it):

- the reference split as uint8 images (evaluate/inputs.py), its statistics cached by torch-fidelity under a key that
  covers everything that changes them: data set, split, count, preprocessing, the pixels' sha256, the feature
  extractor and the sha256 of its weights, and torch-fidelity's version;
- the feature extractor (evaluate/extractors.py): Inception, or ganneal's own `ganneal-mnist` and `ganneal-tiny`,
  registered with torch-fidelity here; weights that do not load fail before any sample is generated.

What to compute comes from evaluate/options.py (every bad input refused there, torch-free); a run directory becomes
an eval.json in evaluate/run_eval.py.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from gan_anneal.errors import UserError
from gan_anneal.evaluate.extractors import (
    INCEPTION,
    INCEPTION_FILE,
    INCEPTION_URL,
    MNIST,
    TINY,
    _tiny_extractor_class,
    extractor_weights_sha256,
    file_sha256,
    torch_hub_dir,
)
from gan_anneal.evaluate.inputs import generator_input, uint8_dataset
from gan_anneal.evaluate.options import EvalOptions
from gan_anneal.metric_names import FIDELITY_METRICS, PRC_NEIGHBORHOOD, REFERENCE_METRICS, TORCH_FIDELITY_KEYS
from gan_anneal.progress import StepProgress
from gan_anneal.results.files import compute_lock
from gan_anneal.results.rundir import atomic_write_text


def register_extractors() -> str:
    """Register ganneal's extractors with torch-fidelity once per process (its registry refuses a second time)."""
    from torch_fidelity.registry import (  # deferred: torch-fidelity is slow to import and only this path needs it
        FEATURE_EXTRACTORS_REGISTRY,
        register_feature_extractor,
    )

    # deferred: loads torch; this module stays torch-free at import
    from gan_anneal.evaluate.digits_classifier import extractor_class

    if TINY not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(TINY, _tiny_extractor_class())
    if MNIST not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(MNIST, extractor_class())
    return TINY


def reference_cache_key(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]


class full_fp32:
    """A context with TF32 off (matmuls and cuDNN), restored on exit: evaluation reports fp32 numbers."""

    def __enter__(self):
        import torch  # here, not at the top: bad-input paths of `ganneal evaluate` stay torch-free

        self.saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        return self

    def __exit__(self, *exc):
        import torch  # deferred: loads torch; this module stays torch-free at import

        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self.saved
        return False


def compute_metrics(input1, input2, metrics: list[str], *, extractor: str, weights_path: Path | None,
                    num_samples: int | None = None, batch_size: int = 64, is_splits: int = 10,
                    kid_subset_size: int = 1000, input2_cache_name: str | None = None,
                    cache_root: Path | None = None, seed: int = 2020, verbose: bool = False) -> dict[str, float]:
    """One torch-fidelity call; returns is_mean, is_std, fid, kid_mean, kid_std, precision, recall, f_score for the
    metrics asked.

    `input1` is a torch-fidelity generator (give `num_samples`) or a Dataset of uint8 images: the samples; `input2`
    the reference Dataset of real images (needed for fid, kid and prc). The order matters for prc: precision is
    the share of input1 inside the real manifold, recall the share of input2 inside the samples' manifold
    (tests/evaluate/test_fidelity.py pins it). A reference is cached on disk only with `input2_cache_name`."""
    import torch  # deferred: loads torch; this module stays torch-free at import
    import torch_fidelity  # deferred: torch-fidelity is slow to import and only this path needs it

    if extractor != INCEPTION:
        register_extractors()
    binary = bool(set(metrics) & REFERENCE_METRICS)
    kwargs: dict[str, Any] = dict(
        input1=input1, input2=input2 if binary else None, cuda=torch.cuda.is_available(), save_cpu_ram=True,
        **{FIDELITY_METRICS[m]: m in metrics for m in FIDELITY_METRICS}, feature_extractor=extractor,
        batch_size=int(batch_size), isc_splits=int(is_splits), kid_subset_size=int(kid_subset_size),
        prc_neighborhood=PRC_NEIGHBORHOOD,
        rng_seed=int(seed), verbose=verbose, cache=input2_cache_name is not None,
    )
    if weights_path is not None:
        kwargs["feature_extractor_weights_path"] = str(weights_path)
    if num_samples is not None:
        kwargs["input1_model_num_samples"] = int(num_samples)
    if input2_cache_name is not None and binary:
        kwargs["input2_cache_name"] = input2_cache_name
        kwargs["cache_root"] = str(cache_root)
    with full_fp32():  # TF32 stays off inside evaluation: the metrics are fp32 numbers
        raw = torch_fidelity.calculate_metrics(**kwargs)
    return {TORCH_FIDELITY_KEYS[k]: float(v) for k, v in raw.items() if k in TORCH_FIDELITY_KEYS}


class Fidelity:
    """A run's reference images and feature extractor, prepared once: `measure(generator)` as often as needed
    (after training by `ganneal evaluate`, every `train.eval_every` steps during it). The reference statistics
    are cached on disk under a key of everything that determines them."""

    def __init__(self, cfg, options: EvalOptions, log=print):
        import torch  # deferred: loads torch; this module stays torch-free at import
        import torch_fidelity  # deferred: torch-fidelity is slow to import and only this path needs it

        from gan_anneal.data import build_dataset  # deferred: loads torch; this module stays torch-free at import
        from gan_anneal.data.images import ImageTarget  # deferred: loads torch; this module stays torch-free at import

        self.options, self.log = options, log
        dataset = OmegaConf.to_container(cfg.dataset, resolve=True)
        target = build_dataset({**dataset, "split": options.reference_split})
        if not isinstance(target, ImageTarget):
            raise UserError(f"IS, FID and KID compare images, and dataset '{dataset['name']}' is not an image data "
                            "set. Use --metrics none with --probe, or the run's summary.json metrics.")
        images = target.uint8_images()
        if options.reference_count:
            if options.reference_count > len(images):
                raise UserError(f"--reference-count {options.reference_count} exceeds the {len(images)} images of "
                                f"{dataset['name']} ({options.reference_split}).")
            images = images[: options.reference_count]
        self.target = target
        self.reference = ImageTarget(images, target.name, target.split, target.preprocessing)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self._check_extractor()
        self.weights_sha = extractor_weights_sha256(options.extractor, options.weights_path)
        self.key_spec = {
            "dataset": target.name, "split": options.reference_split, "count": len(self.reference),
            "preprocessing": target.preprocessing, "pixels_sha256": self.reference.fingerprint(),
            "extractor": options.extractor, "extractor_weights_sha256": self.weights_sha,
            "torch_fidelity": torch_fidelity.__version__,
        }
        self.key = reference_cache_key(self.key_spec)
        self.cache_name = f"ganneal-{self.key}"
        options.cache_dir.mkdir(parents=True, exist_ok=True)
        self.cached_before = any(options.cache_dir.glob(f"{self.cache_name}-*"))
        atomic_write_text(options.cache_dir / f"{self.cache_name}.json",
                          json.dumps(self.key_spec, indent=2, sort_keys=True) + "\n")

    def _check_extractor(self) -> None:
        import torch  # deferred: loads torch; this module stays torch-free at import

        options = self.options
        if options.extractor != INCEPTION:
            register_extractors()
        if options.extractor == MNIST:  # a file that passes the zip check but does not load: fail before generating
            # deferred: loads torch; this module stays torch-free at import
            from gan_anneal.evaluate.digits_classifier import load_classifier

            load_classifier(options.weights_path)
        if options.weights_path is not None and options.extractor == INCEPTION:
            try:  # torch-fidelity's own load would fail deep inside the metric call with a pickle traceback
                state = torch.load(options.weights_path, map_location="cpu", weights_only=True)
                if not isinstance(state, dict) or not state:
                    raise ValueError("not a state dict")
            except Exception as error:  # noqa: BLE001 -- any failure to load is the file's
                raise UserError(f"The Inception weights {options.weights_path} do not load ({type(error).__name__}: "
                                f"{str(error)[:200]}). The file expected is {INCEPTION_FILE} (about 91 MB) from "
                                f"{INCEPTION_URL}; this file's sha256 is "
                                f"{file_sha256(options.weights_path)[:16]}….") from None
        if options.weights_path is None and options.extractor == INCEPTION:  # --download-weights: fetch it first
            # deferred: torch-fidelity is slow to import and only this path needs it
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

            FeatureExtractorInceptionV3(INCEPTION, ["2048"])
            options.weights_path = torch_hub_dir() / "checkpoints" / INCEPTION_FILE

    def kid_subset(self, num_samples: int) -> int:
        return min(1000, num_samples, len(self.reference))

    def reference_cached(self) -> bool:
        return any(self.options.cache_dir.glob(f"{self.cache_name}-*"))

    def measure(self, generator, num_samples: int | None = None, show_progress: bool = True) -> dict[str, float]:
        """The metrics of `generator` (in eval mode; its own noise from options.seed) on num_samples samples, with
        a progress bar (or plain lines) over the images the extractor reads: the samples, then the reference
        images unless their statistics are cached. Training's own evaluation passes show_progress=False (its
        bar is already on screen)."""

        if not REFERENCE_METRICS & set(self.options.metrics):
            return self._measure(generator, num_samples, show_progress, reading=False)
        # torch-fidelity writes the reference statistics only under this lock, so parallel jobs on an empty cache
        # compute them once and nobody reads a file half-written
        with compute_lock(self.options.cache_dir / f"{self.cache_name}.lock", "reference statistics", self.log):
            if not self.reference_cached():
                return self._measure(generator, num_samples, show_progress, reading=True)
        return self._measure(generator, num_samples, show_progress, reading=False)

    def _measure(self, generator, num_samples: int | None, show_progress: bool, reading: bool) -> dict[str, float]:
        options = self.options
        n = int(num_samples or options.num_samples)
        total = n + (len(self.reference) if reading else 0)
        bar = StepProgress(f"features ({options.extractor})", total, log=self.log) if show_progress else None
        read = [0]

        def seen(k: int) -> None:
            read[0] += k
            if bar is not None:
                bar.update(min(read[0], total), "samples" if read[0] <= n else "reference images")

        with bar if bar is not None else nullcontext():
            return compute_metrics(
                generator_input(generator, options.seed, seen), uint8_dataset(self.reference.images, seen),
                options.metrics, extractor=options.extractor, weights_path=options.weights_path, num_samples=n,
                batch_size=options.batch_size, is_splits=options.is_splits, kid_subset_size=self.kid_subset(n),
                input2_cache_name=self.cache_name, cache_root=options.cache_dir, seed=options.seed,
                verbose=options.verbose)

    def protocol(self, num_samples: int) -> dict:
        """How the numbers were made, recorded once with them (eval.json, or the run's summary.json)."""
        import torch_fidelity  # deferred: torch-fidelity is slow to import and only this path needs it

        options, metrics = self.options, self.options.metrics
        return {
            "num_samples": num_samples,
            "reference": {"dataset": self.target.name, "split": options.reference_split, "size": len(self.reference),
                          "preprocessing": self.target.preprocessing, "pixels_sha256": self.key_spec["pixels_sha256"]},
            "metrics": list(metrics),
            "is_splits": options.is_splits if "is" in metrics else None,
            "kid_subsets": 100 if "kid" in metrics else None,
            "kid_subset_size": self.kid_subset(num_samples) if "kid" in metrics else None,
            "prc_neighborhood": PRC_NEIGHBORHOOD if "prc" in metrics else None,
            "feature_extractor": {"name": options.extractor,
                                  "weights": str(options.weights_path) if options.weights_path else None,
                                  "weights_sha256": self.weights_sha,
                                  "stand_in": options.extractor == TINY},
            "torch_fidelity": torch_fidelity.__version__,
            "tf32": False,  # off inside evaluation (full_fp32)
            "quantisation": "uint8, round((x + 1) * 127.5); grey repeated to 3 channels",
            "noise_seed": options.seed,
            "batch_size": options.batch_size,
            "device": str(self.device),
            "reference_cache": {"key": self.key, "dir": str(options.cache_dir), "hit": self.cached_before},
        }
