import numpy as np
import pytest

import exprc as ex


def test_floatx_is_the_default_float_dtype_of_the_constructors():
    with ex.config.change(floatX="float32"):
        assert ex.config.floatX == "float32"
        for make in (ex.scalar, ex.vector, ex.matrix, ex.tensor3, ex.tensor4):
            assert make("x").dtype == "float32"
        assert ex.tensor("t", ndim=2).dtype == "float32"
        assert ex.zeros(3).dtype == ex.ones((2, 2)).dtype == "float32"
        # What is asked for, prefixed constructors and arrays keep their dtypes.
        assert ex.vector("x", dtype="float64").dtype == "float64"
        assert ex.dvector("x").dtype == "float64" and ex.ivector("i").dtype == "int32"
        assert ex.shared(np.zeros(2)).dtype == "float64"
        x = ex.vector("x")
        f = ex.function([x], x * 2.0 + ex.ones(2))
        assert f(np.ones(2, "float32")).dtype == np.float32
    assert ex.config.floatX == "float64" and ex.vector("x").dtype == "float64"


def test_bad_settings_are_refused_and_leave_the_setting_alone():
    with pytest.raises(ValueError, match="config.floatX must be one of float16, float32, float64, got 'int32'"):
        ex.config.floatX = "int32"
    with pytest.raises(AttributeError, match="config has no setting device"):
        with ex.config.change(device="cuda"):
            pass
    assert ex.config.floatX == "float64"
