"""Compiled functions on the GPU: what ``exprc.function(..., device="cuda")`` returns.

A :class:`CudaFunction` is a :class:`~exprc.function.Function` whose program runs on GPU 0.
It takes NumPy arrays or Python data (copied to the GPU), :class:`~exprc.codegen.cuda.array.DeviceArray`
objects, or anything with ``__cuda_array_interface__`` (used in place), and returns device arrays.
See docs/internals/cuda-back-end.md.

>>> import numpy as np, exprc as ex
>>> x = ex.vector("x")
>>> f = ex.function([x], 2 * x, device="cuda")  # doctest: +SKIP
>>> f(np.arange(3.0)).get()  # doctest: +SKIP
array([0., 2., 4.])
"""

import numpy as np

from exprc.codegen.cuda.array import overlapping
from exprc.function import Function, _check_update_value, _describe, _expected, convert_input
from exprc.tensor import check_static_lengths


class CudaFunction(Function):
    """A graph compiled for the GPU; built by :func:`exprc.function` with ``device="cuda"``."""

    def __init__(
        self,
        inputs,
        outputs,
        allow_input_downcast=False,
        givens=None,
        name=None,
        rewrites="fast",
        allow_tf32=False,
        **options,
    ):
        # Function checks the inputs, substitutes givens and rewrites the graph, then builds a
        # program for its back end: given "numpy", that is a topological sort (nothing is
        # compiled), replaced here by the CUDA program, so that the checking is not written twice.
        super().__init__(
            inputs,
            outputs,
            backend="numpy",
            allow_input_downcast=allow_input_downcast,
            givens=givens,
            name=name,
            rewrites=rewrites,
            **options,
        )
        from exprc.codegen.cuda.array import DeviceArray, to_device
        from exprc.codegen.cuda.program import CudaProgram

        self._device_array, self._to_device = DeviceArray, to_device

        self.backend = "cuda"
        n = len(self.outputs)
        program_inputs = self.inputs + self.implicit
        # The update of a shared variable may be written over its mirror (see the module docstring).
        in_place = [
            (n + j, program_inputs.index(var)) for j, (var, _) in enumerate(self.updates) if var in self.implicit
        ]
        program_outputs = self.outputs + [e for _, e in self.updates]
        self._program = CudaProgram(program_inputs, program_outputs, in_place=in_place, allow_tf32=allow_tf32)
        # The input positions whose arrays an update may be written into; a call whose array
        # there shares memory with another input runs a program that writes nothing in place.
        written = set(self._program.in_place.values()) if in_place else set()
        self._overwritten = [k for k, v in enumerate(program_inputs) if v in written]
        self._not_in_place = (
            (lambda: CudaProgram(program_inputs, program_outputs, allow_tf32=allow_tf32)) if written else None
        )
        self._direct = None
        # Per input: its dtype, its number of axes, and (axis, length) where a length is fixed.
        self._layouts = [
            (np.dtype(v.dtype), v.ndim, tuple((a, n) for a, n in enumerate(v.type.shape) if n is not None))
            for v in self.inputs
        ]

    def __call__(self, *args, **kwargs):
        if not self._stateful:
            return self._call(args, kwargs)
        held = []  # the shared variables' locks, as in Function._call_with_state
        try:
            for lock in self._locks:
                lock.acquire()
                held.append(lock)
            return self._call(args, kwargs)
        finally:
            for lock in reversed(held):
                lock.release()

    def _call(self, args, kwargs):
        DeviceArray, to_device = self._device_array, self._to_device
        values = args if not kwargs and len(args) == len(self.inputs) else self._bind(args, kwargs)
        # A device array of the input's dtype and lengths is taken as it is (checked here, as
        # every call of a training loop passes one); anything else goes through _on_device.
        arrays = [
            value
            if (
                type(value) is DeviceArray
                and value.dtype is dtype
                and len(value.shape) == ndim
                and (not fixed or all(value.shape[a] == n for a, n in fixed))
            )
            else self._on_device(var, value, i)
            for i, (var, value, (dtype, ndim, fixed)) in enumerate(zip(self.inputs, values, self._layouts))
        ]
        arrays += [var.device_value(to_device) for var in self.implicit]
        program = self._program
        if self._overwritten and overlapping(arrays, self._overwritten):
            program = self._not_in_place()
        results = program.run(arrays)
        if not self.updates:
            return results[0] if self._single else results
        n = len(self.outputs)
        # Every output and new value was computed from the values before the call; only now
        # are the new values stored (a swap of two variables sees the old values).
        for (var, _), value in zip(self.updates, results[n:]):
            _check_update_value(var, value)
        for (var, _), value in zip(self.updates, results[n:]):
            var.set_device_value(value)
        return results[0] if self._single else results[:n]

    def _on_device(self, var, value, position):
        """``value`` as the device array input ``var`` takes, or a clear error."""
        from exprc.codegen.cuda.array import as_device_array, to_device_broadcast

        array = as_device_array(value)
        if array is None:
            array = convert_input(var, value, self.allow_input_downcast, position)
            # A 0-d value (a minibatch index, a learning rate) stays on the host: a slice reads it
            # there, and a kernel that reads it copies it over itself, so it never comes back.
            return array if array.ndim == 0 else to_device_broadcast(array)
        what = _describe(var, position)
        if array.dtype != var.dtype:
            raise TypeError(
                f"{what}: expected {var.dtype} data, got a {array.dtype} device array; device "
                f"arrays are not converted: pass {var.dtype} data"
            )
        if array.ndim != var.ndim:
            raise TypeError(
                f"{what}: expected {_expected(var)}, got a {array.ndim}-d device array of shape {array.shape}"
            )
        check_static_lengths(var, array.shape, what)
        return array

    def __repr__(self):
        return super().__repr__().replace("<exprc.Function", "<exprc.Function on cuda", 1)
