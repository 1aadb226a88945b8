"""Sample-quality metric math in plain NumPy, independent of any model.

Everything here takes arrays (features, class probabilities, 2-D points) and returns numbers.
Statistics are computed in float64: a 128x128 covariance summed over 10k samples in float32
loses enough digits to move a small FID by whole units.

References:

* Fréchet distance: Heusel et al. 2017 (FID), on a classifier's features instead of Inception's.
* Inception Score: Salimans et al. 2016, exp(E_x KL(p(y|x) || p(y))), averaged over splits.
* Precision and recall: Kynkäänniemi et al. 2019, k-NN hyperspheres around each sample.
* Confident share: the fraction of samples the classifier is sure of (top probability at least
  0.9), overall and per class. A legibility measure: a malformed digit gets no sure class, while
  the Inception Score only rewards confidence on average and FID mixes it with diversity.
* Toy modes and "high-quality" samples: Metz et al. 2017 (unrolled GANs), Srivastava et al.
  2017 (VEEGAN): a sample is high quality when it lies within 3 standard deviations of a mode.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = [
    "CONFIDENT_P",
    "MODE_THRESHOLD_FRACTION",
    "class_histogram",
    "confident_shares",
    "feature_stats",
    "fid_from_features",
    "frechet_distance",
    "inception_score",
    "kl_to_uniform",
    "knn_radii",
    "label_accuracy",
    "modes_covered",
    "precision_recall",
    "toy_metrics",
]

# A class (or toy mode) counts as covered when it holds at least this fraction of its fair share
# n / K of the samples. One stray sample is not coverage: a collapsed generator still gets a few
# samples misclassified into every class, so "count >= 1" would report all modes almost always.
# With 10k samples and 10 classes the bar is 100 samples.
MODE_THRESHOLD_FRACTION = 0.1

# A sample is "confident" (legible) when the classifier gives its top class at least this
# probability. MNIST's own test digits reach it 97.6% of the time with the shipped classifier.
CONFIDENT_P = 0.9


def _as_2d_float64(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples, dims), got shape {a.shape}")
    return a


# ----------------------------------------------------------------------------- Fréchet distance

def feature_stats(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean vector and covariance (unbiased, float64) of an (N, D) feature array."""
    f = _as_2d_float64(feats, "feats")
    if f.shape[0] < 2:
        raise ValueError(f"feature_stats needs at least 2 samples, got {f.shape[0]}")
    mu = f.mean(axis=0)
    centred = f - mu
    sigma = centred.T @ centred / (f.shape[0] - 1)
    return mu, sigma


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    """The symmetric square root of a positive semi-definite matrix, by eigendecomposition.

    Rounding makes tiny eigenvalues of a rank-deficient covariance come out as -1e-12 and the
    like; they are clipped to 0 rather than turned into NaNs.
    """
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr sqrt(S1 S2), the squared Wasserstein-2 distance
    between two Gaussians.

    S1 S2 is not symmetric, so its square root is taken through the similar symmetric matrix
    sqrt(S1) S2 sqrt(S1): both have the same eigenvalues, all >= 0, hence
    Tr sqrt(S1 S2) = sum_i sqrt(eig_i(sqrt(S1) S2 sqrt(S1))). Two symmetric eigendecompositions
    replace scipy's sqrtm and never produce complex parts.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != mu1.shape * 2:
        raise ValueError(f"frechet_distance: shapes do not match: mu {mu1.shape} vs {mu2.shape}, "
                         f"sigma {s1.shape} vs {s2.shape}")
    root1 = _sqrt_psd(s1)
    m = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu1 - mu2
    fd = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    # Identical inputs give -1e-13 or so; a distance is never negative.
    return max(fd, 0.0)


def fid_from_features(feats1, feats2) -> float:
    """Fréchet distance between the Gaussians fitted to two (N, D) feature arrays."""
    return frechet_distance(*feature_stats(feats1), *feature_stats(feats2))


# ----------------------------------------------------------------------------- class statistics

def _check_probs(probs) -> np.ndarray:
    p = _as_2d_float64(probs, "probs")
    if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("probs must be rows of class probabilities (non-negative, summing to 1)")
    return p


