"""What the loop tests share: running a graph on the back end under test, and NumPy loops as oracles."""

import numpy as np

import exprc as ex
from tests.ops import _oracle


def run(outputs, feeds, updates=None):
    """``outputs`` (a variable or a list) computed on the back end under test from ``feeds``."""
    single = not isinstance(outputs, (list, tuple))
    f = ex.function(
        list(feeds), [outputs] if single else list(outputs), backend=_oracle.current_backend(), updates=updates
    )
    got = [np.asarray(v) for v in f(*feeds.values())]
    return got[0] if single else got


def same(got, expected, rtol=1e-10, atol=1e-12):
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.dtype == expected.dtype, f"dtype {got.dtype}, NumPy gives {expected.dtype}"
    assert got.shape == expected.shape, f"shape {got.shape}, NumPy gives {expected.shape}"
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def rnn_numpy(x, h0, W, U, b):
    h, out = h0, []
    for x_t in x:
        h = np.tanh(x_t @ W + h @ U + b)
        out.append(h)
    return np.stack(out) if out else np.zeros((0, *h0.shape))


def lstm_numpy(x, h0, c0, W, U, b):
    h, c, hs = h0, c0, []
    n = h0.shape[-1]
    for x_t in x:
        z = x_t @ W + h @ U + b
        i, f, o, g = sigmoid(z[:, :n]), sigmoid(z[:, n : 2 * n]), sigmoid(z[:, 2 * n : 3 * n]), np.tanh(z[:, 3 * n :])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
    return np.stack(hs), c


def rnn_step(x_t, h, W, U, b):
    return ex.tanh(x_t @ W + h @ U + b)


def lstm(x, h0, c0, W, U, b, n):
    """The hidden states and last cell state of an LSTM of ``n`` units, as one scan."""

    def step(x_t, h, c, W, U, b):
        z = x_t @ W + h @ U + b
        i, f = ex.sigmoid(z[:, :n]), ex.sigmoid(z[:, n : 2 * n])
        o, g = ex.sigmoid(z[:, 2 * n : 3 * n]), ex.tanh(z[:, 3 * n :])
        c = f * c + i * g
        return o * ex.tanh(c), c

    (hs, cs), _ = ex.scan(step, sequences=x, outputs_info=[h0, c0], non_sequences=[W, U, b], name="lstm")
    return hs, cs[-1]
