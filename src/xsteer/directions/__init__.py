"""Safety directions: the `Direction` / `DirectionSet` types and the estimators that make them."""

from xsteer.directions.direction import CONVENTION, Direction, DirectionSet, load_directions
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
    "get_estimator",
    "load_directions",
    "mean_difference",
    "pca_difference",
    "probe_direction",
    "random_direction",
]
