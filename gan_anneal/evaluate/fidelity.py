"""IS / FID / KID of a run's generator through torch-fidelity, with the protocol written next to every number.

    ganneal evaluate runs/<run> --metrics is,fid,kid --num-samples 50000

torch-fidelity computes the metrics (`calculate_metrics`); nothing here re-implements them. This module
only prepares the two inputs and records how the numbers were made:

- the generator, wrapped to produce uint8 3×H×W images (grey images repeated to three channels) with the
  same quantisation the real images have (data/images.py: round((x + 1)·127.5)); torch-fidelity's noise
  gives only the batch size, the generator draws its own noise (`sample_noise`) from a private seeded stream;
- the reference split as a Dataset of uint8 tensors, cached by torch-fidelity under a key that covers
  everything that changes its statistics: data set, split, count, preprocessing, the pixels' sha256,
  the feature extractor and the sha256 of its weights, and torch-fidelity's version;
- the Inception weights come from --inception-weights, `evaluate.inception_weights` in the run's config,
  $GANNEAL_INCEPTION_WEIGHTS, or torch's hub cache; with none of them the call fails at once (UserError)
  naming the file, unless the user asked for the download (`--download-weights`).

Two more extractors are registered with torch-fidelity and run offline:
- `ganneal-mnist` (evaluate/digits_classifier.py), a digit classifier trained on real MNIST digits, its weights
  shipped in the package: real numbers for grey 28×28 / 32×32 digit runs (mnist_small, mnist), comparable between
  runs evaluated with the same weights, not with Inception numbers;
- `ganneal-tiny`, a stand-in (a fixed random conv net, no file needed) so the whole path runs in well under a
  second: for tests and CPU smoke runs only.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from gan_anneal.config import comma_list
from gan_anneal.defaults import shipped
from gan_anneal.errors import UserError
from gan_anneal.evaluate.extractors import (  # noqa: F401 (re-exported: the evaluation's public names)
    AUTO,
    DIGIT_REBUILD,
    DIGIT_SIDES,
    DIGIT_WEIGHTS,
    EXTRACTORS,
    GREY_DATASETS,
    INCEPTION,
    INCEPTION_FILE,
    INCEPTION_URL,
    MNIST,
    TINY,
    TORCH_LEGACY_MAGIC,
    WEIGHTS_ENV,
    _grey_side,
    _tiny_extractor_class,
    check_extractor,
    check_inception_file,
    digit_weights,
    extractor_for,
    extractor_weights_sha256,
    extractors_that_fit,
    features_and_logits_base,
    file_sha256,
    resolve_inception_weights,
    state_dict_sha256,
    torch_hub_dir,
    unusable_digit_weights,
    weights_problem,
)
from gan_anneal.kinds import dataset_kind
from gan_anneal.metric_names import FIDELITY_METRICS, PRC_NEIGHBORHOOD, TORCH_FIDELITY_KEYS
from gan_anneal.progress import StepProgress
from gan_anneal.results.evaluations import add_evaluation
from gan_anneal.results.files import compute_lock
from gan_anneal.results.rundir import RunDir, atomic_write_text

KNOWN_METRICS = tuple(FIDELITY_METRICS)
BINARY_METRICS = {"fid", "kid", "prc"}  # compared with the reference images
KIND_WORDS = {"toy": "a 2-D mixture", "energy": "an energy target", "discrete": "binary or one-hot samples",
              "unknown": "not a data set ganneal knows as images"}
KIND_ADVICE = {
    "toy": "Its own metrics (modes covered, hq fraction, KL) are in summary.json: `ganneal table DIR` shows them. ",
    "energy": "Its own metrics (KL on a grid, coverage) are in summary.json: `ganneal table DIR` shows them. ",
    "discrete": "Its held-out metrics are in summary.json. ",
}


def parse_metrics(text: str) -> list[str]:
    names = [m.lower() for m in comma_list(text)]
    if names == ["none"]:
        return []
    unknown = [m for m in names if m not in KNOWN_METRICS]
    if unknown or not names:
        raise UserError(f"--metrics {text!r}: unknown {', '.join(unknown) or 'empty list'}. "
                        f"Valid: a comma-separated subset of {','.join(KNOWN_METRICS)}, or none.")
    return list(dict.fromkeys(names))


# The stand-in extractor ---------------------------------------------------------------------------------

def register_extractors() -> str:
    """Register ganneal's extractors with torch-fidelity once per process (its registry refuses a second time)."""
    from torch_fidelity.registry import (  # deferred: torch-fidelity is slow to import and only this path needs it
        FEATURE_EXTRACTORS_REGISTRY,
        register_feature_extractor,
    )

    from gan_anneal.evaluate.digits_classifier import (
        extractor_class,  # deferred: loads torch; this module stays torch-free at import
    )  # deferred: loads torch; this module stays torch-free at import  # deferred: loads torch; this module stays torch-free at import

    if TINY not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(TINY, _tiny_extractor_class())
    if MNIST not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(MNIST, extractor_class())
    return TINY


