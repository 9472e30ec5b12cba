"""HEIC/HEIF input (iPhone and iPad photos) through pillow-heif's Pillow plugin, and its
EXIF and XMP items (:func:`metadata_items`, read by `pipeline.formats.embedded`).

Registered lazily and once per process (:func:`register`), so importing the pipeline
changes no Pillow global; the first :func:`~pipeline.loading.load_image` call registers it,
in every worker process of a pool as well.

What the loader relies on (pillow-heif 1.8, libheif 1.23):

* ``n_frames`` counts the file's *top-level* images only. Thumbnails, depth maps and other
  auxiliary images hang off the primary image and are never top-level, so a portrait-mode
  photo is one frame while a burst or an image sequence is several.
* libheif applies the container's ``irot``/``imir``/``clap`` transforms while decoding
  (HEIF, ISO/IEC 23008-12, says readers must), and the plugin then resets the EXIF
  orientation to 1 in ``info["exif"]``, keeping the stored value in
  ``info["original_orientation"]``. The loader must therefore never apply the EXIF
  orientation to a HEIF a second time.
* The image size comes from the ``ispe`` property, read when the file is opened, so the
  pixel limit is checked before anything is decoded; libheif's own security limits
  (maximum image size, number of items) stay switched on.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator

# Pillow's format name for images opened by the plugin (HEIC and HEIF alike).
FORMAT = "HEIF"
# The metadata items libheif hands back (HEIF has no IPTC-IIM).
EXIF, XMP = "exif", "xmp"


def is_heif(data: bytes) -> bool:
    """An ISO BMFF file (its first box is ``ftyp``); libheif decides whether it is HEIF."""
    return data[4:8] == b"ftyp"


@functools.cache
def register() -> None:
    """Register the HEIF opener with Pillow (idempotent; decoding only, never thumbnails).

    ``thumbnails=False`` stops Pillow's ``draft()`` from silently decoding a thumbnail
    instead of the photo; depth and auxiliary images are not needed, so they are not
    read at all.
    """
    from pillow_heif import register_heif_opener

    register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


def metadata_items(data: bytes) -> Iterator[tuple[str, bytes]]:
    """``(EXIF or XMP, bytes)`` of the primary image's metadata items, without decoding
    any pixels. The EXIF bytes may start with ``Exif\\0\\0``. Raises whatever libheif
    raises on a file it cannot parse."""
    import pillow_heif

    heif_file = pillow_heif.open_heif(io.BytesIO(data))
    for kind in (EXIF, XMP):
        blob = heif_file.info.get(kind)
        if blob:
            yield kind, blob
