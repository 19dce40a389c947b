import pytest

from car_select.config import Config, n_clusters_for
from car_select.errors import CarSelectError


def test_defaults_are_the_papers():
    c = Config()
    assert (c.n1, c.n2, c.pca_variance, c.seed, c.clusters) == (1000, 1, 0.95, 42, None)


def test_k_formula_matches_alpaca():
    assert n_clusters_for(52002) == 161
    assert n_clusters_for(1) == 1


@pytest.mark.parametrize("change", [{"n1": -1}, {"n2": -1}, {"pca_variance": 0}, {"clusters": 0},
                                    {"precision": "fp8"}])
def test_impossible_options_are_user_errors(change):
    with pytest.raises(CarSelectError):
        Config(**change).validate()


def test_more_clusters_than_records():
    with pytest.raises(CarSelectError, match="more than the 3"):
        Config(clusters=4).check_fits(3)


def test_min_percentile_range_and_exclusive_with_min_score():
    import pytest

    from car_select.config import Config
    from car_select.errors import CarSelectError

    Config(min_percentile=25).validate()
    for bad in (-1, 100, 150, "25", True):
        with pytest.raises(CarSelectError, match="min_percentile"):
            Config(min_percentile=bad).validate()
    with pytest.raises(CarSelectError, match="min_score and min_percentile are exclusive"):
        Config(min_score=1.0, min_percentile=25).validate()
