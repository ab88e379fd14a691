"""The tour in ``python -m exprc.demo`` runs, and every result it checks agrees with NumPy."""

import subprocess
import sys


def test_demo_runs_and_agrees_with_numpy():
    proc = subprocess.run([sys.executable, "-m", "exprc.demo"], capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "mismatch" not in output.lower(), output
    assert "checks OK" in proc.stdout, output


def test_demo_on_cuda_trains_on_the_gpu_or_says_why_not():
    import exprc as ex

    proc = subprocess.run(
        [sys.executable, "-m", "exprc.demo", "--device", "cuda"], capture_output=True, text=True, timeout=180
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "checks OK" in proc.stdout and "mismatch" not in output.lower(), output
    if ex.cuda.is_available():
        assert "Training a two-layer MLP (float32) on the GPU" in proc.stdout, output
    else:
        assert "GPU training skipped: " + ex.cuda.missing()[0] in proc.stdout, output
