import pytest

from car_select.config import Config, check_engine, check_together, n_clusters_for, overridden
from car_select.errors import CarSelectError, SettingError


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


@pytest.mark.parametrize("settings, message", [
    ({"n1": 500, "budget": 100}, "n1 and budget are exclusive: a budget chooses n1"),
    ({"n1": 500, "fraction": 0.1}, "n1 and fraction are exclusive: a fraction chooses n1"),
    ({"budget": 5, "fraction": 0.1}, "budget and fraction are exclusive: give one"),
    ({"min_score": 1.0, "min_percentile": 25}, "min_score and min_percentile are exclusive: give one"),
    ({"score_field": "rating", "scorer": "car-paper"}, "score_field and scorer are exclusive: the field is the score"),
    ({"strategy": "qd", "budget": 5, "n2": 2}, "n2 applies to strategy car only, not qd"),
])
def test_settings_that_exclude_each_other_are_refused_when_the_config_is_built(settings, message):
    """Issue 33: Config(n1=500, budget=100) used to be accepted and n1 silently dropped."""
    with pytest.raises(SettingError) as err:
        Config(**settings)
    assert str(err.value) == message
    assert err.value.named(lambda f: f"--{f.replace('_', '-')}").startswith("--")  # the CLI's rewording


def test_a_default_is_not_a_setting_given():
    assert Config(n1=1000, budget=100).budget == 100  # n1 at its default: the budget chooses it
    assert Config().given() == {} and Config(budget=7).given() == {"budget": 7}


def test_replace_lets_the_later_setting_win():
    assert (Config(n1=500).replace(budget=100).n1, Config(n1=500).replace(budget=100).budget) == (1000, 100)
    assert Config(budget=100).replace(fraction=0.1).budget is None
    assert Config(budget=100, min_score=2.0).replace(n1=10).min_score == 2.0  # what does not conflict stays
    qd = Config(strategy="qd", budget=10, quality_weight=2.0)
    assert qd.replace(n1=10) == Config(n1=10)  # --n1 is CaR's: the strategy and its option give way
    assert qd.replace(strategy="deita") == Config(strategy="deita", budget=10)


def test_overridden_drops_only_what_a_later_setting_excludes():
    assert overridden({"budget": 100, "seed": 1}, {"n1": 10}) == {"seed": 1, "n1": 10}
    assert overridden({"n1": 10, "n2": 2}, {"strategy": "qd"}) == {"strategy": "qd"}
    assert overridden({"n2": 2}, {"strategy": "car"}) == {"n2": 2, "strategy": "car"}
    assert overridden({"min_percentile": 20}, {"min_score": 3.0}) == {"min_score": 3.0}


def test_check_together_counts_a_default_that_was_given():
    with pytest.raises(SettingError, match="n1 and budget are exclusive"):
        check_together({"n1": 1000, "budget": 5})
    check_together({"n2": 3, "budget": 5})  # n2 stays CaR's per-cluster count under a budget


def test_address_needs_the_ray_engine():
    check_engine("ray", "auto")
    check_engine("local", None)
    with pytest.raises(SettingError, match="^address needs engine ray$"):
        check_engine("local", "auto")


@pytest.mark.parametrize("spec, hint", [("car_paper", "did you mean car-paper?"), ("Default", "did you mean default?"),
                                        ("no/such/folder", "not a shipped scorer's name (default, car-paper)")])
def test_an_unknown_scorer_is_refused_with_the_nearest_name(spec, hint):
    with pytest.raises(SettingError) as err:
        Config(scorer=spec)
    assert str(err.value).startswith(f"scorer {spec}: ") and hint in str(err.value)


def test_every_scorer_form_passes(tmp_path):
    for spec in ("default", "car-paper", "hf-reward:owner/model", str(tmp_path)):
        assert Config(scorer=spec).scorer == spec
    with pytest.raises(SettingError, match="names no model"):
        Config(scorer="hf-reward:")
