"""The PyTorch modules of the InstantHMR architectures (extra ``export``).

Two layouts, configured by an :class:`~instanthmr.export.architectures.Architecture`:

- :func:`released_class` (layout ``released``): backbone stride-32 features as tokens
  (+ fixed sin-cos position), 1 + 70 + 70 queries with the projected CLIFF vector added,
  a pre-LN transformer decoder, one linear global head and per-query keypoint heads. Its
  module names (``backbone``, ``feat_proj``, ``mem_pos_embed``, ``query_embed``,
  ``cond_proj``, ``transformer``, ``head_global``, ``head_2d_feat``, ``head_2d_xy``,
  ``head_3d``) are the parameter names of the released ``instanthmr.pth``, so that
  checkpoint loads strictly.
- :func:`card_class` (layout ``card``): the smaller network of the model card, 9 queries,
  the CLIFF vector read by the camera head only.

Both return ``mhr_params, shape_params, cam_trans, joints_2d, joints_3d`` in contract order.
torch and timm are imported inside functions only, so importing this module is cheap.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch
    from torch import nn

    from .architectures import Architecture

NUM_JOINTS = 70
POSE_DIM = 136
SCALE_DIM = 68
SHAPE_DIM = 45
CLIFF_DIM = 3
MHR_DIM = POSE_DIM + SCALE_DIM
GLOBAL_DIM = MHR_DIM + SHAPE_DIM + 3  # mhr_params, shape_params, cam_trans
CLIFF_HIDDEN = 128  # the released CLIFF MLP: 3 -> 128 -> d_model
KEYPOINT_HIDDEN = 256  # the released per-query keypoint heads: d_model -> 256 -> 2 or 3
CARD_HEAD_HIDDEN = 256
CARD_JOINT_QUERIES = 5  # card queries 4-8: torso, left arm, right arm, left leg, right leg
INIT_DEPTH_M = 5.0  # camera-head bias: a random-init model puts people in front of the camera


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


def _decoder(arch: Architecture, final_norm: bool) -> nn.TransformerDecoder:
    from torch import nn

    layer = nn.TransformerDecoderLayer(
        arch.d_model, arch.heads, dim_feedforward=arch.ffn, dropout=0.0,
        activation="gelu", batch_first=True, norm_first=True,
    )  # fmt: skip
    norm = nn.LayerNorm(arch.d_model) if final_norm else None
    return nn.TransformerDecoder(layer, arch.layers, norm=norm)


def _check_channels(arch: Architecture, channels: int) -> None:
    if channels != arch.backbone_channels:
        raise RuntimeError(
            f"{arch.backbone} gives {channels} channels at stride 32, the architecture "
            f"{arch.name!r} expects {arch.backbone_channels}"
        )


def _card_mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    from torch import nn

    return nn.Sequential(
        nn.LayerNorm(in_dim), nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim)
    )


@functools.cache
def released_class() -> type:
    """The ``released`` layout's module class (defined lazily: torch is imported here)."""
    import timm
    import torch
    from torch import nn

    class InstantHMRReleased(nn.Module):
        """Backbone tokens + 141 CLIFF-conditioned queries + transformer decoder + heads."""

        def __init__(self, arch: Architecture) -> None:
            super().__init__()
            self.arch = arch
            self.backbone = timm.create_model(arch.backbone, pretrained=False, num_classes=0)
            self.backbone.head = nn.Identity()  # forward_features only; no unused weights
            _check_channels(arch, self.backbone.num_features)
            grid = arch.image_size // 32
            self.feat_proj = nn.Linear(arch.backbone_channels, arch.d_model)
            self.register_buffer(
                "mem_pos_embed", sincos_pos_embed_2d(grid, grid, arch.d_model)[None]
            )
            self.query_embed = nn.Parameter(torch.randn(1, arch.queries, arch.d_model) * 0.02)
            self.cond_proj = nn.Sequential(
                nn.Linear(CLIFF_DIM, CLIFF_HIDDEN), nn.GELU(),
                nn.Linear(CLIFF_HIDDEN, arch.d_model),
            )  # fmt: skip
            self.transformer = _decoder(arch, final_norm=False)
            self.head_global = nn.Linear(arch.d_model, GLOBAL_DIM)
            self.head_2d_feat = nn.Sequential(nn.Linear(arch.d_model, KEYPOINT_HIDDEN), nn.GELU())
            self.head_2d_xy = nn.Sequential(nn.Linear(KEYPOINT_HIDDEN, 2))
            self.head_3d = nn.Sequential(
                nn.Linear(arch.d_model, KEYPOINT_HIDDEN), nn.GELU(),
                nn.Linear(KEYPOINT_HIDDEN, 3),
            )  # fmt: skip
            with torch.no_grad():
                self.head_global.bias[-3:] = torch.tensor([0.0, 0.0, INIT_DEPTH_M])

        def forward(
            self, image: torch.Tensor, cliff_cond: torch.Tensor
        ) -> tuple[torch.Tensor, ...]:
            """``image`` (N,3,S,S), ``cliff_cond`` (N,3) -> the 5 contract outputs."""
            feat = self.backbone.forward_features(image)  # (N, C, S/32, S/32)
            memory = self.feat_proj(feat.flatten(2).transpose(1, 2)) + self.mem_pos_embed
            queries = self.query_embed.expand(image.shape[0], -1, -1)
            queries = queries + self.cond_proj(cliff_cond)[:, None]
            q = self.transformer(queries, memory)  # (N, 141, d_model)
            out = self.head_global(q[:, 0])
            mhr_params = out[:, :MHR_DIM]
            shape_params = out[:, MHR_DIM : MHR_DIM + SHAPE_DIM]
            cam_trans = out[:, MHR_DIM + SHAPE_DIM :]
            joints_2d = self.head_2d_xy(self.head_2d_feat(q[:, 1 : 1 + NUM_JOINTS]))
            joints_3d = self.head_3d(q[:, 1 + NUM_JOINTS :])
            return mhr_params, shape_params, cam_trans, joints_2d, joints_3d

    return InstantHMRReleased


