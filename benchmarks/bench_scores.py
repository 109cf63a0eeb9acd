"""Vectorised LogME against per-class loops of the same algorithm.

Two loops, both decomposing F once and then projecting and iterating one class at
a time:

- the *reference-style loop* is structured like the authors' code (You et al.,
  JMLR 2022): when N > D it takes the SVD of the D x D matrix F^T F, forms the
  N x k matrix U = F V / s, and projects each class indicator with U^T y;
- the *shared-decomposition loop* uses exactly keras_tl's decomposition (the
  eigendecomposition of F^T F, U never formed), so it isolates what the
  vectorisation itself buys; its ratio is capped by the decomposition, which
  both sides pay.

`keras_tl`'s `logme` projects all classes with one sparse product and runs the
fixed-point iteration on all of them at once. The issue-4 target (5x at N=20000,
D=1024, C=200) is stated against the straightforward, reference-style loop.

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


def reference_style_decomposition(features):
    """sigma (k,) and y -> U^T y, with U formed as the reference code forms it."""
    num_samples, num_features = features.shape
    if num_samples > num_features:
        _, squared, right_transposed = np.linalg.svd(features.T @ features)
        singular_values = np.sqrt(squared)
        rank = int(np.sum(singular_values > 1e-10))
        left = (features @ right_transposed[:rank].T) / singular_values[:rank]
        sigma = squared[:rank]
    else:
        left, singular_values, _ = np.linalg.svd(features, full_matrices=False)
        rank = int(np.sum(singular_values > 1e-10))
        left, sigma = left[:, :rank], singular_values[:rank] ** 2
    return sigma, lambda y: left.T @ y


def per_class_logme(features, labels, decompose, phase_times=None):
    """The scalar fixed point of You et al. (JMLR 2022), one class at a time.

    `decompose(features)` returns sigma and the projection y -> U^T y. When
    `phase_times` is a list, appends (decomposition seconds, per-class seconds).
    """
    num_samples, num_features = features.shape
    start = time.perf_counter()
    sigma, project = decompose(features)
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


LOOPS = {
    "reference-style loop": reference_style_decomposition,
    "shared-decomposition loop": shared_decomposition,
}


def main():
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rng = np.random.default_rng(0)
    for num_samples, num_features, num_classes in CASES:
        features = rng.normal(size=(num_samples, num_features))
        labels = rng.permutation(np.arange(num_samples) % num_classes)
        vectorised_times = []
        loop_times = {name: [] for name in LOOPS}
        phase_times = {name: [] for name in LOOPS}
        scores = {}
        for _ in range(REPEATS):  # interleaved, so every side sees the same load
            start = time.perf_counter()
            scores["vectorised"] = logme(features, labels)
            vectorised_times.append(time.perf_counter() - start)
            for name, decompose in LOOPS.items():
                start = time.perf_counter()
                scores[name] = per_class_logme(features, labels, decompose, phase_times[name])
                loop_times[name].append(time.perf_counter() - start)
        vectorised_time = min(vectorised_times)
        print(f"N={num_samples} D={num_features} C={num_classes}: vectorised "
              f"{vectorised_time:.3f} s")
        for name in LOOPS:
            loop_time = min(loop_times[name])
            decomposition_time, per_class_time = phase_times[name][
                int(np.argmin(loop_times[name]))
            ]
            difference = abs(scores["vectorised"] - scores[name]) / abs(scores[name])
            print(
                f"    {name}: {loop_time:.3f} s (decomposition {decomposition_time:.3f} s "
                f"+ per-class projection and iteration {per_class_time:.3f} s), "
                f"ratio {loop_time / vectorised_time:.1f}x, relative difference "
                f"{difference:.1e}"
            )


if __name__ == "__main__":
    main()
