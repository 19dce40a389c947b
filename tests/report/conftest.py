"""Report fixtures: the synthetic ReportData of synthetic_report.py."""

import pytest

from synthetic_report import make_data


@pytest.fixture(scope="module")
def data():
    return make_data()