# Inputs -----------------------------------------------------------------------------------------------

def _uint8_dataset_class():
    from torch.utils.data import Dataset  # deferred: loads torch; this module stays torch-free at import

    class UInt8Images(Dataset):
        """uint8 (N, C, H, W) images as torch-fidelity wants them: one 3×H×W uint8 tensor per item, no label."""

        def __init__(self, images, seen=None):
            if images.dim() != 4 or images.shape[1] not in (1, 3):
                raise ValueError(f"expected uint8 images (N, 1|3, H, W), got {tuple(images.shape)}")
            self.images, self.seen = images.cpu(), seen  # seen(k): k more items read (progress)

        def __len__(self):
            return len(self.images)

        def __getitem__(self, i):
            if self.seen is not None:  # torch-fidelity reads items in this process (save_cpu_ram: no workers)
                self.seen(1)
            image = self.images[i]
            return image.expand(3, -1, -1).contiguous() if image.shape[0] == 1 else image

    return UInt8Images


def uint8_dataset(images, seen=None):
    return _uint8_dataset_class()(images, seen)


def generator_input(generator, seed: int = 2020, seen=None):
    """The generator wrapped for torch-fidelity: z → uint8 3×H×W images.

    torch-fidelity's z gives only the batch size: the generator draws its own noise (`sample_noise`, on the
    CPU, so a seed gives the same samples on any device) from a private random stream seeded with `seed`,
    untouched by anything torch-fidelity does in between. `seen(k)` is told of every batch (progress)."""
    import torch  # deferred: loads torch; this module stays torch-free at import
    from torch import nn  # deferred: loads torch; this module stays torch-free at import
    from torch_fidelity import (
        GenerativeModelModuleWrapper,  # deferred: torch-fidelity is slow to import and only this path needs it
    )  # deferred: torch-fidelity is slow to import and only this path needs it  # deferred: torch-fidelity is slow to import and only this path needs it

    from gan_anneal.data.images import to_uint8  # deferred: loads torch; this module stays torch-free at import

    class ToUInt8(nn.Module):
        def __init__(self, g):
            super().__init__()
            self.g = g
            self.rng_state = torch.Generator().manual_seed(int(seed)).get_state()

        def forward(self, z):
            if seen is not None:
                seen(len(z))
            with torch.random.fork_rng(devices=[]):
                torch.set_rng_state(self.rng_state)
                noise = self.g.sample_noise(len(z), torch.device("cpu"))
                self.rng_state = torch.get_rng_state()
            with torch.inference_mode():  # no autograd state for 50k samples
                x = to_uint8(self.g(noise.to(z.device)))
            return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    return GenerativeModelModuleWrapper(ToUInt8(generator), int(generator.z_dim), "normal", 0)


