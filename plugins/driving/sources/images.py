"""Image folders and globs for the driving plugin: the core's one
image-folder source (:class:`perception.sources.ImageSequenceSource`:
name order, sidecar CSV timestamps, 8/16 bit, stride), opened at the
driving priority.

Overrides the core's image opener (priority 200 > 0; DICOM's 300 still
wins) and also accepts an image path that does not exist yet, so that
``open()`` reports it by name.
"""
from __future__ import annotations

from perception.registry import SOURCES
from perception.sources import (
    IMAGE_SUFFIXES,
    SIDECAR_NAME,
    FrameSource,
    ImageSequenceSource,
    SourceOpener,
    find_sidecar,
    list_images,
    read_sidecar,
)

__all__ = ['ImageFolderSource', 'ImageFolderOpener', 'SIDECAR_NAME',
           'find_sidecar', 'read_sidecar']


class ImageFolderSource(ImageSequenceSource):
    """The core's image-folder source with the driving plugin's keyword
    order (``uri, fps, raw, camera, sidecar, stride, timeout_s``); see
    :class:`perception.sources.ImageSequenceSource`."""

    def __init__(self, uri: str, fps: float = 10.0, raw: bool = False,
                 camera: str | None = None, sidecar: str | bool | None = None,
                 stride: int = 1, timeout_s: float | None = None) -> None:
        super().__init__(uri, None, fps, raw, camera, timeout_s, sidecar,
                         stride)


@SOURCES.register_module()
class ImageFolderOpener(SourceOpener):
    """Image files, folders and globs, with sidecar CSV timestamps."""

    priority = 200

    def can_open(self, uri: str) -> bool:
        if '://' in uri:
            return False
        if uri.lower().endswith(IMAGE_SUFFIXES):
            return True  # a missing image is reported by open(), by name
        return bool(list_images(uri))

    def open(self, uri: str, **options) -> FrameSource:
        return ImageFolderSource(uri, **options)
