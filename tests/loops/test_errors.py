"""Bad loops are refused when the graph is built, with the loop and the output named."""

import numpy as np
import pytest

import exprc as ex

pytestmark = pytest.mark.backend_independent


def test_a_body_returning_the_wrong_number_of_outputs():
    x = ex.vector("x")
    with pytest.raises(TypeError, match=r"scan 'pairs': fn returned 1 outputs, but outputs_info has 2 entries"):
        ex.scan(lambda v, a, b: a + v, sequences=x, outputs_info=[ex.constant(0.0), ex.constant(0.0)], name="pairs")


def test_a_carry_whose_dtype_changes():
    x = ex.fvector("x")
    with pytest.raises(TypeError, match=r"scan 'acc': output 0 is float32 \(\) before a step and float64 \(\) after"):
        ex.scan(
            lambda v, acc: acc + ex.cos(v).astype("float64"),
            sequences=x,
            outputs_info=ex.constant(np.float32(0)),
            name="acc",
        )


def test_a_carry_whose_shape_changes():
    h0 = ex.tensor("h0", shape=(1, 3))
    with pytest.raises(
        TypeError, match=r"scan 'grow': output 0 is float64 \(1, 3\) before a step and float64 \(2, 3\)"
    ):
        ex.scan(lambda h: ex.concatenate([h, h]), outputs_info=h0, n_steps=2, name="grow")


def test_taps_before_the_start_of_the_initial_value():
    x0 = ex.tensor("x0", shape=(1,))
    with pytest.raises(ValueError, match=r"scan 'fib': output 0 reads 2 steps back .* before the start"):
        ex.scan(lambda a, b: a + b, outputs_info=dict(initial=x0, taps=[-2, -1]), n_steps=3, name="fib")


def test_taps_before_the_start_found_when_run():
    x0 = ex.vector("x0")
    fib, _ = ex.scan(lambda a, b: a + b, outputs_info=dict(initial=x0, taps=[-2, -1]), n_steps=3, name="fib")
    with pytest.raises(ValueError, match=r"scan 'fib': output 0 reads 2 steps back"):
        fib.eval({x0: [1.0]})


def test_an_output_tap_that_is_not_negative():
    x0 = ex.vector("x0")
    with pytest.raises(ValueError, match=r"scan 'f': output 0 has taps \[0\]: an output's taps must be negative"):
        ex.scan(lambda a: a, outputs_info=dict(initial=x0, taps=[0]), n_steps=3, name="f")


def test_a_non_scalar_until_condition():
    x = ex.vector("x")
    with pytest.raises(TypeError, match=r"scan 'stop': the until condition must be a scalar"):
        ex.scan(lambda v: (v * 2, ex.until(x > 0)), sequences=x, name="stop")


def test_no_sequence_and_no_n_steps():
    with pytest.raises(ValueError, match=r"scan 'f': give sequences or n_steps"):
        ex.scan(lambda a: a * 2, outputs_info=ex.constant(1.0), name="f")


def test_a_sequence_without_an_axis():
    with pytest.raises(TypeError, match=r"scan 'f': sequence 0 must have an axis to loop over"):
        ex.scan(lambda a: a * 2, sequences=ex.scalar("s"), name="f")


def test_strict_refuses_a_variable_that_is_not_a_non_sequence():
    x, w = ex.vector("x"), ex.scalar("w")
    with pytest.raises(ValueError, match=r"scan 'f': strict=True, and fn reads w"):
        ex.scan(lambda v: v * w, sequences=x, strict=True, name="f")
    ys, _ = ex.scan(lambda v, w: v * w, sequences=x, non_sequences=w, strict=True, name="f")
    assert ys.type.shape == (None,)


def test_fori_loop_carry_of_another_structure_or_type():
    with pytest.raises(TypeError, match=r"the body returned 1 tensors for a carry of 2"):
        ex.fori_loop(0, 3, lambda i, c: c[0], (ex.constant(1.0), ex.constant(2.0)))
    with pytest.raises(TypeError, match=r"carry 0 is float64 \(\) before a step and float64 \(2,\) after"):
        ex.fori_loop(0, 3, lambda i, c: ex.stack([c, c]), ex.constant(1.0))


def test_while_loop_condition_must_be_a_scalar():
    with pytest.raises(TypeError, match=r"while_loop .*: cond must return a scalar"):
        ex.while_loop(lambda c: c > 0, lambda c: c - 1, ex.vector("v"))


def test_ifelse_branches_must_agree():
    x, m, s = ex.vector("x"), ex.matrix("m"), ex.scalar("s")
    with pytest.raises(
        TypeError, match=r"ifelse 'pick': output 0 is float64 \(\?,\) in the then branch and float64 \(\?, \?\)"
    ):
        ex.ifelse(s > 0, x, m, name="pick")
    with pytest.raises(TypeError, match=r"ifelse 'pick': the then branch has 2 outputs, the else branch 1"):
        ex.ifelse(s > 0, (x, x), (x,), name="pick")
    with pytest.raises(TypeError, match=r"ifelse 'pick': the condition must be a scalar"):
        ex.ifelse(x > 0, x, x, name="pick")