# The metrics --------------------------------------------------------------------------------------------

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
    binary = bool(set(metrics) & BINARY_METRICS)
    kwargs: dict[str, Any] = dict(
        input1=input1, input2=input2 if binary else None, cuda=torch.cuda.is_available(), save_cpu_ram=True,
        **{FIDELITY_METRICS[m]: m in metrics for m in KNOWN_METRICS}, feature_extractor=extractor,
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


# A run directory → eval.json ---------------------------------------------------------------------------

CHECKPOINTS = ("last", "best")


@dataclass
class EvalOptions:
    metrics: list[str]
    num_samples: int
    batch_size: int
    extractor: str
    weights_path: Path | None
    download_weights: bool
    reference_split: str
    reference_count: int | None
    is_splits: int
    generator: str  # auto | ema | raw
    cache_dir: Path
    seed: int
    verbose: bool = False
    checkpoint: str = "last"  # last | best (checkpoints/best.pt, kept with train.best_metric)


def default_cache_dir() -> Path:
    return Path(os.environ.get("GANNEAL_CACHE", Path.home() / ".cache" / "ganneal")) / "fidelity"


def resolve_options(run_dir: Path, *, checkpoint: str = "last", config: dict | None = None, **choices) -> EvalOptions:
    """Options from the command line (`choices`: metrics, num_samples, extractor ...), else the run's `evaluate:`
    config, else the defaults. No torch import: every bad-input path (unknown metric, missing run, missing
    weights) fails here, at once. With `config` (training's own evaluation, train.eval_every) the run directory
    need not hold a checkpoint or a config yet."""


    if checkpoint not in CHECKPOINTS:
        raise UserError(f"--checkpoint must be one of {', '.join(CHECKPOINTS)}, got '{checkpoint}'.")
    if config is None:
        run = RunDir(run_dir).require(checkpoint=True)
        run.checkpoint_file(checkpoint)  # a missing best.pt fails here, before any torch import
        config = OmegaConf.to_container(run.read_config(), resolve=False)
    return options_from_config(config, run_dir, checkpoint=checkpoint, **choices)


def options_from_config(cfg: dict, run_dir, *, metrics=None, num_samples=None, batch_size=None, extractor=None,
                        inception_weights=None, download_weights=False, reference_split=None, reference_count=None,
                        is_splits=None, generator=None, cache_dir=None, seed=None, verbose=False,
                        checkpoint="last") -> EvalOptions:
    # a run recorded before a key existed gets the shipped default, and the extractor its data set calls for
    ev = {**shipped("evaluate"), "extractor": AUTO, **(cfg.get("evaluate") or {})}

    def pick(cli, key):
        return cli if cli is not None else ev[key]

    names = parse_metrics(pick(metrics, "metrics"))
    dataset = str((cfg.get("dataset") or {}).get("name", "?"))
    kind = dataset_kind(dataset)
    if names and kind != "images":
        raise UserError(
            f"IS, FID, KID and precision/recall (prc) compare images through an image network's features, and "
            f"{run_dir} trained on dataset={dataset} ({KIND_WORDS.get(kind, kind)}). "
            f"{KIND_ADVICE.get(kind, '')}Fresh-critic divergences apply to every run: "
            f"ganneal evaluate {run_dir} --probe js,rkl,w.")
    extractor = str(pick(extractor, "extractor"))
    if extractor == AUTO:
        extractor = extractor_for(cfg.get("dataset") or {})
    if names:
        check_extractor(extractor, cfg.get("dataset") or {}, run_dir)
    generator = str(pick(generator, "generator"))
    if generator not in ("auto", "ema", "raw"):
        raise UserError(f"--generator must be auto, ema or raw, got '{generator}'.")
    n = int(pick(num_samples, "num_samples"))
    if n < 2:
        raise UserError(f"--num-samples must be at least 2, got {n}.")
    if "prc" in names and n < PRC_NEIGHBORHOOD + 1:
        raise UserError(f"precision/recall (prc) looks for each sample's {PRC_NEIGHBORHOOD} nearest neighbours among "
                        f"the samples: it needs at least {PRC_NEIGHBORHOOD + 1} samples, got {n}.")
    splits = int(pick(is_splits, "is_splits"))
    if "is" in names and not 1 <= splits <= n:
        raise UserError(f"IS splits must be between 1 and the sample count {n}, got {splits}.")
    weights = None
    if names and extractor == INCEPTION:
        weights = resolve_inception_weights(inception_weights, ev.get("inception_weights"), download_weights)
    elif names and extractor == MNIST:
        weights = digit_weights()
    elif inception_weights:
        weights = Path(inception_weights).expanduser()
        if not weights.is_file():
            raise UserError(f"--inception-weights names {weights}, which is not a file.")
        problem = weights_problem(weights)
        if problem:
            raise UserError(f"--inception-weights names {weights}, but {problem}.")
    cache = pick(cache_dir, "cache_dir")
    return EvalOptions(
        metrics=names, num_samples=n, batch_size=int(pick(batch_size, "batch_size")), extractor=extractor,
        weights_path=weights, download_weights=download_weights,
        reference_split=str(pick(reference_split, "reference_split")),
        reference_count=int(reference_count) if reference_count else None, is_splits=splits, generator=generator,
        cache_dir=Path(cache).expanduser() if cache else default_cache_dir(),
        seed=int(pick(seed, "seed")), verbose=verbose, checkpoint=checkpoint)


def load_generator(run_dir: Path, cfg, data_shape, device, which: str, checkpoint: str = "last"):
    """The run's generator from its last (or best) checkpoint: the EMA copy when kept (unless which=raw), else the
    raw one."""

    from gan_anneal.models import build_models  # deferred: loads torch; this module stays torch-free at import
    from gan_anneal.results.checkpoint import (
        load_checkpoint,  # deferred: loads torch; this module stays torch-free at import
    )  # deferred: loads torch; this module stays torch-free at import  # deferred: loads torch; this module stays torch-free at import

    run = RunDir(run_dir)
    state = load_checkpoint(run.checkpoint_file(checkpoint), map_location="cpu")
    generator, _ = build_models(OmegaConf.to_container(cfg.model, resolve=True), data_shape)
    ema = state.get("ema") or {}
    if which == "ema" and not ema:
        raise UserError(f"--generator ema: {run_dir} kept no EMA of its generator (it trained with train.ema=0). "
                        "Use --generator raw or auto.")
    used = "ema" if ema and which in ("auto", "ema") else "raw"
    generator.load_state_dict(ema["model"] if used == "ema" else state["generator"])
    return generator.to(device).eval().requires_grad_(False), used, int(state["step"])


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
            from gan_anneal.evaluate.digits_classifier import (
                load_classifier,  # deferred: loads torch; this module stays torch-free at import
            )  # deferred: loads torch; this module stays torch-free at import  # deferred: loads torch; this module stays torch-free at import

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
            from torch_fidelity.feature_extractor_inceptionv3 import (
                FeatureExtractorInceptionV3,  # deferred: torch-fidelity is slow to import and only this path needs it
            )  # deferred: torch-fidelity is slow to import and only this path needs it  # deferred: torch-fidelity is slow to import and only this path needs it

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

        if not BINARY_METRICS & set(self.options.metrics):
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


def evaluate_run(run_dir: str | Path, options: EvalOptions, log=print) -> dict:
    """Compute the metrics of a run's checkpoint and keep them in <run>/eval.json beside every other evaluation
    (results/evaluations.py); returns this protocol's entry."""

    run = RunDir(run_dir)
    cfg = run.read_config()
    started = time.perf_counter()
    fidelity = Fidelity(cfg, options, log)
    generator, used, step = load_generator(run.path, cfg, fidelity.target.shape, fidelity.device, options.generator,
                                           options.checkpoint)
    log(f"evaluating {used} generator ({options.checkpoint} checkpoint, step {step}) on {options.num_samples} "
        f"samples against {fidelity.target.name}/{options.reference_split} ({len(fidelity.reference)} images) with "
        f"{options.extractor}" + (" (reference statistics cached)" if fidelity.cached_before
                                  and BINARY_METRICS & set(options.metrics) else ""))
    values = fidelity.measure(generator)
    protocol = {**fidelity.protocol(options.num_samples), "generator": used, "checkpoint": options.checkpoint,
                "checkpoint_step": step, "run_status": run.read_summary().get("status"),
                "seconds": round(time.perf_counter() - started, 2), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    record, key = add_evaluation(run.read_evaluations(), {"metrics": values, "protocol": protocol})
    run.write_evaluations(record)
    others = len(record["evaluations"]) - 1
    if others:
        log(f"kept beside {others} other evaluation{'s' if others > 1 else ''} of this run in {run.eval_file} "
            f"({key})")
    return record["fidelity"]
