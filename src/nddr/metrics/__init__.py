"""Task metrics with the paper's exact definitions (§4, §5.2).

Every metric is a :class:`torchmetrics.Metric`: it accumulates over batches and, under DDP,
over processes (states are summed or concatenated across ranks at ``compute``). The same classes
serve training, evaluation and the tests.
"""

from nddr.metrics.classification import AccuracyMetric, AgeMetric
from nddr.metrics.depth import DepthMetric
from nddr.metrics.gain import multi_task_gain
from nddr.metrics.normals import NormalsMetric, angle_error
from nddr.metrics.segmentation import SegmentationMetric

__all__ = [
    "AccuracyMetric",
    "AgeMetric",
    "DepthMetric",
    "NormalsMetric",
    "SegmentationMetric",
    "angle_error",
    "multi_task_gain",
]
