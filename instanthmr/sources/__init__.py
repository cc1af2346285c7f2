"""The sources stage: frames from images, folders, video files, cameras and streams.

- ``files``: :func:`open_source`, images, folders and video files (container timestamps);
- ``live``: cameras and network streams through a latest-frame reader thread.
"""

from __future__ import annotations

from .. import lazy_exports

_EXPORTS = {
    "Frame": "instanthmr.sources.files",
    "FrameSource": "instanthmr.sources.files",
    "SourceError": "instanthmr.sources.files",
    "CameraNotFoundError": "instanthmr.sources.files",
    "open_source": "instanthmr.sources.files",
    "sample_video_path": "instanthmr.sources.files",
    "read_image": "instanthmr.sources.files",
    "bgr_to_rgb": "instanthmr.sources.files",
    "ImageSource": "instanthmr.sources.files",
    "VideoSource": "instanthmr.sources.files",
    "LatestFrameReader": "instanthmr.sources.live",
    "LiveSource": "instanthmr.sources.live",
    "open_camera": "instanthmr.sources.live",
    "open_stream": "instanthmr.sources.live",
}

__getattr__ = lazy_exports("instanthmr.sources", _EXPORTS)
