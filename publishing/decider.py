"""The one keep-or-blur decider: detect every face of a photo and match it to the gallery.

`publish` (in its workers), ``check``, the review flow and the web service all decide with
an `AnalysingDecider`, so a photo gets exactly the same decision whichever job sees it. A
`Decider` is any callable of that shape; review's verdicts are one too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.analysis import Gallery, analyse
from pipeline.detection import DetectionSettings, DetectionStage
from pipeline.loading import LoadedImage
from pipeline.matching import FaceDecision, MatchSettings

# Decides keep or blur for every face of one loaded photo (the path is for its records).
Decider = Callable[[Path, LoadedImage], list[FaceDecision]]


class AnalysingDecider:
    """Detect every face and decide keep or blur for each (see `pipeline.analysis.analyse`).

    The detection stage is made on first use (or shared, when ``stage`` is given, as the
    web service does), so the decider pickles to worker processes without its models.
    """

    def __init__(
        self,
        gallery: Gallery,
        detection: DetectionSettings,
        matching: MatchSettings,
        *,
        stage: DetectionStage | None = None,
    ) -> None:
        self.gallery = gallery
        self.detection = detection
        self.matching = matching
        self._stage = stage

    def __call__(self, photo: Path, loaded: LoadedImage) -> list[FaceDecision]:
        if self._stage is None:
            self._stage = DetectionStage(self.detection)
        # analyse() computes no face template for a face that will be blurred anyway.
        return analyse(
            loaded.pixels,
            self._stage,
            self.gallery,
            self.matching,
            orientation_known=loaded.orientation_tagged,
        )

    def __getstate__(self) -> dict[str, object]:
        # The models stay behind: each worker process loads its own, once.
        return {**self.__dict__, "_stage": None}