def inception_score(probs, splits: int = 10) -> tuple[float, float]:
    """(mean, std) over ``splits`` equal parts of exp(E_x KL(p(y|x) || p(y))).

    1 when every sample has the same p(y|x) (e.g. all one class); K when samples are confident
    and spread evenly over K classes. Samples past the last full split are dropped, as in the
    reference implementation.
    """
    p = _check_probs(probs)
    n = p.shape[0]
    if splits < 1 or n < splits:
        raise ValueError(f"inception_score: need at least {splits} samples for {splits} splits, "
                         f"got {n}")
    part = n // splits
    # 0 * log 0 is taken as 0: the xlogy convention, done by masking instead of adding an eps
    # that would bias confident classifiers.
    logp = np.log(np.where(p > 0, p, 1.0))
    scores = []
    for i in range(splits):
        ps, lps = p[i * part:(i + 1) * part], logp[i * part:(i + 1) * part]
        py = ps.mean(axis=0)
        logpy = np.log(np.where(py > 0, py, 1.0))
        kl = (ps * (lps - logpy)).sum(axis=1).mean()
        scores.append(math.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def class_histogram(probs_or_preds, k: int) -> np.ndarray:
    """Counts (int64, length k) of predicted classes: argmax of (N, k) probabilities, or (N,)
    integer predictions as they are."""
    a = np.asarray(probs_or_preds)
    if a.ndim == 2:
        if a.shape[1] != k:
            raise ValueError(f"class_histogram: probabilities have {a.shape[1]} classes, k={k}")
        preds = a.argmax(axis=1)
    elif a.ndim == 1:
        preds = a.astype(np.int64)
    else:
        raise ValueError(f"class_histogram: expected (N, k) probabilities or (N,) predictions, "
                         f"got shape {a.shape}")
    if preds.size and (preds.min() < 0 or preds.max() >= k):
        raise ValueError(f"class_histogram: predictions outside [0, {k})")
    return np.bincount(preds, minlength=k).astype(np.int64)


def kl_to_uniform(hist) -> float:
    """KL(h || uniform) in nats for a histogram of counts or frequencies: 0 when balanced,
    log K when everything falls in one class."""
    h = np.asarray(hist, dtype=np.float64)
    if h.ndim != 1 or h.size == 0 or (h < 0).any() or h.sum() <= 0:
        raise ValueError("kl_to_uniform: expected a non-empty 1-D histogram with a positive sum")
    q = h / h.sum()
    nz = q > 0
    return float((q[nz] * np.log(q[nz] * h.size)).sum())


def modes_covered(hist, n: int | None = None,
                  threshold_fraction: float = MODE_THRESHOLD_FRACTION) -> int:
    """How many bins of ``hist`` (counts) hold at least ``threshold_fraction * n / K`` samples.

    ``n`` defaults to the histogram's total; pass the number of generated samples when the
    histogram counts only some of them (e.g. only the high-quality toy samples), so that a
    generator with few good samples does not get a lower bar.
    """
    h = np.asarray(hist, dtype=np.float64)
    if h.ndim != 1 or h.size == 0:
        raise ValueError("modes_covered: expected a non-empty 1-D histogram")
    total = float(h.sum()) if n is None else float(n)
    if total <= 0:
        return 0
    # max(.., 1): at least one sample, even for tiny n where the fraction rounds below it.
    need = max(threshold_fraction * total / h.size, 1.0)
    return int((h >= need - 1e-9).sum())


def confident_shares(probs, threshold: float = CONFIDENT_P) -> tuple[float, np.ndarray]:
    """(overall, per_class) for (N, K) class probabilities.

    ``overall`` is the fraction of the N samples whose top class has probability >= threshold.
    ``per_class[c]`` counts the confident samples of class c as a share of a uniform class's
    count N/K: 1.0 for every class when the classes are equally common and every sample is
    confident; 0.3 for class c when only 3% of all samples are sure-fire c's (with K = 10).
    Its minimum says how well the weakest class is drawn.
    """
    p = _check_probs(probs)
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"confident_shares: threshold must be in (0, 1], got {threshold}")
    n, k = p.shape
    if n == 0:
        raise ValueError("confident_shares: no samples")
    sure = p.max(axis=1) >= threshold
    counts = np.bincount(p.argmax(axis=1)[sure], minlength=k)
    return float(sure.mean()), counts * (k / n)


def label_accuracy(probs_or_preds, labels) -> float:
    """Fraction of samples whose predicted class equals the label asked for (conditional GAN)."""
    a = np.asarray(probs_or_preds)
    preds = a.argmax(axis=1) if a.ndim == 2 else a
    labels = np.asarray(labels)
    if preds.shape != labels.shape:
        raise ValueError(f"label_accuracy: {preds.shape[0]} predictions for "
                         f"{labels.shape[0]} labels")
    return float((preds == labels).mean())


