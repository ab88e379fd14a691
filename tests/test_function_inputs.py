"""ex.In (inputs with defaults and keyword names) and Function.copy."""

import numpy as np
import pytest

import exprc as ex


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_an_input_with_a_default_may_be_left_out_or_passed(backend):
    x, lr, m = ex.vector("x"), ex.scalar("lr"), ex.scalar("m")
    f = ex.function([x, ex.In(lr, value=0.1), ex.In(m, value=2.0, name="momentum")], x * lr + m, backend=backend)
    np.testing.assert_allclose(f([1.0, 2.0]), [2.1, 2.2])
    np.testing.assert_allclose(f([1.0, 2.0], 1.0), [3.0, 4.0])
    np.testing.assert_allclose(f([1.0, 2.0], lr=1.0, momentum=0.0), [1.0, 2.0])
    np.testing.assert_allclose(f(x=[1.0], momentum=-1.0), [-0.9])
    with pytest.raises(TypeError, match="got input 'momentum' twice"):
        f([1.0], 0.1, 0.0, momentum=1.0)
    with pytest.raises(
        TypeError, match=r"function is missing input 'x' \(argument 0\), a 1-d float64 array of shape \(\?,\): it"
    ):
        f(lr=1.0)


def test_a_default_is_converted_once_and_checked_when_built():
    x = ex.vector("x", dtype="float32")
    f = ex.function([ex.In(x, value=[1.0, 2.0])], x * 2)
    assert f().dtype == np.float32
    y = ex.vector("y", dtype="int32")
    with pytest.raises(TypeError, match="y"):
        ex.function([ex.In(y, value=[0.5])], y + 1)
    with pytest.raises(NotImplementedError, match=r"In\(x\): update= and mutable=True are not supported"):
        ex.In(x, update=x + 1)
    with pytest.raises(TypeError, match="In: the variable must be a symbolic tensor"):
        ex.In("x")


def test_copy_has_its_own_state_unless_memory_is_shared():
    w = ex.shared(np.zeros(2), name="w")
    x = ex.vector("x")
    step = ex.function([x, ex.In(ex.scalar("lr"), value=1.0)], w.sum(), updates=[(w, w + x)])
    own = step.copy()
    step([1.0, 1.0])
    own([5.0, 5.0])
    own([5.0, 5.0])
    np.testing.assert_array_equal(w.get_value(), [1.0, 1.0])
    ((copied, _),) = own.updates
    np.testing.assert_array_equal(copied.get_value(), [10.0, 10.0])
    together = step.copy(share_memory=True)
    together([1.0, 1.0])
    np.testing.assert_array_equal(w.get_value(), [2.0, 2.0])


def test_copy_swaps_variables_and_deletes_updates():
    w, v = ex.shared(np.ones(2), name="w"), ex.shared(np.full(2, 3.0), name="v")
    step = ex.function([], w.sum(), updates=[(w, w * 2)], name="step")
    swapped = step.copy(swap={w: v}, share_memory=True, name="on v")
    assert swapped() == 6.0 and swapped.name == "on v"
    np.testing.assert_array_equal(v.get_value(), [6.0, 6.0])
    np.testing.assert_array_equal(w.get_value(), [1.0, 1.0])
    frozen = step.copy(delete_updates=True, share_memory=True)
    assert frozen() == frozen() == 2.0 and frozen.updates == []
    with pytest.raises(TypeError, match="must map a shared variable to one of the same type"):
        step.copy(swap={w: ex.shared(np.ones(3))})


def test_a_random_streams_state_moves_on_by_default_unless_told_not_to():
    srng = ex.random.RandomStream(seed=3)
    u = srng.uniform(size=(4,))
    f = ex.function([], u)
    a, b = f(), f()
    assert not np.array_equal(a, b) and srng.state.get_value()[1] == 2
    frozen = ex.function([], u, no_default_updates=True)
    c, d = frozen(), frozen()
    np.testing.assert_array_equal(c, d)
    assert srng.state.get_value()[1] == 2
    # Named explicitly, the update is the one given, once.
    g = ex.function([], u, updates=srng.updates())
    assert [var for var, _ in g.updates] == [srng.state]
