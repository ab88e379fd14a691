"""The tour in ``python -m exprc.demo`` runs, and every result it checks agrees with NumPy."""
import subprocess
import sys


def test_demo_runs_and_agrees_with_numpy():
    proc = subprocess.run(
        [sys.executable, "-m", "exprc.demo"], capture_output=True, text=True, timeout=120
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "mismatch" not in output.lower(), output
    assert "checks OK" in proc.stdout, output
