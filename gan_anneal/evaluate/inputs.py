"""The two inputs torch-fidelity reads, as it wants them: real images as a Dataset of uint8 3×H×W tensors, and a
generator wrapped to draw its own seeded noise and emit uint8 images with the real images' quantisation. Both can
report every item read (progress). torch loads on first use, not at import.
"""

from __future__ import annotations


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

    # deferred: torch-fidelity is slow to import and only this path needs it
    from torch_fidelity import GenerativeModelModuleWrapper

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
