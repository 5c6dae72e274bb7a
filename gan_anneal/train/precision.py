"""Device options of the fast path: numeric precision, memory layout and compilation.

    device.precision      fp32 (default) | bf16 (autocast) | fp16 (autocast + a gradient scaler per optimiser)
    device.channels_last  convolution weights (and so activations) in NHWC layout; a no-op for MLPs
    device.compile        nn.Module.compile() of the generator and critic (state_dict keys unchanged)
    device.deterministic  CUDA: cuDNN's deterministic kernels and no autotuning (default: autotuning on)

`backend_settings` applies the CUDA defaults an expert would choose for training (cuDNN autotuning unless
deterministic, TF32 matmuls and convolutions) and returns what it set, which every run records in summary.json.
Evaluation (`ganneal evaluate`) turns TF32 off again (evaluate/fidelity.py full_fp32): metrics are fp32 numbers.

Under bf16/fp16 only the generator's and critic's forward passes run in autocast; their outputs are cast back
to fp32 (a forward hook), so losses, the gradient penalty (computed outside autocast by the loop), score
models and regulariser surrogates stay in fp32. In fp32 every option here is the identity: the default
path is bit-for-bit the one without this module. Tolerances are in tests/train/test_device_options.py and
docs/benchmarks.md.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from gan_anneal.errors import UserError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _to_float(module, inputs, output):
    return output.float() if torch.is_tensor(output) and output.is_floating_point() else output


def backend_settings(device: torch.device, deterministic: bool = False) -> dict:
    """Set the backend flags of a training run on `device` and return them (for summary.json)."""
    if device.type != "cuda":
        return {"device": device.type, "threads": torch.get_num_threads()}
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = bool(deterministic)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    index = device.index if device.index is not None else torch.cuda.current_device()
    return {"device": f"cuda:{index}", "gpu": torch.cuda.get_device_name(index), "cudnn_benchmark": not deterministic,
            "cudnn_deterministic": bool(deterministic), "tf32": True, "cuda": torch.version.cuda}


class Precision:
    """autocast() for the forward passes and backward_step() for loss (scaled under fp16) → optimiser step."""

    def __init__(self, name: str = "fp32", device: torch.device | str = "cpu"):
        if name not in PRECISIONS:
            raise UserError(f"device.precision must be one of {', '.join(PRECISIONS)}, got '{name}'.")
        self.name, self.dtype, self.device_type = name, PRECISIONS[name], torch.device(device).type
        self.scalers: dict[int, torch.amp.GradScaler] = {}

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype) if self.enabled else nullcontext()

    def watch(self, *modules: nn.Module) -> None:
        """Cast these modules' outputs back to fp32, so everything downstream of a forward pass is fp32."""
        if self.enabled:
            for module in modules:
                module.register_forward_hook(_to_float)

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        if self.name != "fp16":
            loss.backward()
            optimizer.step()
            return
        scaler = self.scalers.setdefault(id(optimizer), torch.amp.GradScaler(self.device_type))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def state_dict(self, optimizers=()) -> dict:
        return {str(i): self.scalers[id(o)].state_dict() for i, o in enumerate(optimizers) if id(o) in self.scalers}

    def load_state_dict(self, state: dict, optimizers=()) -> None:
        for i, o in enumerate(optimizers):
            if str(i) in state:
                self.scalers.setdefault(id(o), torch.amp.GradScaler(self.device_type)).load_state_dict(state[str(i)])


def apply_device_options(settings, device: torch.device, generator: nn.Module, critic: nn.Module) -> Precision:
    """Apply device.channels_last and device.precision to the two networks; return the step's Precision."""
    precision = Precision(str(settings.get("precision") or "fp32"), device)
    if settings.get("channels_last"):
        for module in (generator, critic):
            module.to(memory_format=torch.channels_last)  # only 4-D (conv) weights change layout
    precision.watch(generator, critic)
    return precision


def compile_models(settings, *modules: nn.Module) -> None:
    """device.compile: nn.Module.compile() in place (after the EMA copy is taken; state_dict keys unchanged)."""
    if settings.get("compile"):
        for module in modules:
            module.compile()
