"""The project's own PyTorch definition of the InstantHMR network (extra ``export``).

Architecture, as in the model contract (summarised in ``docs/architecture.md``):

- backbone: timm ``repvit_m1_5`` (``features_only``, last stage only: ``(B, 512, 7, 7)`` at 224);
- tokens: the 49 backbone positions projected to ``d_model = 256`` plus a fixed 2D sin-cos
  positional embedding;
- decoder: 9 learnable queries, 2 pre-LN ``nn.TransformerDecoderLayer`` (4 heads, GELU)
  cross-attending to the 49 tokens;
- heads: query 0 camera translation (the only head reading ``cliff_cond``), query 1 pose (136),
  query 2 scales (68), query 3 shape (45), queries 4-8 (torso, arms, legs) -> 3D and 2D joints.

``forward(image, cliff_cond)`` returns the five contract outputs in contract order:
``mhr_params, shape_params, cam_trans, joints_2d, joints_3d``.

torch and timm are imported inside functions only, so importing this module (and
``instanthmr``) never pulls torch in; :func:`build_model` is the entry point.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch
    from torch import nn

BACKBONE = "repvit_m1_5"
BACKBONE_CHANNELS = 512
D_MODEL = 256
NUM_HEADS = 4
NUM_LAYERS = 2
DIM_FEEDFORWARD = 1024
NUM_QUERIES = 9
NUM_JOINTS = 70
POSE_DIM = 136
SCALE_DIM = 68
SHAPE_DIM = 45
CLIFF_DIM = 3
HEAD_HIDDEN = 256
JOINT_HEAD_HIDDEN = 256
JOINT_QUERIES = 5  # queries 4-8: torso, left arm, right arm, left leg, right leg
INIT_DEPTH_M = 5.0  # camera-head bias: a random-init model puts people in front of the camera
OUTPUT_NAMES = ("mhr_params", "shape_params", "cam_trans", "joints_2d", "joints_3d")


def sincos_pos_embed_2d(height: int, width: int, dim: int, temperature: float = 10000.0):
    """Fixed 2D sine-cosine positional embedding, shape ``(height * width, dim)``, row-major.

    The first half of the channels encodes the row (y), the second half the column (x);
    each half is ``[sin(pos * w_k), cos(pos * w_k)]`` over ``dim // 4`` frequencies.
    """
    import torch

    if dim % 4:
        raise ValueError(f"sin-cos embedding needs dim divisible by 4, got {dim}")
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float64),
        torch.arange(width, dtype=torch.float64),
        indexing="ij",
    )
    omega = 1.0 / temperature ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    out_y = ys.reshape(-1, 1) * omega[None]
    out_x = xs.reshape(-1, 1) * omega[None]
    emb = torch.cat([out_y.sin(), out_y.cos(), out_x.sin(), out_x.cos()], dim=1)
    return emb.float()


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    from torch import nn

    return nn.Sequential(
        nn.LayerNorm(in_dim), nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim)
    )


@functools.cache
def _module_class() -> type:
    """Define the network class lazily so that torch is imported only when it is used."""
    import timm
    import torch
    from torch import nn

    class InstantHMRNet(nn.Module):
        """RepViT-M1.5 backbone + 2-layer query decoder + per-query regression heads."""

        def __init__(self) -> None:
            super().__init__()
            self.backbone = timm.create_model(
                BACKBONE, pretrained=False, features_only=True, out_indices=(3,)
            )
            channels = self.backbone.feature_info.channels()[-1]
            if channels != BACKBONE_CHANNELS:
                raise RuntimeError(f"{BACKBONE} last stage has {channels} channels, expected 512")
            self.input_proj = nn.Linear(BACKBONE_CHANNELS, D_MODEL)
            self.register_buffer(
                "pos_embed", sincos_pos_embed_2d(7, 7, D_MODEL)[None], persistent=False
            )
            self.queries = nn.Parameter(torch.zeros(1, NUM_QUERIES, D_MODEL))
            nn.init.trunc_normal_(self.queries, std=0.02)
            layer = nn.TransformerDecoderLayer(
                D_MODEL, NUM_HEADS, dim_feedforward=DIM_FEEDFORWARD, dropout=0.0,
                activation="gelu", batch_first=True, norm_first=True,
            )
            self.decoder = nn.TransformerDecoder(layer, NUM_LAYERS, norm=nn.LayerNorm(D_MODEL))
            self.cam_head = _mlp(D_MODEL + CLIFF_DIM, HEAD_HIDDEN, 3)
            self.pose_head = _mlp(D_MODEL, HEAD_HIDDEN, POSE_DIM)
            self.scale_head = _mlp(D_MODEL, HEAD_HIDDEN, SCALE_DIM)
            self.shape_head = _mlp(D_MODEL, HEAD_HIDDEN, SHAPE_DIM)
            joint_in = JOINT_QUERIES * D_MODEL
            self.joints3d_head = _mlp(joint_in, JOINT_HEAD_HIDDEN, NUM_JOINTS * 3)
            self.joints2d_head = _mlp(joint_in, JOINT_HEAD_HIDDEN, NUM_JOINTS * 2)
            with torch.no_grad():
                self.cam_head[-1].bias.copy_(torch.tensor([0.0, 0.0, INIT_DEPTH_M]))

        def forward(
            self, image: torch.Tensor, cliff_cond: torch.Tensor
        ) -> tuple[torch.Tensor, ...]:
            """``image`` (N,3,224,224), ``cliff_cond`` (N,3) -> the 5 contract outputs."""
            feat = self.backbone(image)[-1]  # (N, 512, 7, 7)
            tokens = self.input_proj(feat.flatten(2).transpose(1, 2)) + self.pos_embed
            queries = self.queries.expand(image.shape[0], -1, -1)
            q = self.decoder(queries, tokens)  # (N, 9, 256)
            cam_trans = self.cam_head(torch.cat([q[:, 0], cliff_cond], dim=1))
            mhr_params = torch.cat([self.pose_head(q[:, 1]), self.scale_head(q[:, 2])], dim=1)
            shape_params = self.shape_head(q[:, 3])
            joint_tokens = q[:, 4 : 4 + JOINT_QUERIES].flatten(1)
            joints_3d = self.joints3d_head(joint_tokens).unflatten(1, (NUM_JOINTS, 3))
            joints_2d = self.joints2d_head(joint_tokens).unflatten(1, (NUM_JOINTS, 2))
            return mhr_params, shape_params, cam_trans, joints_2d, joints_3d

    return InstantHMRNet


def build_model(seed: int | None = None) -> nn.Module:
    """A fresh InstantHMR network in eval mode; ``seed`` makes the random init reproducible.

    Besides timm's and PyTorch's default init, the random init (see :func:`randomize_`)
    gives every BatchNorm non-trivial statistics and the two decoder layers different
    weights, so that every branch carries signal as in a trained model; a checkpoint
    loaded afterwards overwrites all of it.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        model = _module_class()()
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
        for layer in list(model.decoder.layers)[1:]:
            for mod in layer.modules():
                if isinstance(mod, nn.MultiheadAttention):
                    mod._reset_parameters()
                elif isinstance(mod, nn.Linear):
                    mod.reset_parameters()


def count_params(model: nn.Module) -> int:
    """Number of parameters (buffers such as BatchNorm statistics are not counted)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, batch: int = 1) -> float:
    """GFLOP per person of one forward at 224 px, counted by ``torch.utils.flop_counter``.

    PyTorch's counter counts a multiply-add as 2 FLOP and covers matmuls, convolutions
    and attention; element-wise ops (norms, activations) are not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    image, cliff = example_inputs(batch)
    counter = FlopCounterMode(display=False)
    with counter:  # grad mode on: the module tracker of the counter needs autograd nodes
        model(image, cliff)
    return counter.get_total_flops() / batch / 1e9


def example_inputs(batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random contract-shaped inputs: a normalised-looking image and a plausible CLIFF vector."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, 3, 224, 224, generator=gen)
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
    return not any(hasattr(m, "fuse") for m in model.backbone.modules())


def describe(model: Any) -> str:
    """One line: parameter count (M) and GFLOP per person."""
    return f"{count_params(model) / 1e6:.2f} M params, {count_flops(model):.2f} GFLOP/person"
