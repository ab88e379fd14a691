"""Random draws: Philox4x32-10 counter-based streams (Random123), as vectorized NumPy.

Every value is a function of the stream's seed, the draw's id (fixed when the node is
built), the call count and the element's index, so that the C and CUDA routines
(``exprc.codegen.c.random``, ``exprc.codegen.cuda.random``) compute the same bits in any
order, on any number of threads. ``docs/random.md`` gives the counter layout.

>>> import numpy as np
>>> [hex(w) for w in philox4x32_10(np.zeros((4, 1), np.uint32), (0, 0))[:, 0]]
['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..dtypes import is_float, is_integer
from ..graph import Apply, Op, Variable, toposort
from ..printing import ATOM, call_text
from ..shared import SharedVariable
from ..tensor import TensorConstant, TensorType, TensorVariable, as_tensor
from .shape import _length_inputs, shape_i, sum_to

#: Philox4x32's multipliers and Weyl key increments (Salmon et al., SC'11).
PHILOX_M = (0xD2511F53, 0xCD9E8D57)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)
PHILOX_ROUNDS = 10
_LOW = np.uint64(0xFFFFFFFF)
_32 = np.uint64(32)

#: Draws the C and CUDA routines compute; the others run their NumPy reference everywhere.
KERNEL_DRAWS = ("uniform", "normal", "bernoulli", "binomial", "integers")
HOST_DRAWS = ("permutation", "choice", "multinomial", "truncated_normal")
DRAWS = KERNEL_DRAWS + HOST_DRAWS
#: A binomial draw inverts the CDF in chunks of this many trials (q ** 512 never underflows).
BINOMIAL_CHUNK = 512
#: Elements per Philox block in bits 0..47 of the counter; bits 48..63 number sub-streams.
MAX_ELEMENTS = 1 << 48
#: The truncation of ``truncated_normal``, in standard deviations (as TensorFlow's and JAX's).
TRUNCATION = 2.0


def philox4x32_10(ctr: np.ndarray, key: Sequence[int]) -> np.ndarray:
    """Philox4x32-10 of counters ``ctr`` (uint32, shape ``(4, n)``) under ``key`` (two words).

    Returns the ``(4, n)`` uint32 output blocks.
    """
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) for c in ctr)
    k0, k1 = int(key[0]) & 0xFFFFFFFF, int(key[1]) & 0xFFFFFFFF
    m0, m1 = np.uint64(PHILOX_M[0]), np.uint64(PHILOX_M[1])
    for r in range(PHILOX_ROUNDS):
        if r:
            k0, k1 = (k0 + PHILOX_W[0]) & 0xFFFFFFFF, (k1 + PHILOX_W[1]) & 0xFFFFFFFF
        p0, p1 = c0 * m0, c2 * m1
        c0, c1, c2, c3 = (p1 >> _32) ^ c1 ^ np.uint64(k0), p1 & _LOW, (p0 >> _32) ^ c3 ^ np.uint64(k1), p0 & _LOW
    return np.stack([c0, c1, c2, c3]).astype(np.uint32)


def blocks(state: np.ndarray, draw: int, nblocks: int, sub: int | np.ndarray = 0, first: int = 0) -> np.ndarray:
    """The ``(4, nblocks)`` Philox outputs of blocks ``first ...`` of draw ``draw`` (sub-stream ``sub``).

    Counter: (block bits 0-31, block bits 32-47 | sub << 16, draw id, call count bits 0-31);
    key: the seed's two words.
    """
    seed, calls = int(state[0]), int(state[1])
    b = np.arange(first, first + nblocks, dtype=np.uint64)
    sub = np.asarray(sub, dtype=np.uint64)
    ctr = (
        b & _LOW,
        ((b >> _32) & np.uint64(0xFFFF)) | (sub << np.uint64(16)),
        np.full(nblocks, draw & 0xFFFFFFFF, np.uint64),
        np.full(nblocks, calls & 0xFFFFFFFF, np.uint64),
    )
    return philox4x32_10(np.broadcast_arrays(*ctr), (seed & 0xFFFFFFFF, seed >> 32))


def _unit32(w: np.ndarray) -> np.ndarray:
    """Words to float32 in [0, 1): their top 24 bits."""
    return (w >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)


def _unit64(wa: np.ndarray, wb: np.ndarray) -> np.ndarray:
    """Word pairs to float64 in [0, 1): 27 bits of the first and 26 of the second."""
    return ((wa >> np.uint32(5)).astype(np.float64) * 67108864.0 + (wb >> np.uint32(6))) * 2.0**-53


def standard_uniform(state, draw, n, dtype, first=0):
    """``n`` uniforms in [0, 1): 4 float32 or 2 float64 per block, element i in block i // k."""
    per = 4 if dtype == "float32" else 2
    w = blocks(state, draw, -(-n // per), first=first // per).T
    if dtype == "float32":
        return _unit32(w.reshape(-1))[:n]
    pairs = w.reshape(-1, 2)
    return _unit64(pairs[:, 0], pairs[:, 1])[:n]


def standard_normal(state, draw, n, dtype):
    """``n`` standard normals by Box-Muller, computed in float64 (rounded once for float32).

    float64: block -> u1 from words 0-1, u2 from 2-3 -> (r cos t, r sin t);
    float32: each word pair (0-1, 2-3) gives 24-bit u1, u2 -> two values, four per block.
    """
    if dtype == "float32":
        w = blocks(state, draw, -(-n // 4)).T.reshape(-1, 2)
        u1, u2 = _unit32(w[:, 0]).astype(np.float64), _unit32(w[:, 1]).astype(np.float64)
    else:
        w = blocks(state, draw, -(-n // 2)).T
        u1, u2 = _unit64(w[:, 0], w[:, 1]), _unit64(w[:, 2], w[:, 3])
    r = np.sqrt(-2.0 * np.log(1.0 - u1))
    t = 2.0 * np.pi * u2
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1).reshape(-1)[:n].astype(dtype)


def bernoulli(state, draw, p):
    """``w < ceil(p * 2**32)`` for one 32-bit word w per element (four per block)."""
    w = blocks(state, draw, -(-p.size // 4)).T.reshape(-1)[: p.size].astype(np.uint64)
    return w < np.ceil(p * 2.0**32).astype(np.uint64)


def _mulhi64(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The high 64 bits of the 128-bit product of uint64 arrays."""
    xh, xl, rh, rl = x >> _32, x & _LOW, r >> _32, r & _LOW
    lh, hl = xl * rh, xh * rl
    mid = ((xl * rl) >> _32) + (lh & _LOW) + (hl & _LOW)
    return xh * rh + (lh >> _32) + (hl >> _32) + (mid >> _32)


def integers(state, draw, low, high):
    """``low + floor(x * (high - low) / 2**64)`` for a 64-bit word pair x per element."""
    n = low.size
    w = blocks(state, draw, -(-n // 2)).T.reshape(-1, 2)[:n].astype(np.uint64)
    x = (w[:, 0] << _32) | w[:, 1]
    span = high.astype(np.uint64) - low.astype(np.uint64)
    return (low.astype(np.uint64) + _mulhi64(x, span)).view(np.int64)


def _power(q: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``q ** m`` by repeated squaring: the same products in NumPy, C and CUDA."""
    result, base, e = np.ones_like(q), q.copy(), m.copy()
    while e.any():
        result = np.where(e & 1, result * base, result)
        base = base * base
        e >>= 1
    return result


def binomial(state, draw, n, p):
    """Binomial draws by inversion, in chunks of :data:`BINOMIAL_CHUNK` trials; chunk c of
    element i takes the uniform of block i, sub-stream c."""
    flip = p > 0.5
    pp = np.where(flip, 1.0 - p, p)
    q = 1.0 - pp
    ratio = pp / q
    total = np.zeros(n.shape, np.int64)
    chunks = -(-n // BINOMIAL_CHUNK)
    for c in range(int(chunks.max(initial=0))):
        live = np.flatnonzero(c < chunks)
        m = np.minimum(BINOMIAL_CHUNK, n[live] - c * BINOMIAL_CHUNK)
        w = blocks(state, draw, int(live.max()) + 1, sub=c).T[live]
        u = _unit64(w[:, 0], w[:, 1])
        prob = _power(q[live], m)
        cdf = prob.copy()
        x = np.zeros(live.size, np.int64)
        go = np.flatnonzero((u > cdf) & (x < m))
        while go.size:
            prob[go] = prob[go] * ((m[go] - x[go]) / (x[go] + 1)) * ratio[live][go]
            x[go] += 1
            cdf[go] = cdf[go] + prob[go]
            go = go[(u[go] > cdf[go]) & (x[go] < m[go])]
        total[live] += x
    return np.where(flip, n - total, total)


def _categorical(u: np.ndarray, pvals: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(pvals, dtype=np.float64)
    return np.minimum(np.searchsorted(cdf / cdf[-1], u, side="right"), len(pvals) - 1)


def check_parameters(what: str, dist: str, params: Sequence[np.ndarray]) -> None:
    """The run-time checks of draw ``what``: a ValueError naming it and the bad value."""

    def bad(name, values, mask, expected):
        value = np.asarray(values)[mask].flat[0].item()
        raise ValueError(f"{what}: {name} must be {expected}, got {value!r}")

    if dist in ("bernoulli", "binomial"):
        p = np.asarray(params[-1])
        outside = ~((p >= 0) & (p <= 1))
        if outside.any():
            bad("p", p, outside, "in [0, 1]")
    if dist == "binomial":
        n = np.asarray(params[0])
        if (n < 0).any():
            bad("n", n, n < 0, "non-negative")
        if (n > BINOMIAL_CHUNK * 0xFFFF).any():
            bad("n", n, n > BINOMIAL_CHUNK * 0xFFFF, f"at most {BINOMIAL_CHUNK * 0xFFFF}")
    if dist == "integers":
        low, high = np.broadcast_arrays(*params)
        if (low >= high).any():
            at = np.flatnonzero(low >= high)[0]
            raise ValueError(f"{what}: low must be below high, got low={low.flat[at]} >= high={high.flat[at]}")
    if dist == "uniform":
        low, high = np.broadcast_arrays(*params)
        if (low > high).any():
            at = np.flatnonzero(low > high)[0]
            raise ValueError(f"{what}: low must not exceed high, got low={low.flat[at]} > high={high.flat[at]}")
    if dist in ("normal", "truncated_normal") and (np.asarray(params[1]) < 0).any():
        bad("scale", params[1], np.asarray(params[1]) < 0, "non-negative")


def draw_values(dist, draw, dtype, state, shape, params, options=()):
    """The NumPy reference of one draw: an array of ``shape`` (after checking ``params``)."""
    n = int(np.prod(shape, dtype=np.int64))
    if n > MAX_ELEMENTS:
        raise ValueError(f"random {dist}: {n} elements is more than a draw holds ({MAX_ELEMENTS})")
    if dist in HOST_DRAWS and dist != "truncated_normal":
        return _host_draw(dist, draw, dtype, state, shape, params, options)
    flat = [np.broadcast_to(np.asarray(p), shape).reshape(-1) for p in params]
    if dist == "uniform":
        low, high = (p.astype(dtype) for p in flat)
        out = low + (high - low) * standard_uniform(state, draw, n, dtype)
    elif dist == "normal":
        loc, scale = (p.astype(dtype) for p in flat)
        out = loc + scale * standard_normal(state, draw, n, dtype)
    elif dist == "bernoulli":
        out = bernoulli(state, draw, flat[0].astype(np.float64))
    elif dist == "binomial":
        out = binomial(state, draw, flat[0].astype(np.int64), flat[1].astype(np.float64))
    elif dist == "integers":
        out = integers(state, draw, flat[0].astype(np.int64), flat[1].astype(np.int64))
    elif dist == "truncated_normal":
        loc, scale = (p.astype(dtype) for p in flat)
        z, todo, sub = np.zeros(n), np.arange(n), 0
        while todo.size and sub < 0xFFFF:
            w = blocks(state, draw, n, sub=sub).T[todo]
            r = np.sqrt(-2.0 * np.log(1.0 - _unit64(w[:, 0], w[:, 1])))
            v = r * np.cos(2.0 * np.pi * _unit64(w[:, 2], w[:, 3]))
            keep = np.abs(v) < TRUNCATION
            z[todo[keep]] = v[keep]
            todo, sub = todo[~keep], sub + 1
        out = loc + scale * z.astype(dtype)
    else:
        raise ValueError(f"random: unknown distribution {dist!r}")
    return np.asarray(out, dtype=dtype).reshape(shape)


def _host_draw(dist, draw, dtype, state, shape, params, options):
    if dist == "permutation":
        keys = standard_uniform(state, draw, int(params[0]), "float64")
        return np.argsort(keys, kind="stable").astype(dtype)
    if dist == "choice":
        (replace,) = options
        count, pvals = int(params[0]), (params[1] if len(params) > 1 else None)
        n = int(np.prod(shape, dtype=np.int64))
        if not replace:
            if n > count:
                raise ValueError(f"random choice: cannot take {n} samples from {count} without replacement")
            keys = standard_uniform(state, draw, count, "float64")
            if pvals is not None:
                # Efraimidis-Spirakis: the k largest u ** (1 / p) are a weighted sample without replacement.
                with np.errstate(divide="ignore"):
                    keys = np.where(pvals > 0, np.log(keys) / pvals, -np.inf)
                return np.argsort(-keys, kind="stable")[:n].reshape(shape).astype(dtype)
            return np.argsort(keys, kind="stable")[:n].reshape(shape).astype(dtype)
        u = standard_uniform(state, draw, n, "float64")
        if pvals is None:
            return np.minimum((u * count).astype(np.int64), count - 1).reshape(shape).astype(dtype)
        return _categorical(u, pvals).reshape(shape).astype(dtype)
    if dist == "multinomial":
        trials, pvals = int(params[0]), np.asarray(params[1], np.float64)
        rows = int(np.prod(shape[:-1], dtype=np.int64))
        counts = np.zeros((rows, len(pvals)), dtype)
        for r in range(rows):
            w = blocks(state, draw, -(-trials // 2), sub=0, first=r * (-(-trials // 2))).T.reshape(-1, 2)[:trials]
            counts[r] = np.bincount(_categorical(_unit64(w[:, 0], w[:, 1]), pvals), minlength=len(pvals))
        return counts.reshape(shape)
    raise ValueError(f"random: unknown distribution {dist!r}")


def _check_options(what, dist, params):
    if dist == "multinomial":
        pvals = params[1]
        if pvals.ndim != 1 or (pvals < 0).any() or not np.isfinite(pvals).all() or pvals.sum() > 1 + 1e-12:
            raise ValueError(f"{what}: pvals must be a vector of non-negative probabilities summing to 1 at most")
        if params[0] < 0:
            raise ValueError(f"{what}: n must be non-negative, got {params[0]}")
    if dist == "choice":
        if params[0] <= 0:
            raise ValueError(f"{what}: a must be positive or a non-empty array, got {params[0]}")
        if len(params) > 1:
            p = params[1]
            if p.shape != (params[0],) or (p < 0).any() or abs(p.sum() - 1) > 1e-8:
                raise ValueError(f"{what}: p must hold {params[0]} non-negative probabilities summing to 1")
    if dist == "permutation" and params[0] < 0:
        raise ValueError(f"{what}: the length must be non-negative, got {params[0]}")


@dataclass(frozen=True)
class RandomDraw(Op):
    """One draw of a random stream. Inputs: the stream's state (uint64 ``[seed, calls]``),
    then ``nlen`` output lengths (none: the parameters' broadcast shape), then the parameters.

    ``draw`` is the draw's id in its stream, given when the node is built, so that no
    rewrite merges two draws; ``replace`` is ``choice``'s option.
    """

    dist: str
    draw: int
    dtype: str
    nlen: int = -1
    replace: bool = True

    def make_node(self, state, *rest):
        if not isinstance(state, TensorVariable) or state.dtype != "uint64" or state.type.shape != (2,):
            raise TypeError(f"random {self.dist}: the state must be a uint64 vector of 2, got {state}")
        lengths, params = (rest[: self.nlen], rest[self.nlen :]) if self.nlen >= 0 else ((), rest)
        if self.dist == "permutation":
            shape = (_static(params[0]),)
        elif self.dist == "multinomial":
            shape = tuple(_static(d) for d in lengths) + (params[1].type.shape[0],)
        elif self.nlen >= 0:
            shape = tuple(_static(d) for d in lengths)
            for p in params if self.dist != "choice" else ():
                _check_broadcast(self, p.type.shape, shape)
        else:
            shape = _broadcast_static([p.type.shape for p in params], self)
        return Apply(self, [state, *rest], [TensorType(self.dtype, shape)])

    def perform(self, node, inputs):
        state, *rest = inputs
        lengths, params = (rest[: self.nlen], rest[self.nlen :]) if self.nlen >= 0 else ((), rest)
        what = f"random {self.dist} (draw {self.draw})"
        if any(int(d) < 0 for d in lengths):
            raise ValueError(f"{what}: size must be non-negative, got {tuple(int(d) for d in lengths)}")
        params = [np.asarray(p) for p in params]
        if self.dist == "permutation":
            shape = (int(params[0]),)
        elif self.dist == "multinomial":
            shape = tuple(int(d) for d in lengths) + (params[1].shape[0],)
        elif self.nlen >= 0:
            shape = tuple(int(d) for d in lengths)
            if self.dist != "choice":
                for p in params:
                    try:
                        np.broadcast_to(p, shape)
                    except ValueError:
                        raise ValueError(
                            f"{what}: a parameter of shape {p.shape} does not broadcast to size {shape}"
                        ) from None
        else:
            shape = np.broadcast_shapes(*(p.shape for p in params))
        check_parameters(what, self.dist, params)
        _check_options(what, self.dist, params)
        return [draw_values(self.dist, self.draw, self.dtype, state, shape, params, (self.replace,))]

    def grad(self, node, output_grads):
        (g,) = output_grads
        state, *rest = node.inputs
        grads = [None] * len(node.inputs)
        if self.dist not in ("uniform", "normal") or not is_float(self.dtype):
            return grads
        # The gradient regenerates the standard draw (the same draw id, parameters 0 and 1)
        # rather than keeping it: the value depends only on seed, draw, call and index.
        out = node.outputs[0]
        lengths = [shape_i(out, k) for k in range(out.ndim)]
        a, b = rest[len(rest) - 2], rest[len(rest) - 1]
        standard = RandomDraw(self.dist, self.draw, self.dtype, out.ndim)(
            state, *lengths, as_tensor(0, dtype=self.dtype), as_tensor(1, dtype=self.dtype)
        )
        first = g * (1 - standard) if self.dist == "uniform" else g
        grads[-2] = sum_to(first, a) if is_float(a.dtype) else None
        grads[-1] = sum_to(g * standard, b) if is_float(b.dtype) else None
        return grads

    def infix(self, node, show):
        state, *rest = node.inputs
        lengths, params = (rest[: self.nlen], rest[self.nlen :]) if self.nlen >= 0 else ((), rest)
        args = [show(p) for p in params]
        if self.nlen >= 0:
            args.append("size=(" + ", ".join(show(d) for d in lengths) + ("," if self.nlen == 1 else "") + ")")
        return call_text(f"{show(state)}.{self.dist}", *args, draw=self.draw), ATOM


def _static(v):
    return int(v.value) if isinstance(v, TensorConstant) else None


def _check_broadcast(op, have, want):
    if len(have) > len(want):
        raise ValueError(f"random {op.dist}: a parameter of {len(have)} dimensions does not broadcast to size {want}")
    for h, w in zip(reversed(have), reversed(want)):
        if h not in (1, None) and w is not None and h != w:
            raise ValueError(f"random {op.dist}: a parameter of shape {have} does not broadcast to size {want}")


def _broadcast_static(shapes, op):
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for k in range(ndim):
        column = [s[len(s) - ndim + k] for s in shapes if len(s) - ndim + k >= 0]
        known = {d for d in column if d not in (None, 1)}
        if len(known) > 1:
            raise ValueError(f"random {op.dist}: parameters of shapes {shapes} do not broadcast together")
        out.append(known.pop() if known else (None if None in column else 1))
    return tuple(out)


def size_lengths(size, what: str) -> list[TensorVariable] | None:
    """``size`` (None, an int, a tuple, or a symbolic shape) as int64 scalars; checks static ones."""
    if size is None:
        return None
    lengths = _length_inputs(size, what)
    for d in lengths:
        if _static(d) is not None and _static(d) < 0:
            raise ValueError(f"{what}: size must be non-negative, got {tuple(_static(v) for v in lengths)}")
    return lengths


def float_dtype(dtype, params: Sequence[TensorVariable], what: str) -> str:
    """``dtype`` or, when None, the parameters' float type (float64 for integer parameters)."""
    if dtype is not None:
        dtype = np.dtype(dtype).name
        if dtype not in ("float32", "float64"):
            raise TypeError(f"{what}: dtype must be float32 or float64, got {dtype}")
        return dtype
    floats = [p.dtype for p in params if is_float(p.dtype) and not p.type.weak]
    return "float32" if floats and all(d == "float32" for d in floats) else "float64"


def integer_parameter(value, what: str, name: str) -> TensorVariable:
    """An integer parameter as an int64 tensor: a float ``n`` is refused, not rounded."""
    v = as_tensor(value)
    if not (is_integer(v.dtype) or v.dtype == "bool"):
        raise TypeError(f"{what}: {name} must be an integer, got {v} ({v.dtype})")
    return v if v.dtype == "int64" else v.astype("int64")


#: Shared variable -> the update ``ex.function`` applies when a graph reads it (Theano's
#: ``default_update``): a random stream's state moves on by one call.
DEFAULT_UPDATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


#: An output of a loop -> the ``(shared variable, value after the loop)`` pairs of the streams
#: its body draws from: the loop moves a stream on by one call per step, so a function that
#: runs the loop moves it on by the loop's count, not by one (see :func:`default_updates`).
THREADED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def default_updates(roots: Sequence[Variable], updates: Sequence[tuple] = ()) -> list[tuple]:
    """``updates`` plus the default update of every shared variable in the graph of ``roots``
    that has one (a random stream's state: one call more; after a loop that draws from it,
    its value after the loop) and is not already updated."""
    updated = {id(var) for var, _ in updates}
    extra = []
    nodes = toposort(list(roots) + [new for _, new in updates])
    for node in nodes:
        for out in node.outputs:
            for var, new in THREADED.get(out, ()):
                if id(var) not in updated:
                    updated.add(id(var))
                    extra.append((var, new))
    for node in nodes:
        for v in node.inputs:
            new = DEFAULT_UPDATES.get(v) if isinstance(v, SharedVariable) else None
            if isinstance(v, SharedVariable) and new is not None and id(v) not in updated:
                updated.add(id(v))
                extra.append((v, new))
    return list(updates) + extra
