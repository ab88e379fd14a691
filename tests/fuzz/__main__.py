"""``python -m tests.fuzz --graphs N --seed S``: generate N graphs, check each on every back end,
print each failure shrunk to a runnable program, and a summary; the exit status is 1 on failures.
With ``$EXPRC_TEST_FAKE_GPU`` set (see ``tests/ops/_oracle.py``), each graph also runs on
device="cuda" over the stand-in driver (``1``) or the CUDA emulator (``emulate``)."""

import argparse
import sys

from tests.ops._oracle import _stand_in

from .run import BACKENDS, cuda_backends, fuzz


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--graphs", type=int, default=1000, help="how many graphs (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="the campaign's seed (default 0)")
    parser.add_argument("--max-nodes", type=int, default=10, help="the most nodes a graph draws (default 10)")
    parser.add_argument("--no-shrink", action="store_true", help="report failures as generated")
    parser.add_argument(
        "--no-cuda",
        action="store_true",
        help="skip the GPU: running each graph there (where there is one) or compiling its "
        "CUDA kernels with NVRTC (where NVRTC is installed)",
    )
    parser.add_argument("--minutes", type=float, help="stop after this long, with fewer graphs if need be")
    args = parser.parse_args(argv)
    stand_in = None if args.no_cuda else _stand_in()
    if stand_in is not None:  # $EXPRC_TEST_FAKE_GPU: each graph runs on the stand-in GPU
        import pytest

        patch = pytest.MonkeyPatch()
        stand_in(patch)
        backends = BACKENDS + ("cuda",)
    else:
        backends = BACKENDS + (() if args.no_cuda else cuda_backends())
    report = fuzz(
        args.graphs,
        args.seed,
        not args.no_shrink,
        log=lambda text: print(text, flush=True),
        max_nodes=args.max_nodes,
        backends=backends,
        seconds=None if args.minutes is None else 60 * args.minutes,
    )
    print(report.summary())
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
