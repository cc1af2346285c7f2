"""Build, count and fuse the project's InstantHMR networks (extra ``export``).

The architectures are named in :mod:`instanthmr.export.architectures` (``released``, the
default and the published file's network; ``card``, the model card's smaller one;
``hgnetv2-b0``); their PyTorch modules are in :mod:`instanthmr.export.nets`.
``forward(image, cliff_cond)`` returns the five contract outputs in contract order:
``mhr_params, shape_params, cam_trans, joints_2d, joints_3d``.

torch and timm are imported inside functions only, so importing this module (and
``instanthmr``) never pulls torch in; :func:`build_model` is the entry point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .architectures import DEFAULT_ARCHITECTURE, Architecture, get_architecture
from .nets import module_class, sincos_pos_embed_2d

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch
    from torch import nn

__all__ = [
    "Architecture",
    "build_model",
    "count_flops",
    "count_params",
    "describe",
    "example_inputs",
    "is_reparameterized",
    "randomize_",
    "reparameterize",
    "sincos_pos_embed_2d",
]
OUTPUT_NAMES = ("mhr_params", "shape_params", "cam_trans", "joints_2d", "joints_3d")


def build_model(
    seed: int | None = None,
    arch: str | Architecture = DEFAULT_ARCHITECTURE,
    image_size: int | None = None,
) -> nn.Module:
    """A fresh InstantHMR network in eval mode; ``seed`` makes the random init reproducible.

    Args:
        seed: seed of the random init (None: torch's current RNG state).
        arch: an architecture name (``released``, the default; ``card``; ``hgnetv2-b0``)
            or an :class:`~instanthmr.export.architectures.Architecture`.
        image_size: crop size to build for (a multiple of 32; default the architecture's).

    Besides timm's and PyTorch's default init, the random init (see :func:`randomize_`)
    gives every BatchNorm non-trivial statistics and the decoder layers different
    weights, so that every branch carries signal as in a trained model; a checkpoint
    loaded afterwards overwrites all of it. The model's ``arch`` attribute names it.
    """
    import dataclasses

    import torch

    spec = get_architecture(arch)
    if image_size is not None and image_size != spec.image_size:
        spec = dataclasses.replace(spec, image_size=int(image_size))  # validates the size
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        model = module_class(spec.layout)(spec)
        randomize_(model)
    return model.eval()


def randomize_(model: nn.Module) -> None:
    """Make a default-initialised network look trained (in place, uses torch's global RNG).

    timm initialises the last BatchNorm of each RepViT MLP branch to zero weight and every
    BatchNorm to identity statistics, and ``nn.TransformerDecoder`` deep-copies one layer:
    exported as-is, whole branches would be zeros and the layers identical, which makes
    fusion, fp16 and parity checks too easy. This draws BatchNorm affine parameters and
    running statistics at random (moderate spread, so activations stay O(1)) and
    re-initialises every decoder layer after the first.
    """
    import torch
    from torch import nn

    with torch.no_grad():
        for mod in model.backbone.modules():
            if isinstance(mod, nn.BatchNorm2d):
                c = mod.num_features
                if bool((mod.weight == 0).all()):  # zero-init residual branch
                    mod.weight.copy_(torch.randn(c) * 0.2)
                else:
                    mod.weight.uniform_(0.5, 1.5)
                mod.bias.copy_(torch.randn(c) * 0.1)
                mod.running_mean.copy_(torch.randn(c) * 0.1)
                mod.running_var.uniform_(0.5, 2.0)
        decoders = [m for m in model.modules() if isinstance(m, nn.TransformerDecoder)]
        for layer in (layer for dec in decoders for layer in list(dec.layers)[1:]):
            for mod in layer.modules():
                if isinstance(mod, nn.MultiheadAttention):
                    mod._reset_parameters()
                elif isinstance(mod, nn.Linear):
                    mod.reset_parameters()


def count_params(model: nn.Module) -> int:
    """Number of parameters (buffers such as BatchNorm statistics are not counted)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, batch: int = 1) -> float:
    """GFLOP per person of one forward at the model's crop size (``torch.utils.flop_counter``).

    PyTorch's counter counts a multiply-add as 2 FLOP and covers matmuls, convolutions
    and attention; element-wise ops (norms, activations) are not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    image, cliff = example_inputs(batch, image_size=model.arch.image_size)
    counter = FlopCounterMode(display=False)
    with counter:  # grad mode on: the module tracker of the counter needs autograd nodes
        model(image, cliff)
    return counter.get_total_flops() / batch / 1e9


def example_inputs(
    batch: int = 1, seed: int = 0, image_size: int = 224
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random contract-shaped inputs: a normalised-looking image and a plausible CLIFF vector."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, 3, image_size, image_size, generator=gen)
    cliff = torch.rand(batch, 3, generator=gen) * torch.tensor([2.0, 2.0, 0.9]) + torch.tensor(
        [-1.0, -1.0, 0.1]
    )
    return image, cliff


def reparameterize(model: nn.Module) -> nn.Module:
    """Fuse RepViT branches and conv+BN pairs in place (timm's ``reparameterize_model``).

    Only the backbone is touched; the decoder and heads have nothing to fuse. The model
    must be in eval mode (fusing folds BatchNorm running statistics). Returns ``model``.
    """
    from timm.utils import reparameterize_model

    if model.training:
        raise RuntimeError("reparameterize() needs an eval-mode model: call model.eval() first")
    model.backbone = reparameterize_model(model.backbone, inplace=True)
    return model


def is_reparameterized(model: nn.Module) -> bool:
    """True when no fusable RepViT/conv-BN module is left in the backbone."""
    fusable = ("fuse", "reparameterize")
    inner = list(model.backbone.modules())[1:]  # timm's RepVit model itself has a fuse()
    return not any(any(hasattr(m, f) for f in fusable) for m in inner)


def describe(model: Any) -> str:
    """One line: architecture, parameter count (M) and GFLOP per person."""
    return (
        f"{model.arch.name}: {count_params(model) / 1e6:.2f} M params, "
        f"{count_flops(model):.2f} GFLOP/person at {model.arch.image_size} px"
    )
