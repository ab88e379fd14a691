"""The Theano layer's names, types, flags and errors."""

import numpy as np
import pytest

import exprc as ex


def test_types_are_types_and_make_inputs(theano):
    import theano.tensor as T

    x = T.dscalar("x")
    assert x.type == T.dscalar and x.dtype == "float64" and x.name == "x"
    assert T.fmatrix("m").type == T.fmatrix and T.fmatrix != T.dmatrix
    assert T.drow("r").type.shape == (1, None) and T.icol("c").type.shape == (None, 1)
    assert T.TensorType("float32", (False, True))("t").type.shape == (None, 1)


def test_floatx_and_the_flags_programs_read(theano):
    assert theano.config.floatX == "float64" and theano.config.device == "cpu"
    assert theano.config.warn.round is False
    import theano.tensor as T

    theano.config.floatX = "float32"
    try:
        assert T.matrix("m").dtype == "float32" and ex.vector("v").dtype == "float32"
    finally:
        theano.config.floatX = "float64"
    with pytest.raises(ValueError, match="pass device='cuda' to theano.function"):
        theano.config.device = "cuda"
    with pytest.raises(AttributeError, match="theano.config.nonsense is not a flag"):
        theano.config.nonsense  # noqa: B018 - the read is the test


def test_missing_names_say_what_to_use(theano):
    import theano.tensor as T

    with pytest.raises(AttributeError, match=r"theano.tensor.nonzero is not provided .*T.switch"):
        T.nonzero  # noqa: B018
    with pytest.raises(ModuleNotFoundError, match=r"theano.sandbox.cuda is not provided .*device='cuda'"):
        import theano.sandbox.cuda  # noqa: F401
    with pytest.raises(AttributeError, match="theano.gradient.grad_clip is not provided"):
        theano.gradient.grad_clip  # noqa: B018


def test_idioms_of_the_tutorials(theano):
    import theano.tensor as T

    W = theano.shared(np.zeros(2), name="W")
    assert W  # `if not W:` tests for a missing argument
    x = T.dvector("x")
    with pytest.raises(TypeError, match="truth value"):
        bool(x > 0)
    assert theano.printing.pp(x * 2) == "x * 2"
    assert "Elemwise{multiply}" in theano.printing.debugprint(x * 2, file="str")
    f = theano.function([x], T.switch(T.gt(x, 0), x, -x), mode="DebugMode")
    np.testing.assert_array_equal(f([-1.0, 2.0]), [1.0, 2.0])
    assert theano.clone(x * 2, replace={x: x + 1}).eval({x: np.ones(2)}).tolist() == [4.0, 4.0]
    with pytest.raises(ValueError, match="mode 'ProfileMode' is not one of"):
        theano.function([x], x, mode="ProfileMode")


def test_install_and_uninstall_register_and_remove_the_names():
    import sys

    from exprc.compat import theano as compat

    compat.install()
    assert sys.modules["theano.tensor.nnet"].conv2d is ex.nnet.conv2d
    compat.uninstall()
    assert "theano" not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        import theano  # noqa: F401


def test_a_variable_is_true_under_the_layer_as_in_theano_but_a_comparison_is_not(theano):
    import theano.tensor as T

    x = T.matrix("x")
    assert x and not (not x)  # rbm.py: `if not input:` for a missing argument
    with pytest.raises(TypeError, match="truth value"):
        bool(x > 0)


def test_without_the_layer_a_variable_has_no_truth_value():
    with pytest.raises(TypeError, match="truth value"):
        bool(ex.matrix("x"))
