"""Run exprc's CUDA kernels on the CPU, as written: the source the GPU would compile,
built with g++ over ``cuda_emulator.h`` (threads as fibers, barriers and shuffles
emulated, the inline PTX replaced by its meaning).

:class:`FakeGpu` (``cuda_fake.py``) checks the launcher by interpreting each
kernel's IR; :class:`EmulatedGpu` runs the rendered CUDA instead, so a wrong
index, a reduction tree that misses a slot, a barrier in divergent code or a
misplaced mma fragment gives wrong numbers (or a reported deadlock) here, with
no GPU. What it cannot show: speed, memory ordering beyond barriers, and
anything PTX-specific that the emulation spells out otherwise (transcendental
functions are glibc's, not CUDA's, so results agree to a few ulps, not bits).

A kernel runs from its source, its parameters given as cuLaunchKernel takes
them or as a list of 8-byte values::

    Program(source).launch("twice", (3, 1, 1), (64, 1, 1), [100, x.ctypes.data])

(tests/codegen/test_cuda_emulated.py runs such programs; without g++ it skips.)
"""

import hashlib
import os
import re
import shutil
import subprocess
import tempfile

import cffi

HEADER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cuda_emulator.h")

#: Why the emulator cannot run here, or None.
UNAVAILABLE = None if shutil.which("g++") else "g++ is not installed"

#: Helpers written in inline PTX -> the emulator's function of the same meaning, and the
#: instruction the helper's assembly must hold for that meaning to be the GPU's.
_PTX_HELPERS = {
    "exprc_half_to_float": ("EXPRC_EMU_half_to_float", "cvt.f32.f16"),
    "exprc_float_to_half": ("EXPRC_EMU_float_to_half", "cvt.rn.f16.f32"),
    "exprc_double_to_half": ("EXPRC_EMU_double_to_half", "cvt.rn.f16.f64"),
    "exprc_f32_to_f16": ("EXPRC_EMU_float_to_half", "cvt.rn.f16.f32"),
    "exprc_f32_to_bf16": ("EXPRC_EMU_float_to_bf16", "cvt.rn.bf16.f32"),
    "exprc_f32_to_tf32": ("EXPRC_EMU_float_to_tf32", "cvt.rna.tf32.f32"),
    "exprc_mma_f16": ("EXPRC_EMU_mma_f16", "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"),
    "exprc_mma_bf16": ("EXPRC_EMU_mma_bf16", "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"),
    "exprc_mma_tf32": ("EXPRC_EMU_mma_tf32", "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32"),
    "exprc_ldmatrix": ("EXPRC_EMU_ldmatrix", "ldmatrix.sync.aligned.m8n8.x4.shared.b16"),
    "exprc_ldmatrix_trans": ("EXPRC_EMU_ldmatrix_trans", "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16"),
    "exprc_copy_async": ("EXPRC_EMU_copy_async", "cp.async.cg.shared.global [s], [%1], 16, %2;"),
    "exprc_copies_commit": ("EXPRC_EMU_copies_commit", "cp.async.commit_group;"),
    "exprc_copies_wait_but_newest": ("EXPRC_EMU_copies_wait_but_newest", "cp.async.wait_group 1;"),
    "exprc_copies_wait_all": ("EXPRC_EMU_copies_wait_all", "cp.async.wait_group 0;"),
}

_FUNCTION = re.compile(r"^static __device__ __forceinline__ [\w ]+?\b(\w+)\(([^)]*)\)\n\{\n(.*?)\n\}", re.M | re.S)
_KERNEL = re.compile(r'extern "C" __global__ void (?:__launch_bounds__\([^)]*\) )?(\w+)\(([^)]*)\)')
#: NVRTC has no <stdint.h>, so the kernels declare these themselves; g++ has them already.
_OWN_TYPEDEF = re.compile(r"^typedef [\w ]+ u?int(8|16|32|64)_t;$", re.M)

_FFI = cffi.FFI()
_FFI.cdef(
    "int exprc_emu_launch(const char *name, const unsigned *grid, const unsigned *block,"
    " void **params, char *error, size_t error_size);"
)


def prepare(source):
    """``source`` made for g++: each inline-PTX helper calls its emulation instead.

    >>> prepare('static __device__ __forceinline__ float exprc_half_to_float(exprc_half h)\\n{\\n    asm("cvt.f32.f16 %0, %1;");\\n}')
    'static __device__ __forceinline__ float exprc_half_to_float(exprc_half h)\\n{\\n    return EXPRC_EMU_half_to_float(h);\\n}'
    >>> prepare('static __device__ __forceinline__ float exprc_half_to_float(exprc_half h)\\n{\\n    asm("cvt.rn.f32.f16 %0, %1;");\\n}')
    Traceback (most recent call last):
    NotImplementedError: the inline PTX of exprc_half_to_float no longer holds 'cvt.f32.f16', which the emulator's EXPRC_EMU_half_to_float stands for
    """

    def replace(match):
        name, params, body = match.groups()
        if "asm" not in body:
            return match.group(0)
        if name not in _PTX_HELPERS:
            raise NotImplementedError(f"the emulator has no meaning for the inline PTX of {name}")
        emulation, instruction = _PTX_HELPERS[name]
        if instruction not in body:
            raise NotImplementedError(
                f"the inline PTX of {name} no longer holds {instruction!r}, which the emulator's {emulation} stands for"
            )
        args = ", ".join(p.split()[-1].lstrip("*") for p in params.split(",") if p.strip())
        return match.group(0).replace(body, f"    return {emulation}({args});")

    return _OWN_TYPEDEF.sub("", _FUNCTION.sub(replace, source))


