"""The statistical defaults of the analysis (and of the report's naive verdicts), in one place.

Every function of :mod:`nin_search.analysis` and :mod:`nin_search.report` that takes one of
these as an argument defaults to the value here. Differences and effects are in accuracy
points (percent) unless said otherwise.
"""

from __future__ import annotations

# Intervals (all t-intervals: paired, or Welch's over complexity bins, conservative df).
CONFIDENCE = 0.95  # coverage of every interval, in (0, 1)
POINTS_RANGE = (-100.0, 100.0)  # where a difference of two accuracies (points) can lie at all
TIED_POINTS = 1e-9  # paired differences this close (float rounding) are one: no interval

# The report's naive verdict (every completed trial, whatever sampled it).
MIN_TRIALS_PER_KIND = 5  # completed trials each kind (plain, MLP conv) needs for a verdict

# Complexity normalisation (Radosavovic et al. 2019) and size ranges.
TRIALS_PER_BIN = 8  # pooled trials per complexity bin, on average
MAX_BINS = 10  # complexity bins at most
MIN_REGIME_TRIALS = 9  # pooled random trials before they are split into three size ranges
SIZE_RATIO_TOLERANCE = 1.25  # weighted MLP / plain params beyond this (or 1/this): not equal

# What would settle an open question.
MAX_SEEDS = 1000  # seeds_for_half_width gives up beyond this many seeds
SMALLEST_EFFECT = 0.5  # points; intervals narrower than +-this are not asked for
FIRST_SEEDS = 3  # seeds suggested when one seed gave no interval
# Seeds are planned for the sd at this one-sided upper confidence bound, not the observed sd:
# 3 seeds' sd is itself uncertain (the true one is up to 2.1x it at 80%), and planning with the
# observed one promised intervals that more seeds did not give.
PLANNING_COVERAGE = 0.8

# Pooling several studies (datasets).
AGREEMENT_I2 = 0.25  # below this heterogeneity I² (and with one sign) the studies agree
MIN_VARIANCE = 1e-6  # points²: floor of a pooled effect's variance (tied ablations are left out)
