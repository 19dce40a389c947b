"""Counts and numbers in words (issue 33): "1 text" not "1 texts", one precision per row, thresholds."""

import math

from car_select.wording import count, decimals_for, number, plural, threshold


def test_counts_agree_with_their_number():
    assert count(1, "text") == "1 text" and count(0, "text") == "0 texts" and count(2_500, "shard") == "2,500 shards"
    assert count(1, "distinct record") == "1 distinct record" and count(3, "distinct record") == "3 distinct records"
    assert plural(1, "has") == "has" and plural(2, "has") == "have" and plural(1, "is") == "is"
    assert plural(0, "is") == "are" and plural(2, "it", "them") == "them" and plural(1, "it", "them") == "it"


def test_one_precision_for_a_row_of_numbers():
    assert decimals_for(6.43, 0.549, 0.3526) == 2  # the largest decides: "6.43" beside "0.55 ± 0.35"
    assert decimals_for(0.549, 0.3526) == 4 and decimals_for(412.0, 3.2) == 1
    assert decimals_for(float("nan"), None) == 4
    assert number(0.5490, 2) == "0.55" and number(38) == "38" and number(12_345) == "12,345"
    assert number(float("nan")) == "n/a" and number(None) == "n/a" and number(math.inf) == "n/a"


def test_thresholds_are_rounded_as_people_write_them():
    assert threshold(3.11415) == "3.11" and threshold(0.0123456) == "0.0123" and threshold(-7.98765) == "-7.99"
    assert threshold(7.0) == "7" and threshold(250.123) == "250.1"
