"""The named InstantHMR architectures the project can build and export (no torch here).

- ``released`` (the default): the network of the published ``instanthmr.onnx``. timm
  ``repvit_m2_3`` backbone (640 channels at stride 32), its 7x7 features projected to
  ``d_model = 512`` plus a fixed 2D sin-cos positional embedding; 141 learnable queries
  (1 global, 70 for the 2D keypoints, 70 for the 3D keypoints), to which the CLIFF vector,
  projected by an MLP 3 -> 128 -> 512, is added; a 4-layer pre-LN
  ``nn.TransformerDecoder`` (8 heads, feed-forward 2048, GELU) cross-attending to the
  memory; the global query gives ``mhr_params``, ``shape_params`` and ``cam_trans`` through
  one linear head, each 2D query one keypoint (512 -> 256 -> 2), each 3D query one 3D
  keypoint (512 -> 256 -> 3). About 40 M parameters. Source of the configuration: the
  reference's training notebook (``notebooks/distill_transformer_decoder.ipynb``, cells 1
  and 7) and the size of the published file (80.96 MB of fp16 weights); see the model
  contract's correction of 2026-12-06.
- ``card``: the smaller network the reference's ``docs/architecture.md`` describes (and
  this project exported until issue 22): ``repvit_m1_5``, d_model 256, 2 decoder layers,
  9 queries, about 17 M parameters, 4.6 GFLOP. Kept for tests that check plumbing only and
  for comparisons; every speed figure of the project is measured on ``released``.
- ``hgnetv2-b0``: upstream's newer "nano" family backbone (timm ``hgnetv2_b0``, 1024
  channels at stride 32) with the ``released`` decoder and heads: about 20 M parameters,
  most of them in the decoder, as upstream describes its nano. Upstream's exact nano
  decoder configuration is not published in the reference commit, so this entry is an
  approximation for timing, not a checkpoint format.

The PyTorch modules are in :mod:`instanthmr.export.nets`; :func:`instanthmr.export.model.
build_model` builds one by name.
"""

from __future__ import annotations

from dataclasses import dataclass

LAYOUTS = ("released", "card")


@dataclass(frozen=True)
class Architecture:
    """One named network configuration.

    Attributes:
        name: registry key, written into the ONNX metadata of every export.
        summary: one line for humans (banners, ``--help``).
        backbone: timm model name.
        backbone_channels: channels of the backbone's stride-32 feature map.
        d_model: token width of the decoder.
        heads: attention heads per decoder layer.
        layers: decoder layers.
        ffn: feed-forward width of each decoder layer.
        layout: ``released`` (1 global + 70 2D + 70 3D queries, CLIFF MLP added to the
            queries) or ``card`` (9 queries, CLIFF read by the camera head only).
        image_size: the crop size the network is built for (a multiple of 32).
    """

    name: str
    summary: str
    backbone: str
    backbone_channels: int
    d_model: int
    heads: int
    layers: int
    ffn: int
    layout: str
    image_size: int = 224

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.image_size % 32:
            raise ValueError(f"image_size must be a multiple of 32, got {self.image_size}")

    @property
    def queries(self) -> int:
        """Learnable query tokens of the decoder."""
        return 1 + 70 + 70 if self.layout == "released" else 9


ARCHITECTURES: dict[str, Architecture] = {
    "released": Architecture(
        "released",
        "the published instanthmr.onnx: RepViT-M2.3, 4-layer decoder of width 512, "
        "141 queries (about 40 M parameters)",
        "repvit_m2_3", 640, 512, 8, 4, 2048, "released",
    ),
    "card": Architecture(
        "card",
        "the model card's smaller network: RepViT-M1.5, 2-layer decoder of width 256, "
        "9 queries (about 17 M parameters; not the published file)",
        "repvit_m1_5", 512, 256, 4, 2, 1024, "card",
    ),
    "hgnetv2-b0": Architecture(
        "hgnetv2-b0",
        "HGNetV2-B0 backbone with the released decoder (about 20 M parameters; an "
        "approximation of upstream's nano family)",
        "hgnetv2_b0", 1024, 512, 8, 4, 2048, "released",
    ),
}  # fmt: skip
DEFAULT_ARCHITECTURE = "released"


def get_architecture(name: str | Architecture = DEFAULT_ARCHITECTURE) -> Architecture:
    """The registry entry for ``name`` (an :class:`Architecture` is returned as is).

    Raises:
        ValueError: an unknown name; the message lists the known ones.
    """
    if isinstance(name, Architecture):
        return name
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(
            f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}"
        ) from None
