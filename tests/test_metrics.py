"""Known-answer tests for minigan.metrics: each metric on inputs whose value is known exactly or
in closed form, the weight files' integrity checks, and small end-to-end evaluations on fake
data (no network, no shared data folder)."""
import json
import math
import shutil
from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import pytest

from minigan.metrics import classifier, core, evaluate

# ----------------------------------------------------------------------------- Fréchet distance


def test_feature_stats_match_numpy_cov(rng):
    f = rng.normal(size=(500, 6)).astype(np.float32)
    mu, sigma = core.feature_stats(f)
    assert mu.dtype == np.float64 and sigma.shape == (6, 6)
    np.testing.assert_allclose(mu, f.astype(np.float64).mean(0), atol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(f.astype(np.float64), rowvar=False), atol=1e-12)


def test_fid_of_identical_sets_is_zero(rng):
    f = rng.normal(size=(2000, 32)) @ rng.normal(size=(32, 32))  # correlated features
    assert core.fid_from_features(f, f) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_shifted_identity_gaussians_is_squared_shift():
    d = 5
    delta = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    fd = core.frechet_distance(np.zeros(d), np.eye(d), delta, np.eye(d))
    assert fd == pytest.approx(float(delta @ delta), rel=1e-12)


def test_fid_of_shifted_samples_approaches_squared_shift(rng):
    a = rng.normal(size=(20000, 4))
    b = rng.normal(size=(20000, 4)) + np.array([1.0, 0.0, 0.0, 0.0])
    # Finite samples add a small positive bias (~d^2/n), so the tolerance is loose on one side.
    assert core.fid_from_features(a, b) == pytest.approx(1.0, abs=0.05)


def test_fid_diagonal_covariances_closed_form():
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    # For commuting covariances the distance is |dmu|^2 + sum (sqrt(a) - sqrt(b))^2.
    expected = 1.0 + 4.0 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = core.frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-12)


def test_fid_general_covariances_match_eigenvalues_of_product(rng):
    d = 6
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    # Independent route: S1 S2 is similar to a PSD matrix, so its eigenvalues are real, >= 0.
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)).sum()
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert core.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    # and it is symmetric in its two arguments
    assert core.frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-9)


def test_fid_with_rank_deficient_covariances_is_finite(rng):
    # 20 samples in 64 dimensions: both covariances are singular (rank <= 19).
    a, b = rng.normal(size=(20, 64)), rng.normal(size=(20, 64))
    fd = core.fid_from_features(a, b)
    assert np.isfinite(fd) and fd > 0
    assert core.fid_from_features(a, a) == pytest.approx(0.0, abs=1e-6)


def test_fid_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        core.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# ----------------------------------------------------------------------------- Inception Score

def _one_hot(labels, k):
    return np.eye(k)[labels]


