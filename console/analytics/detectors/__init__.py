"""Vectorised detectors: each looks at one aspect of a frame and returns findings.

A finding is a candidate anomaly for this tick only; `console.analytics.anomaly` turns the
stream of findings into anomalies with stable ids, start times and an end (debouncing,
confirmation and clearing live there, so every detector here can stay memory-light).
"""

from console.analytics.detectors.base import Finding
from console.analytics.detectors.series import SeriesDetector, SeriesSettings

__all__ = ["Finding", "SeriesDetector", "SeriesSettings"]
