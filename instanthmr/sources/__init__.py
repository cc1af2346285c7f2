"""The sources stage: frames from images, folders, video files, cameras and streams.

- ``base``: :class:`Frame`, :class:`FrameSource` and the sources' errors;
- ``files``: :func:`open_source`, images, folders and video files (container timestamps);
- ``live``: cameras and network streams through a latest-frame reader thread.
"""

from __future__ import annotations

from .. import lazy_exports

_EXPORTS = {
    "Frame": "instanthmr.sources.base",
    "FrameSource": "instanthmr.sources.base",
    "SourceError": "instanthmr.sources.base",
    "CameraNotFoundError": "instanthmr.sources.base",
    "open_source": "instanthmr.sources.files",
    "sample_video_path": "instanthmr.sources.files",
    "read_image": "instanthmr.sources.files",
    "bgr_to_rgb": "instanthmr.sources.base",
    "ImageSource": "instanthmr.sources.files",
    "VideoSource": "instanthmr.sources.files",
    "LatestFrameReader": "instanthmr.sources.live",
    "LiveSource": "instanthmr.sources.live",
    "open_camera": "instanthmr.sources.live",
    "open_stream": "instanthmr.sources.live",
}

__getattr__ = lazy_exports("instanthmr.sources", _EXPORTS)