def test_inception_score_of_one_class_is_one():
    probs = _one_hot(np.full(1000, 3), 10)
    mean, std = core.inception_score(probs, splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_of_uninformative_predictions_is_one():
    mean, _ = core.inception_score(np.full((500, 10), 0.1), splits=5)
    assert mean == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("k", [2, 10])
def test_inception_score_of_uniform_one_hot_is_k(k):
    probs = _one_hot(np.arange(1000) % k, k)
    mean, std = core.inception_score(probs, splits=10)
    assert mean == pytest.approx(k, rel=1e-12) and std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_half_confident():
    # Two classes, each sample certain, 3:1 imbalance: IS = exp(H(y)) with p(y) = (3/4, 1/4).
    probs = _one_hot(np.array([0, 0, 0, 1] * 250), 2)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert core.inception_score(probs, splits=10)[0] == pytest.approx(math.exp(h), rel=1e-12)


def test_inception_score_needs_enough_samples():
    with pytest.raises(ValueError, match="splits"):
        core.inception_score(np.full((5, 2), 0.5), splits=10)
    with pytest.raises(ValueError, match="probabilities"):
        core.inception_score(np.full((20, 2), 0.7), splits=2)


# ----------------------------------------------------------------------------- class histogram

def test_class_histogram_from_probs_and_from_predictions():
    preds = np.array([0, 1, 1, 3, 3, 3])
    np.testing.assert_array_equal(core.class_histogram(preds, 4), [1, 2, 0, 3])
    np.testing.assert_array_equal(core.class_histogram(_one_hot(preds, 4), 4), [1, 2, 0, 3])
    with pytest.raises(ValueError):
        core.class_histogram(np.array([0, 4]), 4)


def test_kl_to_uniform_known_values():
    assert core.kl_to_uniform(np.full(10, 100)) == pytest.approx(0.0, abs=1e-12)
    one = np.zeros(10)
    one[7] = 500
    assert core.kl_to_uniform(one) == pytest.approx(math.log(10), rel=1e-12)
    # half the mass on each of two of four classes: log 4 - log 2
    assert core.kl_to_uniform([5, 5, 0, 0]) == pytest.approx(math.log(2), rel=1e-12)


def test_modes_covered_uses_a_fraction_of_the_fair_share():
    # 10 classes, n = 10000: a class needs 10% of 1000 = 100 samples to count.
    hist = np.array([1000] * 8 + [100, 99])
    assert core.modes_covered(hist, n=10000) == 9
    assert core.modes_covered(hist) == 10  # n = 8199 by default: the bar is 82
    assert core.modes_covered(hist, threshold_fraction=0.0) == 10
    # A collapsed generator with a few misclassified strays covers one mode, not ten.
    assert core.modes_covered([9991] + [1] * 9) == 1
    # n larger than the histogram's total (only good samples counted) raises the bar
    assert core.modes_covered([50, 50], n=10000) == 0


def test_confident_shares_count_sure_samples_per_class():
    probs = np.array([[0.95, 0.05, 0.0],   # a sure 0
                      [0.91, 0.09, 0.0],   # a sure 0
                      [0.10, 0.90, 0.0],   # exactly at the threshold: sure
                      [0.50, 0.50, 0.0],   # a tie: not sure
                      [0.0, 0.20, 0.80],   # a hesitant 2
                      [0.0, 0.0, 1.0]])    # a sure 2
    overall, per_class = core.confident_shares(probs)
    assert overall == pytest.approx(4 / 6)
    # shares of the fair count n/K = 2: class 0 has 2 sure samples, class 1 one, class 2 one
    np.testing.assert_allclose(per_class, [1.0, 0.5, 0.5])
    overall, per_class = core.confident_shares(probs, threshold=0.5)
    assert overall == pytest.approx(1.0) and per_class.sum() == pytest.approx(3.0)
    # a collapsed generator: every sample a sure 3 of 10 classes
    collapsed = _one_hot(np.full(100, 3), 10)
    overall, per_class = core.confident_shares(collapsed)
    assert overall == 1.0 and per_class[3] == pytest.approx(10.0) and per_class.min() == 0.0


def test_confident_shares_rejects_bad_input():
    with pytest.raises(ValueError, match="threshold"):
        core.confident_shares(_one_hot(np.array([0, 1]), 2), threshold=0.0)
    with pytest.raises(ValueError, match="probabilities"):
        core.confident_shares(np.array([[0.5, 0.6]]))
    with pytest.raises(ValueError, match="no samples"):
        core.confident_shares(np.zeros((0, 10)))


def test_label_accuracy():
    probs = _one_hot(np.array([0, 1, 2, 2]), 3)
    assert core.label_accuracy(probs, np.array([0, 1, 2, 0])) == pytest.approx(0.75)
    assert core.label_accuracy(np.array([1, 1]), np.array([1, 1])) == 1.0


# ----------------------------------------------------------------------------- precision/recall

def test_knn_radii_exclude_the_sample_itself():
    x = np.arange(10, dtype=np.float64)[:, None]  # points on a line, spacing 1
    r1 = core.knn_radii(x, k=1)
    np.testing.assert_allclose(r1, np.ones(10))  # nearest other point, not itself (0)
    r2 = core.knn_radii(x, k=2)
    assert r2[0] == 4.0 and r2[5] == 1.0  # squared distances: end point reaches 2 away


def test_precision_recall_of_identical_sets_is_one(rng):
    f = rng.normal(size=(300, 8))
    p, r = core.precision_recall(f, f.copy(), k=3)
    assert (p, r) == (1.0, 1.0)


def test_precision_recall_of_far_apart_sets_is_zero(rng):
    real = rng.normal(size=(300, 8))
    fake = rng.normal(size=(300, 8)) + 100.0
    assert core.precision_recall(real, fake, k=3) == (0.0, 0.0)


def test_precision_recall_of_a_collapsed_generator(rng):
    # Real data: two far clusters. The fake set reproduces only one: everything it makes looks
    # real (precision 1) but it covers only half of the real data (recall 0.5).
    real = np.concatenate([rng.normal(size=(200, 4)), rng.normal(size=(200, 4)) + 50])
    fake = rng.normal(size=(400, 4))
    p, r = core.precision_recall(real, fake, k=3)
    assert p > 0.9
    assert r == pytest.approx(0.5, abs=0.05)


def test_precision_recall_do_not_depend_on_chunking(rng):
    real, fake = rng.normal(size=(157, 5)), rng.normal(size=(143, 5)) + 0.5
    assert core.precision_recall(real, fake, chunk=13) == core.precision_recall(real, fake)


# ----------------------------------------------------------------------------- toys

RING = 2.0 * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1)


