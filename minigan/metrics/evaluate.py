"""Scoring generators: ``evaluate_generator`` during training, ``eval_checkpoint`` for the CLI.

Image datasets (MNIST, Fashion-MNIST) are scored in the shipped classifier's feature space
against the test split; the 2-D toys (ring8, grid25) against their known mixture centres. Every
score comes with its *real-data floor*: the same metric computed on real data (train images
against test images, or the test images alone), i.e. what a perfect generator would get with
the same sample sizes (at most the test split's). For samples of another size than the
classifier's 28x28 the floor's real images take the same resizing as the samples. FID is
biased upwards by finite samples, so "FID 3" means little without knowing that real data
itself scores ~1 here.
"""
from __future__ import annotations

import json
import math
import sys

import numpy as np

from .. import backend
from ..autograd import Tensor
from . import core
from .classifier import IMAGE_SIZE, features_and_probs, load_classifier

__all__ = [
    "IMAGE_DATASETS",
    "TOY_DATASETS",
    "canonical_name",
    "eval_checkpoint",
    "evaluate_generator",
    "evaluate_samples",
    "format_table",
    "image_metrics",
    "metrics_kind",
    "real_floor",
    "toy_points_metrics",
]

IMAGE_DATASETS = ("mnist", "fashion-mnist")
TOY_DATASETS = ("ring8", "grid25")
MAX_SPLITS = 10   # Inception Score splits, as in Salimans et al.
PR_K = 3          # neighbours for precision/recall, as in Kynkäänniemi et al.
EVAL_SEED_OFFSET = 7919  # eval noise differs from the training noise but is fixed per run

# Classifiers and real-data features are costly (20k forward passes on a CPU); training calls
# evaluate_generator every --eval-every steps, so they are kept for the life of the process.
_CLASSIFIERS: dict = {}
_REFERENCES: dict = {}
_warned: set = set()


def canonical_name(name) -> str:
    """"Fashion_MNIST", "fashion-mnist", "FashionMNIST" -> "fashion-mnist"; others lowercased."""
    n = str(name).lower().replace("_", "-")
    return "fashion-mnist" if n in ("fashionmnist", "fashion-mnist", "fmnist") else n


def _classifier(name: str, device: str):
    key = (name, device)
    if key not in _CLASSIFIERS:
        _CLASSIFIERS[key] = load_classifier(name, device)
    return _CLASSIFIERS[key]


def _load_split(name: str, split: str, root=None):
    from .. import data

    fn = {"mnist": data.mnist, "fashion-mnist": data.fashion_mnist}[name]
    return fn(split, root=root)


# ----------------------------------------------------------------------------- images

class _ImageReference:
    """The real side of every image metric: the first ``n`` test images' classifier outputs
    and statistics, and the real-data floor."""

    def __init__(self, name: str, n: int, device: str, root=None):
        self.name = name
        test_x, test_y = _load_split(name, "test", root)
        n = min(n, len(test_x))
        self.model = _classifier(name, device)
        self.feats, self.probs = features_and_probs(self.model, test_x[:n])
        self.labels = np.asarray(test_y[:n])
        self.stats = core.feature_stats(self.feats)
        self.n = n
        self.root = root
        self._floors = {}  # sample size (None: the classifier's 28) -> the floor

    def floor(self, size: int | None = None) -> dict:
        """Real-data scores: n random train images against the n test images for the two-set
        metrics (FID, precision/recall), the test images alone for the one-set metrics, and
        the classifier's accuracy on them for label accuracy. ``n`` says how many.

        ``size``: the samples' side when it is not the classifier's 28. A perfect generator
        trained at that size makes the real images resized to it, which the scoring resizes
        back to 28 (a blur the classifier's features notice: about 44 FID points at 32 px),
        so the floor is then the train images taken through that same round trip and scored
        exactly as samples, one-set metrics included."""
        size = None if size in (None, IMAGE_SIZE) else int(size)
        if size not in self._floors:
            from ..data import resize_images

            train_x, _ = _load_split(self.name, "train", self.root)
            pick = np.random.default_rng(0).choice(len(train_x), min(self.n, len(train_x)),
                                                   replace=False)
            real = train_x[np.sort(pick)]
            if size is not None:  # as load_dataset(image_size=size) gives them to training
                real = resize_images(real, size)
            train_feats, train_probs = features_and_probs(self.model, real)
            floor = _class_scores(self.probs if size is None else train_probs)
            floor["fid"] = core.frechet_distance(*core.feature_stats(train_feats), *self.stats)
            floor["precision"], floor["recall"] = core.precision_recall(self.feats, train_feats,
                                                                        k=PR_K)
            floor["label_accuracy"] = core.label_accuracy(self.probs, self.labels)
            floor["n"] = len(real)
            if size is not None:
                floor["size"] = size
            self._floors[size] = floor
        return dict(self._floors[size])


