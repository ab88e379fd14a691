"""Kernel and buffer names made from the graph's variable names (codegen/ir/names.py)."""

import numpy as np

import exprc as ex
from exprc.codegen.c.target import TARGET as C_TARGET
from exprc.codegen.cuda.target import TARGET as CUDA_TARGET
from exprc.codegen.ir.lower import lower
from exprc.codegen.ir.names import slug


def test_a_variable_named_without_letters_compiles():
    v = ex.vector("$")
    assert slug(v * 2) == "mul"
    f = ex.function([v], v * 2)
    np.testing.assert_array_equal(f(np.arange(3.0)), np.arange(3.0) * 2)


def test_buffer_names_keep_clear_of_each_renderers_words():
    names = [ex.vector(n) for n in ("int", "x_v", "threadIdx", "x")]
    outputs = [names[0] + names[1] * names[2] - names[3]]
    c_names = [b.name for b in lower(names, outputs, C_TARGET).kernels[0].buffers]
    cuda_names = [b.name for b in lower(names, outputs, CUDA_TARGET).kernels[0].buffers]
    assert c_names == ["in_int", "in_x_v", "threadIdx", "x", "out"]
    assert cuda_names == ["in_int", "in_x_v", "in_threadIdx", "x", "out"]
