"""The loop tests run once per back end, as the op tests do (see tests/ops/conftest.py)."""

from tests.ops.conftest import op_backend, pytest_generate_tests  # noqa: F401 - pytest's hooks and fixture