# ----------------------------------------------------------------------------- precision/recall

def _pairwise_sq(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    # ||a||^2 + ||b||^2 - 2 a.b: one GEMM per chunk instead of an (n, m, D) difference tensor.
    d = (a * a).sum(axis=1)[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0, out=d)


def knn_radii(feats, k: int = 3, chunk: int = 1000) -> np.ndarray:
    """Squared distance from each sample to its k-th nearest neighbour in the same set, not
    counting the sample itself (duplicates of it do count, at distance 0)."""
    f = _as_2d_float64(feats, "feats")
    n = f.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"knn_radii: k must be in [1, {n - 1}] for {n} samples, got {k}")
    sq = (f * f).sum(axis=1)
    radii = np.empty(n)
    for i in range(0, n, chunk):
        d = _pairwise_sq(f[i:i + chunk], f, sq)
        rows = np.arange(d.shape[0])
        d[rows, rows + i] = np.inf  # exclude self
        radii[i:i + chunk] = np.partition(d, k - 1, axis=1)[:, k - 1]
    return radii


def precision_recall(real_feats, fake_feats, k: int = 3, chunk: int = 1000) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Each sample gets a hypersphere reaching to its k-th nearest neighbour within its own set.
    Precision is the share of fake samples inside at least one real sphere (fakes look real);
    recall the share of real samples inside at least one fake sphere (the real data is covered).
    Distances are computed in chunks of ``chunk`` rows, so 10k x 10k needs about 80 MB at a time.
    """
    real = _as_2d_float64(real_feats, "real_feats")
    fake = _as_2d_float64(fake_feats, "fake_feats")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"precision_recall: feature sizes differ ({real.shape[1]} vs "
                         f"{fake.shape[1]})")
    r_real = knn_radii(real, k, chunk)
    r_fake = knn_radii(fake, k, chunk)
    real_sq = (real * real).sum(axis=1)
    fake_in_real = np.zeros(fake.shape[0], dtype=bool)
    real_in_fake = np.zeros(real.shape[0], dtype=bool)
    for i in range(0, fake.shape[0], chunk):
        d = _pairwise_sq(fake[i:i + chunk], real, real_sq)  # (fakes in chunk, all reals)
        fake_in_real[i:i + chunk] = (d <= r_real[None, :]).any(axis=1)
        real_in_fake |= (d <= r_fake[i:i + chunk, None]).any(axis=0)
    return float(fake_in_real.mean()), float(real_in_fake.mean())


# ----------------------------------------------------------------------------- 2-D toys

def toy_metrics(samples, centers, std: float, n_sigma: float = 3.0,
                threshold_fraction: float = MODE_THRESHOLD_FRACTION) -> dict:
    """Mode coverage and sample quality for a mixture of Gaussians with known centres.

    A sample is *high quality* when it lies within ``n_sigma * std`` (3 sigma) of its nearest
    centre. A mode is *covered* when at least ``threshold_fraction * N / K`` of the N samples
    (and at least one) are high quality and nearest to it: with 10k samples on ring8 that is
    125 samples, so a few stragglers do not count as a recovered mode.

    Returns ``{"modes_covered", "num_modes", "high_quality", "kl_modes"}``; ``kl_modes`` is the
    KL to uniform of the high-quality samples' mode histogram (0 when balanced; None when no
    sample is high quality, so the result stays valid JSON).
    """
    x = _as_2d_float64(samples, "samples")
    c = _as_2d_float64(centers, "centers")
    if x.shape[1] != c.shape[1]:
        raise ValueError(f"toy_metrics: samples are {x.shape[1]}-D, centers {c.shape[1]}-D")
    if std <= 0:
        raise ValueError(f"toy_metrics: std must be positive, got {std}")
    d2 = ((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
    nearest = d2.argmin(axis=1)
    good = d2[np.arange(x.shape[0]), nearest] <= (n_sigma * std) ** 2
    hist = np.bincount(nearest[good], minlength=c.shape[0])
    return {
        "modes_covered": modes_covered(hist, n=x.shape[0], threshold_fraction=threshold_fraction),
        "num_modes": int(c.shape[0]),
        "high_quality": float(good.mean()) if x.shape[0] else 0.0,
        "kl_modes": kl_to_uniform(hist) if hist.sum() > 0 else None,
    }