def test_toy_metrics_on_exact_mode_samples():
    pts = np.repeat(RING, 100, axis=0)
    m = core.toy_metrics(pts, RING, std=0.02)
    assert m == {"modes_covered": 8, "num_modes": 8, "high_quality": 1.0, "kl_modes": 0.0}


def test_toy_metrics_on_one_mode():
    pts = RING[[3]] + 0.01 * np.random.default_rng(0).normal(size=(800, 2)) / 10
    m = core.toy_metrics(pts, RING, std=0.02)
    assert m["modes_covered"] == 1 and m["high_quality"] == 1.0
    assert m["kl_modes"] == pytest.approx(math.log(8))


def test_toy_metrics_quality_and_straggler_threshold():
    far = np.zeros((700, 2))  # the ring's centre: 2 units from every mode, never 3 sigma
    strays = RING[1:] + 0.001  # one good sample on each of 7 other modes: not "covered"
    good = np.repeat(RING[:1], 293, axis=0)
    m = core.toy_metrics(np.concatenate([far, strays, good]), RING, std=0.02)
    assert m["high_quality"] == pytest.approx(300 / 1000)
    assert m["modes_covered"] == 1
    bad = core.toy_metrics(far, RING, std=0.02)
    assert bad["modes_covered"] == 0 and bad["high_quality"] == 0.0 and bad["kl_modes"] is None


def test_toy_metrics_of_true_mixture_samples():
    from minigan.data import TOY_STD, toy, toy_centers

    pts, _ = toy("grid25", 5000, seed=1)
    m = core.toy_metrics(pts, toy_centers("grid25"), TOY_STD["grid25"])
    assert m["modes_covered"] == 25
    assert m["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)  # chi2(2) <= 9


# ----------------------------------------------------------------------------- classifier files



def _tiny_state(seed=0):
    import minigan
    minigan.manual_seed(seed)
    return classifier.LeNet().state_dict()


def test_weights_round_trip_and_bytes_are_deterministic(tmp_path):
    state = _tiny_state()
    a = classifier.save_weights(tmp_path / "a.npz", state, {"test_accuracy": 0.5})
    b = classifier.save_weights(tmp_path / "b.npz", state, {"test_accuracy": 0.5})
    sha = classifier.sha256_file(a)
    assert sha == classifier.sha256_file(b)
    model = classifier.load_classifier("mnist", path=a, sha256=sha)
    assert not model.training and model.meta["test_accuracy"] == 0.5
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, state[k])


