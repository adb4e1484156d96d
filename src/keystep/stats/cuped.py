"""CUPED: variance reduction with a pre-exposure covariate (Deng, Xu, Kohavi & Walker 2013).

Each unit contributes its metric after exposure (``post``) and the same metric before exposure (``pre``).
The adjusted arm mean is ``ȳ − θ·x̄``; with one ``θ`` shared by both arms the difference stays unbiased
(randomisation makes ``E[x̄_B − x̄_A] = 0``) and its variance shrinks by ``1 − corr(x, y)²``.

``θ`` is pooled over both arms, as gbstats does: ``θ = cov(y, x) / var(x)`` computed on the union of the
units of both arms (pooled sums; proportions keep their ``p(1−p)`` variance; the covariance is the sample
form). When the pooled variance of ``x`` or ``y`` is 0, ``θ = 0`` and the analysis falls back to the raw
metric.

Ratio metrics (``Σm/Σd``) are adjusted by the pre-period ratio: ``R_post − θ·R_pre`` with every term
linearised by the delta method over the four per-unit means ``β = (m_post, d_post, m_pre, d_pre)`` and
their 4×4 covariance ``Λ``. ``θ`` minimises the pooled variance:
``θ = Σ_arms ∇R_postᵀ Λ_{post,pre} ∇R_pre / Σ_arms ∇R_preᵀ Λ_pre ∇R_pre`` (gbstats
``compute_theta_regression_adjusted_ratio``); ``|θ| < 1e-8`` falls back to the plain ratio.

The SQL layer supplies, per arm, the statistics of ``post`` and ``pre`` and ``Σ post·pre`` (and, for
ratios, the six cross products of ``m_post, d_post, m_pre, d_pre``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from keystep.stats.sufficient import (
    ArmSummary,
    MetricStats,
    RatioStats,
    add_metric_stats,
    covariance,
    summarize,
)

__all__ = [
    "CovariateRatioStats",
    "CovariateStats",
    "adjust",
    "adjust_pair",
    "adjust_ratio",
    "pooled_ratio_theta",
    "pooled_theta",
    "relative_variance",
    "relative_variance_ratio",
]

_Vector = npt.NDArray[np.float64]
_Matrix = npt.NDArray[np.float64]
RATIO_THETA_EPSILON = 1e-8


@dataclass(frozen=True)
class CovariateStats:
    """One arm of a mean or proportion metric with its pre-exposure covariate: statistics of ``post`` and
    ``pre`` over the same units and ``Σ post·pre``."""

    post: MetricStats
    pre: MetricStats
    post_pre_sum_of_products: float

    def __post_init__(self) -> None:
        if self.post.n != self.pre.n:
            raise ValueError("post and pre statistics must cover the same units")

    @property
    def n(self) -> int:
        return self.post.n

    @property
    def mean(self) -> float:
        """The unadjusted post-exposure mean."""
        return self.post.mean

    @property
    def variance(self) -> float:
        """The unadjusted per-unit variance of the post-exposure metric."""
        return self.post.variance

    @property
    def covariance(self) -> float:
        return covariance(self.n, self.post, self.pre, self.post_pre_sum_of_products)

    def __add__(self, other: CovariateStats) -> CovariateStats:
        if not isinstance(other, CovariateStats):
            return NotImplemented
        return CovariateStats(
            add_metric_stats(self.post, other.post),
            add_metric_stats(self.pre, other.pre),
            self.post_pre_sum_of_products + other.post_pre_sum_of_products,
        )


@dataclass(frozen=True)
class CovariateRatioStats:
    """One arm of a ratio metric with pre-exposure numerator and denominator: four single-metric statistics
    over the same units and their six sums of cross products."""

    m_post: MetricStats
    d_post: MetricStats
    m_pre: MetricStats
    d_pre: MetricStats
    m_post_m_pre_sum_of_products: float
    d_post_d_pre_sum_of_products: float
    m_pre_d_pre_sum_of_products: float
    m_post_d_post_sum_of_products: float
    m_post_d_pre_sum_of_products: float
    m_pre_d_post_sum_of_products: float

    def __post_init__(self) -> None:
        if len({self.m_post.n, self.d_post.n, self.m_pre.n, self.d_pre.n}) != 1:
            raise ValueError("all four statistics must cover the same units")

    @property
    def n(self) -> int:
        return self.m_post.n

    @property
    def post_ratio(self) -> RatioStats:
        return RatioStats(self.m_post, self.d_post, self.m_post_d_post_sum_of_products)

    @property
    def mean(self) -> float:
        """The unadjusted post-exposure ratio ``Σm_post / Σd_post``."""
        return self.post_ratio.mean

    @property
    def variance(self) -> float:
        """The unadjusted per-unit delta-method variance of the post-exposure ratio."""
        return self.post_ratio.variance

    @property
    def pre_ratio_mean(self) -> float:
        return self.m_pre.sum / self.d_pre.sum if self.d_pre.sum != 0 else 0.0

    @property
    def means(self) -> _Vector:
        """``β = (mean m_post, mean d_post, mean m_pre, mean d_pre)``."""
        return np.array([self.m_post.mean, self.d_post.mean, self.m_pre.mean, self.d_pre.mean])

    @property
    def covariance_matrix(self) -> _Matrix:
        """``Λ``: the per-unit 4×4 covariance of ``(m_post, d_post, m_pre, d_pre)``."""
        n = self.n
        stats = (self.m_post, self.d_post, self.m_pre, self.d_pre)
        products = {
            (0, 1): self.m_post_d_post_sum_of_products,
            (0, 2): self.m_post_m_pre_sum_of_products,
            (0, 3): self.m_post_d_pre_sum_of_products,
            (1, 2): self.m_pre_d_post_sum_of_products,
            (1, 3): self.d_post_d_pre_sum_of_products,
            (2, 3): self.m_pre_d_pre_sum_of_products,
        }
        lam = np.diag([s.variance for s in stats])
        for (i, j), sxy in products.items():
            lam[i, j] = lam[j, i] = covariance(n, stats[i], stats[j], sxy)
        return lam

    def __add__(self, other: CovariateRatioStats) -> CovariateRatioStats:
        if not isinstance(other, CovariateRatioStats):
            return NotImplemented
        return CovariateRatioStats(
            add_metric_stats(self.m_post, other.m_post),
            add_metric_stats(self.d_post, other.d_post),
            add_metric_stats(self.m_pre, other.m_pre),
            add_metric_stats(self.d_pre, other.d_pre),
            self.m_post_m_pre_sum_of_products + other.m_post_m_pre_sum_of_products,
            self.d_post_d_pre_sum_of_products + other.d_post_d_pre_sum_of_products,
            self.m_pre_d_pre_sum_of_products + other.m_pre_d_pre_sum_of_products,
            self.m_post_d_post_sum_of_products + other.m_post_d_post_sum_of_products,
            self.m_post_d_pre_sum_of_products + other.m_post_d_pre_sum_of_products,
            self.m_pre_d_post_sum_of_products + other.m_pre_d_post_sum_of_products,
        )


# --- means and proportions -------------------------------------------------------------------------


def pooled_theta(a: CovariateStats, b: CovariateStats) -> float:
    """``θ = cov(post, pre) / var(pre)`` over the units of both arms pooled (0 if either variance is 0)."""
    joint = a + b
    var_pre = joint.pre.variance
    var_post = joint.post.variance
    if var_pre == 0 or var_post == 0:
        return 0.0
    n = joint.n
    cov = (joint.post_pre_sum_of_products - joint.post.sum * joint.pre.sum / n) / (n - 1)
    return cov / var_pre


def adjust(stats: CovariateStats, theta: float) -> ArmSummary:
    """The adjusted arm: mean ``ȳ − θ·x̄``, per-unit variance ``var(y) + θ²·var(x) − 2θ·cov(y, x)``."""
    variance = 0.0
    if stats.n > 1:
        variance = stats.post.variance + theta**2 * stats.pre.variance - 2 * theta * stats.covariance
    return ArmSummary(
        n=stats.n,
        mean=stats.post.mean - theta * stats.pre.mean,
        variance=variance,
        unadjusted_mean=stats.post.mean,
    )


def relative_variance(a: CovariateStats, b: CovariateStats, theta: float) -> float:
    """Delta-method variance of the relative effect ``(adj_B − adj_A) / ȳ_A``.

    The gradient with respect to the control means ``(ȳ_A, x̄_A)`` is ``(−ȳ_B/ȳ_A², θ/ȳ_A)`` (the numerator
    approximated by ``ȳ_B``, as gbstats ``frequentist_variance_relative_cuped``), so
    ``var = adjvar_B/(n_B ȳ_A²) + [var(y_A)·ȳ_B²/ȳ_A² − 2θ·cov_A·ȳ_B/ȳ_A + θ²·var(x_A)] / (n_A ȳ_A²)``.
    """
    mean_a = a.post.mean
    if mean_a == 0 or a.n == 0 or b.n == 0:
        return 0.0
    mean_b = b.post.mean
    adjusted_b = adjust(b, theta).variance
    control = (
        a.post.variance * mean_b**2 / mean_a**2
        - 2 * theta * a.covariance * mean_b / mean_a
        + theta**2 * a.pre.variance
    )
    return adjusted_b / (b.n * mean_a**2) + control / (a.n * mean_a**2)


# --- ratios ----------------------------------------------------------------------------------------


def _ratio_gradient(means: _Vector, theta: float) -> _Vector:
    """Gradient of ``m_post/d_post − θ·m_pre/d_pre`` with respect to ``β``."""
    m_post, d_post, m_pre, d_pre = (float(v) for v in means)
    if d_post == 0:
        return np.zeros(4)
    pre = np.zeros(2) if d_pre == 0 else np.array([-theta / d_pre, theta * m_pre / d_pre**2])
    return np.array([1 / d_post, -m_post / d_post**2, pre[0], pre[1]])


def pooled_ratio_theta(a: CovariateRatioStats, b: CovariateRatioStats) -> float:
    """``θ`` minimising the variance of the adjusted ratio, pooled over both arms (see module docs)."""
    num = 0.0
    den = 0.0
    for arm in (a, b):
        grad = _ratio_gradient(arm.means, 1.0)
        lam = arm.covariance_matrix
        post, pre = grad[:2], -grad[2:]  # ∇R_post and ∇R_pre
        num += float(pre @ lam[2:, :2] @ post)
        den += float(pre @ lam[2:, 2:] @ pre)
    return num / den if den != 0 else 0.0


def adjust_ratio(stats: CovariateRatioStats, theta: float) -> ArmSummary:
    """The adjusted ratio arm: mean ``R_post − θ·R_pre``, per-unit variance ``∇ᵀΛ∇``."""
    undefined = stats.d_post.sum == 0 or stats.d_pre.sum == 0
    mean = 0.0 if undefined else stats.mean - theta * stats.pre_ratio_mean
    grad = _ratio_gradient(stats.means, theta)
    return ArmSummary(
        n=stats.n,
        mean=mean,
        variance=float(grad @ stats.covariance_matrix @ grad),
        unadjusted_mean=stats.mean,
    )


def relative_variance_ratio(a: CovariateRatioStats, b: CovariateRatioStats, theta: float) -> float:
    """Delta-method variance of ``(adj_B − adj_A) / |R_post,A|`` over both arms' ``β``.

    With ``g = adj_B − adj_A`` and ``r = |R_post,A|`` the control gradient is
    ``(−(r+g)/(d̄ r²), m̄(r+g)/(d̄² r²), θ/(d̄_pre r), −θ m̄_pre/(d̄_pre² r))`` and the treatment gradient is
    the adjusted-ratio gradient divided by ``r``; ``var = ∇_Aᵀ Λ_A ∇_A / n_A + ∇_Bᵀ Λ_B ∇_B / n_B``.
    """
    r = abs(a.mean)
    beta_a = a.means
    if r == 0 or beta_a[1] == 0:
        return 0.0
    g = adjust_ratio(b, theta).mean - adjust_ratio(a, theta).mean
    m_post, d_post = float(beta_a[0]), float(beta_a[1])
    grad_adj_a = _ratio_gradient(beta_a, theta)
    grad_a = np.array(
        [
            -(r + g) / d_post / r**2,
            m_post * (r + g) / d_post**2 / r**2,
            -grad_adj_a[2] / r,
            -grad_adj_a[3] / r,
        ]
    )
    grad_b = _ratio_gradient(b.means, theta) / r
    var_a = float(grad_a @ a.covariance_matrix @ grad_a) / a.n
    var_b = float(grad_b @ b.covariance_matrix @ grad_b) / b.n
    return var_a + var_b


def adjust_pair(
    a: CovariateStats | CovariateRatioStats, b: CovariateStats | CovariateRatioStats
) -> tuple[ArmSummary, ArmSummary, float]:
    """Adjust control ``a`` and treatment ``b`` with their pooled ``θ``; returns both arms and ``θ``.

    ``θ = 0`` means no adjustment was possible and the arms are the raw post-exposure metric.
    """
    if isinstance(a, CovariateStats) and isinstance(b, CovariateStats):
        theta = pooled_theta(a, b)
        if theta == 0:
            return summarize(a.post), summarize(b.post), 0.0
        return adjust(a, theta), adjust(b, theta), theta
    if isinstance(a, CovariateRatioStats) and isinstance(b, CovariateRatioStats):
        theta = pooled_ratio_theta(a, b)
        if abs(theta) < RATIO_THETA_EPSILON:
            return summarize(a.post_ratio), summarize(b.post_ratio), 0.0
        return adjust_ratio(a, theta), adjust_ratio(b, theta), theta
    raise TypeError("both arms must be CovariateStats or both CovariateRatioStats")
