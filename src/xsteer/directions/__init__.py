"""Safety directions: the `Direction` / `DirectionSet` types and the estimators that make them.

What does not live here: reading a model (`xsteer.encoders`), carrying a direction into another
model's space (`xsteer.align`), applying it (`xsteer.steer`, `xsteer.pipelines`)."""

from xsteer.directions.direction import CONVENTION, Direction, DirectionSet, load_directions
from xsteer.directions.ensemble import ensemble
from xsteer.directions.estimators import (
    ESTIMATORS,
    check_pairs,
    get_estimator,
    mean_difference,
    pca_difference,
    probe_direction,
    random_direction,
)

__all__ = [
    "CONVENTION",
    "ESTIMATORS",
    "Direction",
    "DirectionSet",
    "check_pairs",
    "ensemble",
    "get_estimator",
    "load_directions",
    "mean_difference",
    "pca_difference",
    "probe_direction",
    "random_direction",
]
