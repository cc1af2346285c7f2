"""Batch processing of many videos: resumable on one machine, scaled out on Ray.

``instanthmr batch INPUT... --output DIR`` and :func:`run_batch` process every video (and
image) found in the inputs, one task per video, and record each in ``DIR/manifest.jsonl``
so a re-run skips what is done. Guide: ``docs/batch.md``.

Modules: :mod:`.inputs` (discovery and output names), :mod:`.options` (what is computed
and its hash), :mod:`.manifest`, :mod:`.task` (one input), :mod:`.worker` (a pipeline
built once), :mod:`.local` and :mod:`.ray_engine` (the engines), :mod:`.summary` (the
report), :mod:`.runner` (:func:`run_batch`).
"""

from __future__ import annotations

from .inputs import VIDEO_EXTENSIONS, InputError, InputItem, discover_inputs, output_stem
from .manifest import MANIFEST_NAME, Manifest, read_manifest
from .options import FORMATS, BatchConfigError, BatchOptions
from .runner import ENGINES, run_batch
from .summary import BatchReport

__all__ = [
    "ENGINES",
    "FORMATS",
    "MANIFEST_NAME",
    "VIDEO_EXTENSIONS",
    "BatchConfigError",
    "BatchOptions",
    "BatchReport",
    "InputError",
    "InputItem",
    "Manifest",
    "discover_inputs",
    "output_stem",
    "read_manifest",
    "run_batch",
]