def test_weights_with_a_wrong_sha256_are_refused(tmp_path):
    path = classifier.save_weights(tmp_path / "w.npz", _tiny_state(), {})
    sha = classifier.sha256_file(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit inside a weight array
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(classifier.WeightsError, match="sha256"):
        classifier.load_classifier("mnist", path=bad, sha256=sha)
    with pytest.raises(classifier.WeightsError, match="missing"):
        classifier.load_classifier("mnist", path=tmp_path / "nope.npz", sha256=sha)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_shipped_weights_match_their_pinned_sha256(name, tmp_path):
    fname, sha = classifier.WEIGHTS[name]
    path = classifier.weights_path(name)
    assert sha is not None, f"no sha256 pinned for {name}"
    assert path.is_file(), f"{path} is not shipped"
    assert path.stat().st_size < 2_000_000
    model = classifier.load_classifier(name)
    target = 0.99 if name == "mnist" else 0.90
    assert model.meta["test_accuracy"] >= target
    # A corrupted copy of the shipped file fails the pinned hash.
    copy = tmp_path / fname
    shutil.copy(path, copy)
    with open(copy, "r+b") as f:
        f.seek(-100, 2)
        byte = f.read(1)
        f.seek(-100, 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(classifier.WeightsError, match="sha256"):
        classifier.load_classifier(name, path=copy, sha256=sha)


def test_unknown_classifier_name_is_a_clear_error():
    with pytest.raises(ValueError, match="no classifier for dataset"):
        classifier.load_classifier("cifar10")


def test_prepare_images_ranges_shapes_and_resizing():
    x = np.array([0, 255], np.uint8).reshape(2, 1, 1, 1) * np.ones((1, 1, 28, 28), np.uint8)
    p = classifier.prepare_images(x)
    assert p.dtype == np.float32 and p.shape == (2, 1, 28, 28)
    assert p[0].max() == -1.0 and p[1].min() == 1.0
    big = np.full((3, 3, 32, 32), 0.25, np.float32)  # RGB, 32x32: averaged, then resized
    q = classifier.prepare_images(big)
    assert q.shape == (3, 1, 28, 28)
    np.testing.assert_allclose(q, 0.25, atol=1e-6)  # a constant image stays constant
    assert classifier.prepare_images(np.full((1, 28, 28), 3.0))[0].max() == 1.0  # clipped


def test_features_and_probs_shapes_and_batch_invariance(rng):
    import minigan
    minigan.manual_seed(0)
    model = classifier.LeNet().eval()
    x = rng.integers(0, 256, size=(7, 1, 28, 28), dtype=np.uint8)
    f1, p1 = classifier.features_and_probs(model, x, batch=3)
    f2, p2 = classifier.features_and_probs(model, x, batch=500)
    assert f1.shape == (7, classifier.FEATURE_DIM) and p1.shape == (7, 10)
    assert (f1 >= 0).all()  # features are taken after the ReLU
    np.testing.assert_allclose(p1.sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(f1, f2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p1, p2, rtol=1e-5, atol=1e-9)


# ----------------------------------------------------------------------------- end to end

@pytest.fixture
def fake_mnist(monkeypatch, rng):
    """evaluate's data and classifier replaced by tiny fakes: 60 'test' and 120 'train' images
    and a randomly initialised LeNet, so nothing is read from disk or the network."""
    import minigan
    test_x = rng.integers(0, 256, size=(60, 1, 28, 28), dtype=np.uint8)
    train_x = rng.integers(0, 256, size=(120, 1, 28, 28), dtype=np.uint8)
    test_y, train_y = rng.integers(0, 10, 60), rng.integers(0, 10, 120)
    minigan.manual_seed(0)
    model = classifier.LeNet().eval()
    splits = {"test": (test_x, test_y), "train": (train_x, train_y)}
    monkeypatch.setattr(evaluate, "_load_split", lambda name, split, root=None: splits[split])
    monkeypatch.setattr(evaluate, "_classifier", lambda name, device: model)
    monkeypatch.setattr(evaluate, "_REFERENCES", {})
    return SimpleNamespace(test_x=test_x, model=model)


def test_image_metrics_of_the_test_set_itself(fake_mnist, monkeypatch):
    # the fake classifier is unsure of everything; a bar at its median top probability makes
    # about half of its answers "confident", so the confident share has something to count
    _, probs = evaluate.features_and_probs(fake_mnist.model, fake_mnist.test_x)
    monkeypatch.setattr(core, "CONFIDENT_P", float(np.median(probs.max(axis=1))))
    m = evaluate.evaluate_samples(fake_mnist.test_x, "mnist", labels=np.zeros(60, np.int64))
    assert m["fid"] == pytest.approx(0.0, abs=1e-6)
    assert (m["precision"], m["recall"]) == (1.0, 1.0)
    assert m["n"] == 60 and m["num_classes"] == 10
    assert 0.0 <= m["label_accuracy"] <= 1.0
    # the confident share agrees with the classifier's own outputs on these images
    sure = probs.max(axis=1) >= core.CONFIDENT_P
    assert m["confident"] == pytest.approx(sure.mean()) and 0.4 <= m["confident"] <= 0.6
    counts = np.bincount(probs.argmax(axis=1)[sure], minlength=10)
    assert m["confident_min_class"] == pytest.approx(counts.min() / 6.0)
    assert m["confident_weakest"] == int(counts.argmin())
    json.dumps(m)  # flat and JSON-able
    floor = evaluate.real_floor("mnist", n=60)
    assert {"fid", "is", "precision", "recall", "label_accuracy"} <= set(floor)
    assert floor["fid"] > 0
    table = evaluate.format_table(m, floor)
    assert "FID" in table and "real data" in table and "label accuracy" in table
    assert "confident share" in table and f"(class {m['confident_weakest']})" in table
    with_hist = evaluate.evaluate_samples(fake_mnist.test_x, "mnist", with_histogram=True)
    assert len(with_hist["confident_per_class"]) == 10
    assert min(with_hist["confident_per_class"]) == pytest.approx(m["confident_min_class"],
                                                                   abs=1e-4)
    assert "confident per class" in evaluate.format_table(with_hist, floor)


def test_the_floor_at_another_size_is_real_images_taken_through_the_same_resizing(fake_mnist):
    """A perfect generator trained at 32x32 makes the real images resized to 32, which scoring
    resizes back to 28: the floor for such samples is exactly those images, scored as samples
    (the 28x28 floor would sit far below anything a 32x32 run could reach)."""
    from minigan.data import resize_images

    at32 = evaluate.real_floor("mnist", n=60, size=32)
    at28 = evaluate.real_floor("mnist", n=60)
    assert at32["size"] == 32 and at32["n"] == 60 and "size" not in at28
    assert at32["fid"] != pytest.approx(at28["fid"])
    train_x, _ = evaluate._load_split("mnist", "train")
    pick = np.sort(np.random.default_rng(0).choice(len(train_x), 60, replace=False))
    as_samples = evaluate.evaluate_samples(resize_images(train_x[pick], 32), "mnist")
    for key in ("fid", "precision", "recall", "is", "class_kl", "confident"):
        assert at32[key] == pytest.approx(as_samples[key], rel=1e-9, abs=1e-12), key
    assert evaluate.real_floor("mnist", n=60, size=28) == at28
    table = evaluate.format_table(as_samples, at32)
    assert "train images resized to 32x32" in table


def test_non_finite_samples_are_named_not_scored(fake_mnist, capsys):
    x = fake_mnist.test_x.astype(np.float32) / 127.5 - 1
    x[3, 0, 5, 5] = np.nan
    x[7, 0, 0, 0] = np.inf  # (clipping would have scored it as an ordinary image)
    with pytest.raises(evaluate.NonFiniteSamples, match="2 of the 60 samples hold NaN or inf"):
        evaluate.evaluate_samples(x, "mnist")
    with pytest.raises(ValueError, match="1 of the 3 samples hold NaN or inf"):
        evaluate.evaluate_samples(np.array([[0.0, 1.0], [np.nan, 0.0], [1.0, 1.0]]), "ring8")


@pytest.mark.parametrize("n, splits", [(6, 3), (15, 7), (19, 9), (20, 10), (500, 10)])
def test_inception_score_takes_splits_of_two_or_more_samples(n, splits, rng):
    probs = rng.dirichlet(np.full(10, 0.3), size=n)
    m = evaluate._class_scores(probs)
    assert m["is_splits"] == splits
    assert m["is"] == pytest.approx(core.inception_score(probs, splits)[0])
    assert m["is"] > 1.0  # one sample a split would make it exactly 1


def test_evaluate_generator_conditional_images(fake_mnist):
    from minigan import nn
    from minigan.functional import concat, one_hot, reshape, tanh
    from minigan.gan.trainer import TrainConfig

    class TinyG(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4 + 10, 28 * 28)

        def forward(self, z, labels):
            h = concat([z, one_hot(labels, 10, z.dtype)], 1)
            return reshape(tanh(self.fc(h)), (-1, 1, 28, 28))

    cfg = TrainConfig(preset="cgan", dataset="mnist", z_dim=4)
    dataset = SimpleNamespace(name="mnist")
    G = TinyG()
    m = evaluate.evaluate_generator(G, cfg, 10, dataset, n=40)
    assert {"fid", "is", "is_std", "class_kl", "modes_covered", "precision", "recall",
            "label_accuracy", "confident", "confident_min_class", "confident_weakest"} <= set(m)
    assert all(isinstance(v, (int, float)) for v in m.values())
    assert m["fid"] > 0 and G.training  # G's mode is restored after sampling
    # the evaluation noise is fixed by cfg.seed: the same G scores the same twice
    assert evaluate.evaluate_generator(G, cfg, 10, dataset, n=40) == m


class _RingG:
    """A 'generator' that puts every sample exactly on one of the first ``modes`` ring8
    centres; enough of nn.Module for generate_images."""

    def __init__(self, modes):
        from minigan.data import toy_centers
        self.centers = toy_centers("ring8")[:modes].astype(np.float32)
        self.training = False
        self.device = "cpu"

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def __call__(self, z):
        import minigan
        idx = np.arange(z.shape[0]) % len(self.centers)
        return minigan.Tensor(self.centers[idx])


@pytest.mark.parametrize("modes", [8, 1])
def test_evaluate_generator_on_ring8(modes):
    from minigan.gan.trainer import TrainConfig

    cfg = TrainConfig(preset="gan", dataset="ring8", z_dim=3)
    m = evaluate.evaluate_generator(_RingG(modes), cfg, 0, SimpleNamespace(name="ring8"),
                                    n=800)
    assert m["modes_covered"] == modes and m["num_modes"] == 8 and m["high_quality"] == 1.0
    floor = evaluate.real_floor("ring8", n=2000)
    assert floor["modes_covered"] == 8 and floor["high_quality"] > 0.97


def test_evaluate_generator_skips_datasets_without_metrics(capsys):
    from minigan.gan.trainer import TrainConfig

    cfg = TrainConfig(preset="gan", dataset="photos/", z_dim=3)
    assert evaluate.evaluate_generator(None, cfg, 0, SimpleNamespace(name="photos"), n=10) == {}
    assert "no sample-quality metrics" in capsys.readouterr().err


def _toy_checkpoint(tmp_path, dataset="ring8"):
    from minigan.checkpoint import save_checkpoint
    from minigan.gan.models import build_models
    from minigan.gan.trainer import TrainConfig

    cfg = TrainConfig(preset="gan", dataset=dataset, z_dim=3)
    G, _ = build_models("gan", (2,), 0, 3)
    meta = {"config": asdict(cfg), "num_classes": 0, "sample_shape": [2],
            "dataset_name": dataset, "step": 7}
    return save_checkpoint(tmp_path / "ckpt.npz", {"G": G.state_dict()}, meta)


def test_eval_checkpoint_prints_json_and_table(tmp_path, capsys):
    path = _toy_checkpoint(tmp_path)
    assert evaluate.eval_checkpoint(path, n=500, device="cpu", as_json=True) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    rec = json.loads(out[0])
    assert rec["dataset"] == "ring8" and rec["step"] == 7 and rec["n"] == 500
    assert rec["metrics"]["num_modes"] == 8 and rec["real_floor"]["modes_covered"] == 8
    assert evaluate.eval_checkpoint(path, n=500, device="cpu") == 0
    out = capsys.readouterr().out
    assert "modes covered" in out and "real data" in out


def test_eval_checkpoint_on_a_dataset_without_metrics(tmp_path, capsys):
    path = _toy_checkpoint(tmp_path, dataset="my-images")
    assert evaluate.eval_checkpoint(path, n=100, device="cpu") == 2
    captured = capsys.readouterr()
    assert "no sample-quality metrics for dataset 'my-images'" in captured.err
    assert captured.out == ""


def test_eval_cli_data_dir_overrides_the_runs_folder(tmp_path, fake_mnist, monkeypatch, capsys):
    from minigan.checkpoint import save_checkpoint
    from minigan.cli import main
    from minigan.gan.models import build_models
    from minigan.gan.trainer import TrainConfig

    roots = []
    real = evaluate._load_split

    def recording(name, split, root=None):
        roots.append(root)
        return real(name, split, root)

    monkeypatch.setattr(evaluate, "_load_split", recording)
    cfg = TrainConfig(preset="gan", dataset="mnist", z_dim=4, data_dir="/trained/from/here")
    G, _ = build_models("gan", (1, 28, 28), 0, 4)
    meta = {"config": asdict(cfg), "num_classes": 10, "sample_shape": [1, 28, 28],
            "dataset_name": "mnist", "step": 3}
    path = save_checkpoint(tmp_path / "ckpt.npz", {"G": G.state_dict()}, meta)

    assert main(["eval", str(path), "--n", "40", "--device", "cpu", "--json"]) == 0
    assert roots and set(roots) == {"/trained/from/here"}  # the run's own folder by default
    roots.clear()
    other = str(tmp_path / "elsewhere")
    assert main(["eval", str(path), "--n", "40", "--device", "cpu", "--json",
                 "--data-dir", other]) == 0
    assert roots and set(roots) == {other}
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rec["dataset"] == "mnist" and rec["n"] == 40 and "fid" in rec["metrics"]


def test_eval_every_logs_non_finite_samples_instead_of_stopping(monkeypatch, capsys):
    from types import SimpleNamespace
    bad = np.zeros((8, 2))
    bad[[1, 4]] = np.nan
    monkeypatch.setattr(evaluate, "_sample", lambda *a: (bad, None))
    cfg = SimpleNamespace(preset="gan", z_dim=2, seed=0, data_dir=None, dataset="ring8")
    G = SimpleNamespace(device="cpu")
    out = evaluate.evaluate_generator(G, cfg, 0, SimpleNamespace(name="ring8"), n=8)
    assert out == {"nonfinite_samples": 2}
    assert "--eval-every: 2 of the 8 samples hold NaN or inf" in capsys.readouterr().err
