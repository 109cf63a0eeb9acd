"""Vectorised LogME against a per-class loop of the same algorithm.

Both sides use the same decomposition, done once: the eigendecomposition of the
D x D matrix F^T F when N > D (the thin SVD of F otherwise), with the same rank
truncation. The loop then projects and iterates one class at a time, like the
reference implementation; `keras_tl`'s `logme` projects all classes with one sparse
product and runs the fixed-point iteration on all of them at once.

Run from the repository root:

    python benchmarks/bench_scores.py
"""

import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_tl.scores.transferability import logme  # noqa: E402

CASES = [(20000, 1024, 200), (2000, 256, 10)]
REPEATS = 3


def shared_decomposition(features):
    """sigma (k,) and a function y -> x = U^T y, as keras_tl's logme decomposes."""
    num_samples, num_features = features.shape
    eps = np.finfo(np.float64).eps
    if num_samples > num_features:
        eigenvalues, eigenvectors = np.linalg.eigh(features.T @ features)
        keep = eigenvalues > eigenvalues.max() * max(features.shape) * eps
        sigma = eigenvalues[keep]
        basis = eigenvectors[:, keep] / np.sqrt(sigma)
        return sigma, lambda y: basis.T @ (features.T @ y)
    left, singular_values, _ = np.linalg.svd(features, full_matrices=False)
    sigma = singular_values**2
    keep = sigma > sigma.max() * max(features.shape) * eps
    left, sigma = left[:, keep], sigma[keep]
    return sigma, lambda y: left.T @ y


def per_class_logme(features, labels, phase_times=None):
    """The scalar fixed point of You et al. (JMLR 2022), one class at a time.

    When `phase_times` is a list, appends (decomposition seconds, per-class seconds).
    """
    num_samples, num_features = features.shape
    start = time.perf_counter()
    sigma, project = shared_decomposition(features)
    decomposed = time.perf_counter()
    evidences = []
    for label in range(int(labels.max()) + 1):
        y = (labels == label).astype(np.float64)
        x2 = project(y) ** 2
        r0 = max(y @ y - x2.sum(), 0.0)
        alpha, beta = 1.0, 1.0
        for _ in range(11):
            t = alpha / beta
            gamma = np.sum(sigma / (sigma + t))
            m2 = np.sum(sigma * x2 / (t + sigma) ** 2)
            res2 = np.sum(x2 / (1.0 + sigma / t) ** 2) + r0
            alpha = gamma / (m2 + 1e-5)
            beta = (num_samples - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - t) / t <= 1e-3:
                break
        evidence = (
            num_features / 2.0 * math.log(alpha)
            + num_samples / 2.0 * math.log(beta)
            - 0.5 * np.sum(np.log(alpha + beta * sigma))
            - beta / 2.0 * res2
            - alpha / 2.0 * m2
            - num_samples / 2.0 * math.log(2.0 * math.pi)
        )
        evidences.append(evidence / num_samples)
    if phase_times is not None:
        phase_times.append((decomposed - start, time.perf_counter() - decomposed))
    return float(np.mean(evidences))


def main():
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rng = np.random.default_rng(0)
    for num_samples, num_features, num_classes in CASES:
        features = rng.normal(size=(num_samples, num_features))
        labels = rng.permutation(np.arange(num_samples) % num_classes)
        vectorised_times, loop_times, phase_times = [], [], []
        for _ in range(REPEATS):  # interleaved, so both sides see the same load
            start = time.perf_counter()
            vectorised = logme(features, labels)
            vectorised_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            loop = per_class_logme(features, labels, phase_times)
            loop_times.append(time.perf_counter() - start)
        vectorised_time, loop_time = min(vectorised_times), min(loop_times)
        decomposition_time, per_class_time = phase_times[int(np.argmin(loop_times))]
        difference = abs(vectorised - loop) / abs(loop)
        print(
            f"N={num_samples} D={num_features} C={num_classes}: "
            f"vectorised {vectorised_time:.3f} s, per-class loop {loop_time:.3f} s, "
            f"ratio {loop_time / vectorised_time:.1f}x, "
            f"max relative difference {difference:.1e}"
        )
        print(
            f"    loop = shared decomposition {decomposition_time:.3f} s "
            f"+ per-class projection and iteration {per_class_time:.3f} s"
        )


if __name__ == "__main__":
    main()
