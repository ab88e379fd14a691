import numpy as np
import pytest

from .helpers import RNG_SEED


@pytest.fixture
def rng():
    """A random generator with a fixed seed, so every run draws the same test values."""
    return np.random.default_rng(RNG_SEED)


#: The tests outside tests/ops left out of the fast tier (``-m "not slow"``), by what they
#: cost (seconds a case, measured with ``--durations`` on two loaded cores): test id prefix
#: -> the parameter ids that stay fast as the cheap representative (empty: none; the other
#: tests of the file represent it). The op tests choose theirs in tests/ops/conftest.py.
SLOW = {
    # two fresh processes building the W6 graph and its gradient, one cold, one warm (3-11 s)
    "tests/grad/test_derivative_table.py::test_warm_process_takes_the_gradient_and_compiles_without_sympy": (),
    # the fuzzer's short run: 40 random graphs a chunk, compiled and compared (40-120 s)
    "tests/fuzz/test_fuzz.py::test_short_fuzz_run": (),
    "tests/fuzz/test_fuzz.py::test_short_fuzz_run_on_the_stand_in_gpu": (),
    # every kernel of the op tests through NVRTC, per group and architecture (up to 100 s);
    # test_cuda_compile_sample.py compiles a sample of each group in the fast tier
    "tests/codegen/test_cuda_compile.py::test_every_kernel_compiles_to_cubin": (),
    # a block of rows or results at a time, every dtype (5-10 s each): one dtype stays
    "tests/codegen/test_c_reduction.py::test_reductions_over_short_rows_run_a_block_of_rows_at_a_time": ("float64",),
    "tests/codegen/test_c_reduction.py::test_reductions_over_outer_axes_run_a_block_of_results_at_a_time": ("float64",),
    # subprocesses: a second Python process importing exprc and compiling (3-4.5 s);
    # test_cache_dir_writable_by_others_is_refused and the cache command's own stay
    "tests/codegen/test_c_build.py::test_concurrent_processes_build_one_entry": (),
    "tests/codegen/test_c_build.py::test_warm_second_process_imports_neither_sympy_nor_a_c_parser": (),
    "tests/codegen/test_c_build.py::test_warm_second_process_does_not_run_the_compiler": (),
    # every scalar op of the C back end as one program per dtype (3-8 s each): one dtype stays
    "tests/codegen/test_c_elementwise.py::test_every_scalar_op": ("float64",),
    # verify_grad through C, every op at once (9-14 s each); test_c_gradients_equal_numpy_gradients
    # (the same graph through C) and verify_grad_c_unary[contiguous] stay
    "tests/grad/test_backends.py::test_verify_grad_c_unary": ("contiguous",),
    "tests/grad/test_backends.py::test_verify_grad_c_binary_broadcast": (),
    "tests/grad/test_backends.py::test_verify_grad_c_reductions_linalg_shapes_indexing": (),
    # python -m exprc.demo in a subprocess, its whole tour (19 s); the demo on device="cuda"
    # (8 s where no GPU is: it says why not) stays
    "tests/test_demo.py::test_demo_runs_and_agrees_with_numpy": (),
    # every GEMM kernel through NVRTC, per architecture (10-16 s each); test_cuda_compile_sample.py
    # is the fast tier's NVRTC check
    "tests/codegen/test_cuda_gemm.py::test_every_gemm_kernel_compiles_to_a_cubin": (),
    # every reduction of the C back end, per dtype (3-6 s each): one dtype stays
    "tests/codegen/test_c_reduction.py::test_primitive_reductions": ("float64",),
    # CUDA kernels run by the CPU emulator (g++ over the source, a fiber per thread): 5-18 s a case
    "tests/codegen/test_cuda_emulated.py::test_reduction_kernels": ("axis3-sum",),
    "tests/codegen/test_cuda_emulated.py::test_every_accumulator_width_crosses_the_warps": ("int8",),
    "tests/codegen/test_cuda_emulated.py::test_integer_and_boolean_reductions": (),
    # one C program of every dtype pair per op (8-9 s each): add stays
    "tests/test_promotion.py::test_binary_op_of_every_dtype_pair_in_one_c_program": ("add",),
    # a thousand calls watched for memory growth (24 s)
    "tests/test_memory.py::test_calls_do_not_grow_memory": (),
    # a chain of hundreds of ops compiled (11 s)
    "tests/test_graph.py::test_deep_chain_compiles_and_matches_numpy": (),
}


def _slow_entry(nodeid):
    base, _, params = nodeid.partition("[")
    keep = SLOW.get(base)
    if keep is None:
        return False
    return params.rstrip("]") not in keep


def pytest_collection_modifyitems(config, items):
    """Mark ``slow`` the tests :data:`SLOW` names."""
    for item in items:
        if _slow_entry(item.nodeid):
            item.add_marker(pytest.mark.slow)
