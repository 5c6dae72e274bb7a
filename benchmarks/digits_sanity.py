"""Sanity figures of the ganneal-mnist extractor, printed as a markdown table:
held-out accuracy, FID of real held-out digits / noisy digits / uniform noise against the 4,000 training digits,
IS of the held-out digits and of one digit repeated.   python benchmarks/digits_sanity.py"""

import tempfile

import torch

from gan_anneal.evaluate import digits_classifier as dc
from gan_anneal.evaluate import extractors, fidelity, inputs

x_train, _, x_held, y_held = dc.digit_split()
cache = tempfile.mkdtemp()


def metric(images, names):
    return fidelity.compute_metrics(inputs.uint8_dataset(images), inputs.uint8_dataset(x_train), names,
                                    extractor=extractors.MNIST, weights_path=dc.WEIGHTS, batch_size=500,
                                    cache_root=cache, input2_cache_name="train")


rows = [("held-out accuracy", f"{dc.accuracy(dc.load_classifier(), x_held, y_held):.4f}")]
real = metric(x_held, ["fid", "is"])
rows += [("FID(held-out digits, training digits)", f"{real['fid']:.3f}"), ("IS(held-out digits)", f"{real['is_mean']:.2f}")]
generator = torch.Generator().manual_seed(1)
for sigma in (0.1, 0.2, 0.4):
    noisy = (x_held.float() + sigma * 255 * torch.randn(x_held.shape, generator=generator)).round().clamp(0, 255)
    rows.append((f"FID(held-out + N(0, {sigma}²) noise)", f"{metric(noisy.to(torch.uint8), ['fid'])['fid']:.2f}"))
noise = torch.randint(0, 256, x_held.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
rows.append(("FID(uniform noise)", f"{metric(noise, ['fid'])['fid']:.1f}"))
one = x_held[:1].expand(1000, -1, -1, -1).contiguous()
rows.append(("IS(one digit repeated 1,000 times)", f"{metric(one, ['is'])['is_mean']:.3f}"))
print("| measure | value |\n|---|---|")
for name, value in rows:
    print(f"| {name} | {value} |")
