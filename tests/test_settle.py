import math

from nin_search.analysis import get_design_space_info
from nin_search.analysis._settle import MAX_MORE_RANDOM_TRIALS, random_trials_to_settle

from .test_analysis import confounded_study


def open_effect(difference, standard_error, *, n_plain=5, n_mlp=5):
    """A design-space effect whose interval includes 0."""
    effect = get_design_space_info(confounded_study(mlp_effect=0.0))[0]
    return effect._replace(
        difference=difference,
        interval=(difference - 10.0, difference + 10.0),
        standard_error=standard_error,
        n_plain=n_plain,
        n_mlp=n_mlp,
    )


def test_a_reachable_target_asks_for_that_many_more_random_trials():
    text = random_trials_to_settle(open_effect(3.0, 1.5))
    more = math.ceil(10 * (1.959963984540054 * 1.5 / 2.0) ** 2) - 10  # target: 2/3 of 3 points
    assert f"about {more} more would narrow the interval to about ±2.0 points" in text


def test_an_effect_too_small_for_a_thousand_more_random_trials_is_called_out_of_reach():
    # The target half-width would take tens of thousands more trials: no such count is given.
    effect = open_effect(0.1, 20.0)
    text = random_trials_to_settle(effect)
    assert "out of reach" in text and f"even {MAX_MORE_RANDOM_TRIALS} more" in text
    half_width = 1.959963984540054 * 20.0
    left = half_width * math.sqrt(10 / (10 + MAX_MORE_RANDOM_TRIALS))
    assert f"about ±{left:.1f} points" in text
