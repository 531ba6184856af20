"""Task metrics with the paper's exact definitions (§4, §5.2).

Every metric is a :class:`torchmetrics.Metric`: it accumulates over batches and, under DDP,
over processes (states are summed or concatenated across ranks at ``compute``). The same classes
serve training, evaluation and the tests. Every ratio (mIoU, accuracies, % within a threshold,
the saliency F-measure) is in percent, as the paper reports it; angles are in degrees
(:data:`UNITS`). The normals' ``encoded_*`` metrics are the released code's angles between 8-bit
encoded vectors (:mod:`nddr.tasks.metrics.normals`).
"""

from nddr.tasks.metrics.classification import AccuracyMetric, AgeMetric
from nddr.tasks.metrics.depth import DepthMetric
from nddr.tasks.metrics.gain import GAIN_CONVENTIONS, multi_task_gain
from nddr.tasks.metrics.normals import NormalsMetric, angle_error, decode_normals, encode_normals
from nddr.tasks.metrics.regression import RegressionMetric
from nddr.tasks.metrics.saliency import SaliencyMetric
from nddr.tasks.metrics.segmentation import SegmentationMetric

UNITS: dict[str, str] = {
    key: unit
    for metric in (
        SegmentationMetric,
        NormalsMetric,
        DepthMetric,
        SaliencyMetric,
        AccuracyMetric,
        AgeMetric,
        RegressionMetric,
    )
    for key, unit in metric.units.items()
}
"""The unit suffix of each metric key (``"%"``, ``"°"``, ``" years"``); depth errors are in the
dataset's depth unit (metres on NYUv2) and regression errors in the target's, so they have none."""

__all__ = [
    "GAIN_CONVENTIONS",
    "UNITS",
    "AccuracyMetric",
    "AgeMetric",
    "DepthMetric",
    "NormalsMetric",
    "RegressionMetric",
    "SaliencyMetric",
    "SegmentationMetric",
    "angle_error",
    "decode_normals",
    "encode_normals",
    "multi_task_gain",
]
