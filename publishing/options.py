"""What one publish job does: `PublishOptions`, built once by the caller.

A frozen dataclass with keyword defaults; the CLI (``commands``), the web service and the
review flow all build it the same way (`publishing.options.PublishOptions(...)` with
keywords only), so a new option is one field here and one flag at each edge.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType

from consent.registry import Purpose
from pipeline.detection import DetectionSettings
from pipeline.matching import MatchSettings
from pipeline.redaction import RedactionStyle
from pipeline.writing import OutputFormat

# The long side (pixels) a purpose publishes at by default; None: the photo's own size.
# A face's identifiability depends on its size in the published photo, and websites and
# social media scale photos down anyway (docs/detection.md, "Resolution by purpose");
# press and prospectus print, and a noticeboard may too.
PURPOSE_MAX_SIDE: Mapping[Purpose, int | None] = MappingProxyType(
    {
        Purpose.WEBSITE: 2560,
        Purpose.SOCIAL_MEDIA: 2560,
        Purpose.PRESS: None,
        Purpose.PROSPECTUS: None,
        Purpose.INTERNAL_DISPLAY: None,
    }
)
# ``PublishOptions.max_side`` value for "the photo's own size, whatever the purpose".
FULL_SIZE = 0


def default_operator() -> str:
    """The OS user running the job, the audit's default operator."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return f"uid-{os.getuid()}"


@dataclass(frozen=True, kw_only=True)
class PublishOptions:
    """What one publish job does. ``on`` is the date consent is judged on (today).

    ``workers`` is the number of processes (None: one per usable core, as many as the
    available memory allows at about 1.6 GB each, see docs/throughput.md).

    ``max_side`` is the long side of the published photos in pixels: None (default) is
    the purpose's (:data:`PURPOSE_MAX_SIDE`), :data:`FULL_SIZE` (0) the photo's own; a
    photo already smaller is never enlarged. Faces are detected on the photo at that size,
    so detection always runs at least at the size that is published.
    """

    purpose: Purpose
    out_dir: Path
    event: str = "event"
    operator: str = field(default_factory=default_operator)
    style: RedactionStyle = RedactionStyle.BLUR
    output_format: OutputFormat = OutputFormat.JPEG
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    matching: MatchSettings = field(default_factory=MatchSettings)
    on: date = field(default_factory=date.today)
    # The pupils expected in the photos (from --class / --pupils); None means everyone.
    candidates: frozenset[str] | None = None
    # Where the photos will be put (a URL or a name such as "newsletter"), so a takedown
    # can say where to remove them from.
    destination: str | None = None
    # True for the web service's uploads: the input and output live in a temporary folder
    # removed after the reply, so a takedown must not point at them (issue 14).
    via_service: bool = False
    workers: int | None = None
    # Captions: per photo from a --captions file (keys as in the file: a file name or a
    # path relative to the input folder), one --caption for the whole batch, and the
    # caption each photo carries in its own IPTC/XMP/EXIF/PNG fields. The first that gives
    # a photo a caption wins, in that order.
    captions: Mapping[str, str] | None = None
    caption: str | None = None
    embedded_captions: bool = True
    max_side: int | None = None

    def __post_init__(self) -> None:
        if self.max_side is not None and self.max_side < 0:
            raise ValueError(
                f"max_side must be 0 (full size) or a number of pixels, not {self.max_side}"
            )

    @property
    def output_max_side(self) -> int | None:
        """The long side photos are published at (None: each photo's own size)."""
        side = PURPOSE_MAX_SIDE[self.purpose] if self.max_side is None else self.max_side
        return side or None