@functools.cache
def card_class() -> type:
    """The ``card`` layout's module class (defined lazily: torch is imported here)."""
    import timm
    import torch
    from torch import nn

    class InstantHMRCard(nn.Module):
        """Backbone + 9-query decoder + per-query regression heads (the model card's net)."""

        def __init__(self, arch: Architecture) -> None:
            super().__init__()
            self.arch = arch
            self.backbone = timm.create_model(
                arch.backbone, pretrained=False, features_only=True, out_indices=(3,)
            )
            _check_channels(arch, self.backbone.feature_info.channels()[-1])
            grid = arch.image_size // 32
            d = arch.d_model
            self.input_proj = nn.Linear(arch.backbone_channels, d)
            self.register_buffer(
                "pos_embed", sincos_pos_embed_2d(grid, grid, d)[None], persistent=False
            )
            self.queries = nn.Parameter(torch.zeros(1, arch.queries, d))
            nn.init.trunc_normal_(self.queries, std=0.02)
            self.decoder = _decoder(arch, final_norm=True)
            self.cam_head = _card_mlp(d + CLIFF_DIM, CARD_HEAD_HIDDEN, 3)
            self.pose_head = _card_mlp(d, CARD_HEAD_HIDDEN, POSE_DIM)
            self.scale_head = _card_mlp(d, CARD_HEAD_HIDDEN, SCALE_DIM)
            self.shape_head = _card_mlp(d, CARD_HEAD_HIDDEN, SHAPE_DIM)
            joint_in = CARD_JOINT_QUERIES * d
            self.joints3d_head = _card_mlp(joint_in, CARD_HEAD_HIDDEN, NUM_JOINTS * 3)
            self.joints2d_head = _card_mlp(joint_in, CARD_HEAD_HIDDEN, NUM_JOINTS * 2)
            with torch.no_grad():
                self.cam_head[-1].bias.copy_(torch.tensor([0.0, 0.0, INIT_DEPTH_M]))

        def forward(
            self, image: torch.Tensor, cliff_cond: torch.Tensor
        ) -> tuple[torch.Tensor, ...]:
            """``image`` (N,3,S,S), ``cliff_cond`` (N,3) -> the 5 contract outputs."""
            feat = self.backbone(image)[-1]  # (N, C, S/32, S/32)
            tokens = self.input_proj(feat.flatten(2).transpose(1, 2)) + self.pos_embed
            queries = self.queries.expand(image.shape[0], -1, -1)
            q = self.decoder(queries, tokens)  # (N, 9, d_model)
            cam_trans = self.cam_head(torch.cat([q[:, 0], cliff_cond], dim=1))
            mhr_params = torch.cat([self.pose_head(q[:, 1]), self.scale_head(q[:, 2])], dim=1)
            shape_params = self.shape_head(q[:, 3])
            joint_tokens = q[:, 4 : 4 + CARD_JOINT_QUERIES].flatten(1)
            joints_3d = self.joints3d_head(joint_tokens).unflatten(1, (NUM_JOINTS, 3))
            joints_2d = self.joints2d_head(joint_tokens).unflatten(1, (NUM_JOINTS, 2))
            return mhr_params, shape_params, cam_trans, joints_2d, joints_3d

    return InstantHMRCard


def module_class(layout: str) -> Any:
    """The module class of a layout name (``released`` or ``card``)."""
    return released_class() if layout == "released" else card_class()
