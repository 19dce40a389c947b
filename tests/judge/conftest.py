import pytest

from judge_server import JudgeServer


@pytest.fixture
def judge_server():
    with JudgeServer(slow_seconds=2.0) as server:
        yield server
