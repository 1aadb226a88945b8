"""Sample-quality metrics that need no downloaded weights.

* ``core``: the metric math on plain arrays (Fréchet distance, Inception Score, class
  histogram and KL to uniform, modes covered, k-NN precision/recall, label accuracy, toy mode
  coverage);
* ``classifier``: the LeNet classifiers minigan trained itself (``scripts/train_classifier.py``),
  shipped in ``minigan/weights/`` with pinned SHA-256s;
* ``evaluate``: ``evaluate_generator`` (``--eval-every`` during training) and
  ``eval_checkpoint`` (``minigan eval``), each score beside its real-data floor.
"""
from .classifier import LeNet, WeightsError, features_and_probs, load_classifier
from .core import (
                   MODE_THRESHOLD_FRACTION,
                   class_histogram,
                   feature_stats,
                   fid_from_features,
                   frechet_distance,
                   inception_score,
                   kl_to_uniform,
                   knn_radii,
                   label_accuracy,
                   modes_covered,
                   precision_recall,
                   toy_metrics,
)
from .evaluate import (
                   eval_checkpoint,
                   evaluate_generator,
                   evaluate_samples,
                   format_table,
                   real_floor,
)

__all__ = [
                   "MODE_THRESHOLD_FRACTION",
                   "LeNet",
                   "WeightsError",
                   "class_histogram",
                   "eval_checkpoint",
                   "evaluate_generator",
                   "evaluate_samples",
                   "feature_stats",
                   "features_and_probs",
                   "fid_from_features",
                   "format_table",
                   "frechet_distance",
                   "inception_score",
                   "kl_to_uniform",
                   "knn_radii",
                   "label_accuracy",
                   "load_classifier",
                   "modes_covered",
                   "precision_recall",
                   "real_floor",
                   "toy_metrics",
]
