"""`search: {learning_rate: [...], batch_size: [...]}`: validation and the grid."""

import pytest

from keras_tl.config.schema import load_experiment
from keras_tl.errors import ConfigError
from keras_tl.experiment.spec import TrialSpec
from keras_tl.experiment.trial import search_grid


def test_search_resolves_each_list_and_keeps_the_stage_value_for_a_missing_one():
    config = load_experiment({"search": {"batch_size": [16, 8]}}).config
    assert config["search"] == {"learning_rate": None, "batch_size": [16, 8]}
    assert config["learning_rates"] is None
    rate = config["target"]["learning_rate"]
    assert search_grid(config) == [(rate, 16), (rate, 8)]
    config = load_experiment({"search": {"learning_rate": [0.01, 0.001],
                                         "batch_size": [4, 8]}}).config
    assert search_grid(config) == [(0.01, 4), (0.01, 8), (0.001, 4), (0.001, 8)]


def test_learning_rates_still_means_a_learning_rate_grid_and_adds_no_search_key():
    config = load_experiment({"learning_rates": [0.01, 0.001]}).config
    assert "search" not in config
    size = config["target"]["batch_size"]
    assert search_grid(config) == [(0.01, size), (0.001, size)]
    assert "search" not in load_experiment({}).config


def test_search_is_part_of_the_trial_key_only_when_given():
    plain = load_experiment({"learning_rates": [0.01, 0.001]})
    searched = load_experiment({"search": {"learning_rate": [0.01, 0.001]}})
    spec = TrialSpec("scratch", 0, 30, 0)
    assert spec.key(plain) != spec.key(searched)
    assert plain.fingerprint() != searched.fingerprint()
    assert load_experiment(searched).config == searched.config


@pytest.mark.parametrize("value, message", [
    ([0.1], "search: expected a mapping like {learning_rate: [0.01, 0.001], batch_size"),
    ({}, "search: expected a list for learning_rate, batch_size or both, received {}"),
    ({"batch_sizes": [1]}, "search.batch_sizes: unknown key. Allowed keys: learning_rate, "
                           "batch_size. Did you mean 'batch_size'?"),
    ({"batch_size": []}, "search.batch_size: expected a non-empty list, received []"),
    ({"batch_size": [8, 0]}, "search.batch_size[1]: expected a positive integer, received 0"),
    ({"learning_rate": [0.1, -1]},
     "search.learning_rate[1]: expected a positive number, received -1"),
    ({"batch_size": [8, 8]}, "search.batch_size: expected each batch size once, received [8, 8]"),
])
def test_a_bad_search_is_one_line_naming_the_key_path(value, message):
    with pytest.raises(ConfigError) as error:
        load_experiment({"search": value})
    assert str(error.value) == message or str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_learning_rates_and_search_together_are_refused():
    with pytest.raises(ConfigError, match=r"^search: give either 'learning_rates'"):
        load_experiment({"learning_rates": [0.1], "search": {"batch_size": [8]}})