def _wrappers(source):
    """A C++ function per kernel taking ``void **params`` (as cuLaunchKernel does), and the table."""
    lines, entries = [], []
    for name, params in _KERNEL.findall(source):
        args = []
        for i, param in enumerate(p.strip() for p in params.split(",")):
            ptype = re.sub(r"\s*\w+$", "", param.replace("__restrict__", "")).strip()
            args.append(f"*({ptype} *)params[{i}]")
        lines.append(f"static void exprc_emu_call_{name}(void **params)\n{{\n    {name}({', '.join(args)});\n}}")
        entries.append(f'    {{"{name}", exprc_emu_call_{name}}},')
    table = "\n".join(entries)
    lines.append(f"""\
extern "C" int exprc_emu_launch(const char *name, const unsigned *grid, const unsigned *block,
                                void **params, char *error, size_t error_size)
{{
    static const struct {{ const char *name; exprc_emu::Wrapper call; }} kernels[] = {{
{table}
        {{0, 0}}}};
    for (int i = 0; kernels[i].name; i++)
        if (!strcmp(kernels[i].name, name)) return exprc_emu::run(kernels[i].call, grid, block, params, error, error_size);
    snprintf(error, error_size, "no kernel named %s", name);
    return 1;
}}""")
    return "\n\n".join(lines)


def _cache_dir():
    path = os.path.join(tempfile.gettempdir(), f"exprc-cuda-emulator-{os.getuid()}")
    os.makedirs(path, exist_ok=True)
    return path


class Program:
    """A CUDA program built for the CPU; :meth:`launch` runs one of its kernels."""

    def __init__(self, source):
        text = prepare(source)
        text = f'#include "{HEADER}"\n{text}\n\n{_wrappers(text)}\n'
        with open(HEADER, "rb") as header:
            key = hashlib.sha256(header.read() + text.encode()).hexdigest()[:24]
        library = os.path.join(_cache_dir(), f"{key}.so")
        if not os.path.exists(library):
            scratch = tempfile.mkdtemp(dir=_cache_dir())
            cpp = os.path.join(scratch, "program.cpp")
            with open(cpp, "w") as out:
                out.write(text)
            built = os.path.join(scratch, "program.so")
            result = subprocess.run(
                ["g++", "-std=c++20", "-O1", "-w", "-shared", "-fPIC", cpp, "-o", built], capture_output=True, text=True
            )
            if result.returncode:
                raise RuntimeError(f"g++ could not build the emulated program:\n{result.stderr[-4000:]}")
            os.replace(built, library)
            shutil.rmtree(scratch, ignore_errors=True)
        self.library = _FFI.dlopen(library)

    def launch(self, name, grid, block, params):
        """Run kernel ``name`` over ``grid`` blocks of ``block`` threads. ``params`` is a cffi
        ``void *[]`` of pointers to the values (as for cuLaunchKernel), or a list of 8-byte
        integers."""
        if isinstance(params, list):
            values = _FFI.new("int64_t[]", params)
            params = _FFI.new("void *[]", [values + i for i in range(len(params))])
        error = _FFI.new("char[]", 256)
        status = self.library.exprc_emu_launch(
            name.encode(),
            _FFI.new("unsigned[3]", list(grid)),
            _FFI.new("unsigned[3]", list(block)),
            _FFI.cast("void **", params),
            error,
            256,
        )
        if status:
            raise RuntimeError(f"emulated launch of {name}: {_FFI.string(error).decode()}")


class _Kernel:
    """A kernel of an emulated program, as ``cuda_driver.get_function`` hands it out."""

    def __init__(self, program, name, launched_as):
        self.program, self.name, self.launched_as = program, name, launched_as


def _emulated_gpu():
    from tests.codegen.cuda_fake import FakeGpu

    class EmulatedGpu(FakeGpu):
        """:class:`~tests.codegen.cuda_fake.FakeGpu`'s memory and copies, with every kernel
        launch run by the emulator from the CUDA source (not interpreted from the IR)."""

        def __init__(self, monkeypatch):
            super().__init__(monkeypatch)
            from exprc.codegen.cuda import driver as cuda_driver

            self.built = {}
            monkeypatch.setattr(cuda_driver, "load_module", self.load_module)
            monkeypatch.setattr(
                cuda_driver, "get_function", lambda module, name: _Kernel(module[0], name, module[1].get(name))
            )

        def load_module(self, cubin):
            source = cubin.decode()
            if source not in self.built:
                self.built[source] = Program(source)
            return self.built[source], self.programs.get(source, {})

        def call(self, name, *args):
            if name != "cuLaunchKernel" or not isinstance(args[0], _Kernel):
                return super().call(name, *args)
            kernel, gx, gy, gz, bx, by, bz, shared, stream, params, extra = args
            assert shared == 0 and extra == _ffi_null(), "the launcher passes no dynamic shared memory or extras"
            self.launches.append((kernel.name, (gx, gy, gz), bx))
            kernel.program.launch(kernel.name, (gx, gy, gz), (bx, by, bz), params)

    return EmulatedGpu


def _ffi_null():
    from exprc.codegen.cuda import driver as cuda_driver

    return cuda_driver.ffi().NULL


def EmulatedGpu(monkeypatch):
    """Install the emulated GPU over the driver (see :func:`_emulated_gpu`)."""
    return _emulated_gpu()(monkeypatch)