def _reference(name: str, n: int, device: str, root=None) -> _ImageReference:
    key = (name, min(n, 10000), device, None if root is None else str(root))
    if key not in _REFERENCES:
        _REFERENCES[key] = _ImageReference(name, n, device, root)
    return _REFERENCES[key]


def _class_scores(probs: np.ndarray, with_histogram: bool = False) -> dict:
    """The metrics that need only the classifier's outputs on one set; ``with_histogram`` adds
    the per-class lists class_histogram and confident_per_class."""
    k = probs.shape[1]
    hist = core.class_histogram(probs, k)
    # 10 splits, as Salimans et al.; fewer than 20 samples take fewer splits of at least two
    # samples each (a split of one has a KL of 0: the score would be exactly 1)
    splits = max(1, min(MAX_SPLITS, len(probs) // 2))
    is_mean, is_std = core.inception_score(probs, splits=splits)
    confident, per_class = core.confident_shares(probs, core.CONFIDENT_P)
    out = {"is": is_mean, "is_std": is_std, "is_splits": splits,
           "class_kl": core.kl_to_uniform(hist),
           "modes_covered": core.modes_covered(hist, len(probs)), "num_classes": k,
           "confident": confident, "confident_min_class": float(per_class.min()),
           "confident_weakest": int(per_class.argmin())}
    if with_histogram:
        out["class_histogram"] = hist.tolist()
        out["confident_per_class"] = [round(float(v), 4) for v in per_class]
    return out


def image_metrics(images, name: str, labels=None, device: str = "cpu", root=None,
                  with_histogram: bool = False) -> dict:
    """All image metrics of generated ``images`` (floats in [-1, 1] or uint8) for dataset
    ``name``: fid, is, is_std, class_kl, modes_covered, num_classes, confident,
    confident_min_class, confident_weakest, precision, recall, n, and label_accuracy when the
    conditioning ``labels`` are given (``with_histogram`` adds class_histogram and
    confident_per_class)."""
    ref = _reference(name, len(images), device, root)
    feats, probs = features_and_probs(ref.model, images)
    out = {"n": len(images)}
    out["fid"] = core.frechet_distance(*core.feature_stats(feats), *ref.stats)
    out.update(_class_scores(probs, with_histogram))
    out["precision"], out["recall"] = core.precision_recall(ref.feats, feats, k=PR_K)
    if labels is not None:
        out["label_accuracy"] = core.label_accuracy(probs, backend.to_numpy(labels))
    return out


# ----------------------------------------------------------------------------- toys

def _toy_spec(name: str, dataset=None):
    """(centres K x 2, std) of a toy mixture: the dataset object's own when it carries them
    (a run may have changed the std), else the published ones from minigan.data."""
    from ..data import TOY_STD, toy_centers

    centers = getattr(dataset, "centers", None)
    std = getattr(dataset, "std", None)
    if centers is None:
        centers = toy_centers(name)
    if std is None:
        std = TOY_STD[name]
    return np.asarray(backend.to_numpy(centers), np.float64), float(std)


def toy_points_metrics(points, name: str, dataset=None) -> dict:
    """modes_covered, num_modes, high_quality and kl_modes of generated 2-D ``points``."""
    centers, std = _toy_spec(name, dataset)
    out = {"n": len(points)}
    out.update(core.toy_metrics(np.asarray(points).reshape(len(points), -1), centers, std))
    return out


def _toy_floor(name: str, n: int, dataset=None) -> dict:
    """The toy metrics of n points of the mixture's test split (true samples)."""
    from ..data import load_dataset

    real = load_dataset(name, split="test", n=n)
    return toy_points_metrics(real.data, name, dataset)


# ----------------------------------------------------------------------------- entry points

def metrics_kind(name) -> str | None:
    """"image", "toy" or None (no metrics for this dataset)."""
    n = canonical_name(name)
    return "image" if n in IMAGE_DATASETS else "toy" if n in TOY_DATASETS else None


def evaluate_samples(samples, dataset_name, labels=None, device: str = "cpu", root=None,
                     dataset=None, with_histogram: bool = False) -> dict:
    """Metrics of generated samples (images or 2-D points) for a dataset that has metrics."""
    name = canonical_name(dataset_name)
    kind = metrics_kind(name)
    _check_finite(samples)
    if kind == "image":
        return image_metrics(samples, name, labels, device, root, with_histogram)
    if kind == "toy":
        return toy_points_metrics(samples, name, dataset)
    raise ValueError(_no_metrics_message(dataset_name))


class NonFiniteSamples(ValueError):
    """Samples holding NaN or inf (a diverged generator): no score would mean anything."""

    def __init__(self, bad: int, n: int):
        super().__init__(f"{bad} of the {n} samples hold NaN or inf values (the generator has "
                         "diverged?); they cannot be scored")
        self.bad, self.n = bad, n


def _check_finite(samples) -> None:
    """NonFiniteSamples when any sample holds NaN or inf: tested where the samples are (on the
    GPU, one number comes back, not every sample)."""
    x = samples.data if isinstance(samples, Tensor) else samples
    if not hasattr(x, "dtype"):
        x = np.asarray(x)
    if x.dtype.kind != "f":
        return
    xp = backend.get_array_module(x)
    bad = int((~xp.isfinite(x.reshape(len(x), -1))).any(axis=1).sum())
    if bad:
        raise NonFiniteSamples(bad, len(x))


def real_floor(dataset_name, n: int = 10000, device: str = "cpu", root=None,
               dataset=None, size: int | None = None) -> dict:
    """The same metrics on real data, as the floor beside each score; for images of another
    side than 28 (``size``), real images taken through the same resizing (see
    ``_ImageReference.floor``). The floor holds ``n``, the real images it was computed on
    (at most the test split's 10000)."""
    name = canonical_name(dataset_name)
    kind = metrics_kind(name)
    if kind == "image":
        return _reference(name, n, device, root).floor(size)
    if kind == "toy":
        return _toy_floor(name, n, dataset)
    raise ValueError(_no_metrics_message(dataset_name))


def _no_metrics_message(name) -> str:
    return (f"no sample-quality metrics for dataset {name!r}: metrics exist for "
            f"{', '.join(IMAGE_DATASETS)} (classifier-based) and {', '.join(TOY_DATASETS)} "
            "(2-D toys)")


def _sample(G, z_dim: int, n: int, seed: int, num_classes: int):
    """n samples from G with fixed seeded noise; balanced labels for a conditional G."""
    from ..gan.trainer import generate_images
    from ..kernels.random import Generator

    device = G.device
    z = Tensor(Generator(seed, device).normal((n, z_dim), dtype=np.float32))
    labels = None
    if num_classes:
        labels = np.arange(n, dtype=np.int64) % num_classes
    x = generate_images(G, z, None if labels is None else backend.to_device(labels, device))
    return x, labels


def evaluate_generator(G, cfg, num_classes: int, dataset, n: int = 10000) -> dict:
    """Metrics of G's samples as a flat dict of floats and ints, for metrics.jsonl.

    The noise is drawn from ``cfg.seed`` each time, so successive evaluations of one run see
    the same z and differ only through G. Returns {} (with one warning) for a dataset without
    metrics, so that --eval-every never stops a run.
    """
    name = getattr(dataset, "name", cfg.dataset)
    if metrics_kind(name) is None:
        if name not in _warned:
            _warned.add(name)
            print(f"--eval-every: {_no_metrics_message(name)}; nothing is evaluated",
                  file=sys.stderr)
        return {}
    k = num_classes if cfg.preset == "cgan" else 0
    samples, labels = _sample(G, cfg.z_dim, n, cfg.seed + EVAL_SEED_OFFSET, k)
    try:
        return evaluate_samples(samples, name, labels, G.device,
                                getattr(cfg, "data_dir", None), dataset)
    except NonFiniteSamples as exc:  # logged as such; --eval-every never stops a run
        print(f"--eval-every: {exc}", file=sys.stderr)
        return {"nonfinite_samples": exc.bad}


def eval_checkpoint(path, n: int = 10000, device="auto", seed: int = 0,
                    as_json: bool = False, data_dir=None) -> int:
    """``minigan eval``: score a checkpoint's generator; print a JSON line and (unless
    ``as_json``) a table with the real-data floor. Returns the exit code.

    The real data (test split) comes from ``data_dir`` when given, else from the folder the run
    was trained from (``config["data_dir"]``), else from the usual resolution (MINIGAN_DATA,
    the cache, a download)."""
    from ..gan.run import load_generator

    device = backend.normalize_device(device)
    G, meta = load_generator(path, device)
    cfg = meta["config"]
    name = meta.get("dataset_name") or cfg.get("dataset")
    if metrics_kind(name) is None:
        print(f"minigan eval: {_no_metrics_message(name)}", file=sys.stderr)
        return 2
    if n < 2 * PR_K:
        print(f"minigan eval: --n must be at least {2 * PR_K}", file=sys.stderr)
        return 2
    k = meta.get("num_classes", 0) if cfg.get("preset") == "cgan" else 0
    samples, labels = _sample(G, cfg["z_dim"], n, seed, k)
    root = data_dir if data_dir is not None else cfg.get("data_dir")
    metrics = evaluate_samples(samples, name, labels, device, root, with_histogram=True)
    size = samples.shape[-1] if metrics_kind(name) == "image" and samples.ndim == 4 else None
    floor = real_floor(name, n, device, root, size=size)
    if k == 0:
        floor.pop("label_accuracy", None)
    record = {"checkpoint": str(path), "step": meta.get("step"), "preset": cfg.get("preset"),
              "dataset": canonical_name(name), "n": n, "seed": seed, "metrics": metrics,
              "real_floor": floor}
    print(json.dumps(record), flush=True)
    if not as_json:
        print(format_table(metrics, floor))
    return 0


# ----------------------------------------------------------------------------- the table

def _fmt(v, spec=".3f") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec) if isinstance(v, float) else str(v)


def format_table(metrics: dict, floor: dict) -> str:
    """Each score beside its real-data floor, with the direction that is better."""
    rows = []

    def add(label, key, better, spec=".3f", std_key=None, total_key=None, suffix_key=None):
        if key not in metrics:
            return
        cells = []
        for src in (metrics, floor):
            if key not in src:
                cells.append("-")
                continue
            text = _fmt(src[key], spec)
            if std_key and std_key in src:
                text += f" ± {_fmt(src[std_key], spec)}"
            if total_key and total_key in src:
                text += f"/{src[total_key]}"
            if suffix_key and suffix_key in src:
                text += f" (class {src[suffix_key]})"
            cells.append(text)
        rows.append((label, *cells, better))

    add("FID (classifier features)", "fid", "lower")
    add(f"Inception Score ({metrics.get('is_splits', MAX_SPLITS)} splits)", "is", "higher",
        ".2f", std_key="is_std")
    add("class KL to uniform (nats)", "class_kl", "lower", ".4f")
    add("classes covered", "modes_covered", "higher", total_key="num_classes")
    add(f"confident share (p >= {core.CONFIDENT_P})", "confident", "higher")
    add("weakest class, confident / fair share", "confident_min_class", "higher",
        suffix_key="confident_weakest")
    add(f"precision (k={PR_K})", "precision", "higher")
    add(f"recall (k={PR_K})", "recall", "higher")
    add("label accuracy", "label_accuracy", "higher")
    if "num_modes" in metrics:
        rows = [r for r in rows if r[0] != "classes covered"]
        add("modes covered (3 sigma)", "modes_covered", "higher", total_key="num_modes")
        add("high-quality share (3 sigma)", "high_quality", "higher")
        add("mode KL to uniform (nats)", "kl_modes", "lower", ".4f")
    header = ("metric", "model", "real data", "better")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(4)]
    lines = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for row in [header] + rows]
    lines.insert(1, "-" * len(lines[0]))
    if "class_histogram" in metrics:
        lines.append("class histogram: " + " ".join(str(c) for c in metrics["class_histogram"]))
    if "confident_per_class" in metrics:
        lines.append("confident per class / fair share: "
                     + " ".join(f"{v:.2f}" for v in metrics["confident_per_class"]))
    if "n" in floor and "n" in metrics and floor["n"] != metrics["n"]:
        lines.append(f"real data: {floor['n']} images (the test split's size), the model: "
                     f"{metrics['n']} samples")
    if "size" in floor:
        lines.append(f"real data: train images resized to {floor['size']}x{floor['size']} "
                     "and scored as the samples are (back to 28x28)")
    return "\n".join(lines)
