"""Small programs written for Theano, run unchanged through exprc.compat.theano.install(),
against the same programs written directly with exprc.

Each Theano program is source text, as it would sit in a file: ``import theano`` and all."""

import numpy as np
import pytest

import exprc as ex

LOGISTIC_REGRESSION = """
import numpy
import theano
import theano.tensor as T

rng = numpy.random.RandomState(1234)
x_values = rng.rand(40, 6)
labels = numpy.argmax(numpy.dot(x_values, rng.randn(6, 3)), axis=1)
data_x = theano.shared(numpy.asarray(x_values, dtype=theano.config.floatX), borrow=True)
data_y = T.cast(theano.shared(numpy.asarray(labels, dtype=theano.config.floatX)), 'int32')

class LogisticRegression(object):
    def __init__(self, input, n_in, n_out, W=None):
        if not W:
            W = theano.shared(value=numpy.zeros((n_in, n_out), dtype=theano.config.floatX), name='W', borrow=True)
        self.W = W
        self.b = theano.shared(value=numpy.zeros((n_out,), dtype=theano.config.floatX), name='b', borrow=True)
        self.p_y_given_x = T.nnet.softmax(T.dot(input, self.W) + self.b)
        self.y_pred = T.argmax(self.p_y_given_x, axis=1)
        self.params = [self.W, self.b]

    def negative_log_likelihood(self, y):
        return -T.mean(T.log(self.p_y_given_x)[T.arange(y.shape[0]), y])

    def errors(self, y):
        return T.mean(T.neq(self.y_pred, y))

index = T.lscalar()
x = T.matrix('x')
y = T.ivector('y')
classifier = LogisticRegression(input=x, n_in=6, n_out=3)
cost = classifier.negative_log_likelihood(y)
g_W = T.grad(cost=cost, wrt=classifier.W)
g_b = T.grad(cost=cost, wrt=classifier.b)
updates = [(classifier.W, classifier.W - 0.5 * g_W), (classifier.b, classifier.b - 0.5 * g_b)]
batch_size = 10
train_model = theano.function(
    inputs=[index],
    outputs=cost,
    updates=updates,
    givens={x: data_x[index * batch_size: (index + 1) * batch_size],
            y: data_y[index * batch_size: (index + 1) * batch_size]},
)
losses = [float(train_model(i % 4)) for i in range(12)]
error = theano.function([], classifier.errors(y), givens={x: data_x, y: data_y})()
"""


def test_logistic_regression_with_givens_and_arange_indexing(theano):
    scope = {}
    exec(LOGISTIC_REGRESSION, scope)
    rng = np.random.RandomState(1234)
    data_x = rng.rand(40, 6)
    data_y = np.argmax(data_x @ rng.randn(6, 3), axis=1)
    W, b, losses = np.zeros((6, 3)), np.zeros(3), []
    for i in range(12):
        xb, yb = data_x[(i % 4) * 10 : (i % 4 + 1) * 10], data_y[(i % 4) * 10 : (i % 4 + 1) * 10]
        z = xb @ W + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        losses.append(-np.mean(np.log(p)[np.arange(10), yb]))
        d = p.copy()
        d[np.arange(10), yb] -= 1
        W, b = W - 0.5 * xb.T @ d / 10, b - 0.5 * d.sum(0) / 10
    np.testing.assert_allclose(scope["losses"], losses, rtol=1e-10)
    assert losses[8] < losses[4] < losses[0]  # the first batch, seen again
    np.testing.assert_allclose(scope["classifier"].W.get_value(), W, rtol=1e-10)
    assert 0.0 <= float(scope["error"]) <= 1.0


DENOISING_AUTOENCODER = """
import numpy
import theano
import theano.tensor as T
from theano.sandbox.rng_mrg import MRG_RandomStreams as RandomStreams

numpy_rng = numpy.random.RandomState(123)
theano_rng = RandomStreams(numpy_rng.randint(2 ** 30))
data = theano.shared(numpy.asarray(numpy_rng.rand(20, 8), dtype=theano.config.floatX))
n_visible, n_hidden = 8, 5
initial_W = numpy.asarray(numpy_rng.uniform(low=-0.5, high=0.5, size=(n_visible, n_hidden)), dtype=theano.config.floatX)
W = theano.shared(value=initial_W, name='W', borrow=True)
bvis = theano.shared(value=numpy.zeros(n_visible, dtype=theano.config.floatX), borrow=True)
bhid = theano.shared(value=numpy.zeros(n_hidden, dtype=theano.config.floatX), name='b', borrow=True)
x = T.matrix('x')
tilde_x = theano_rng.binomial(size=x.shape, n=1, p=0.7, dtype=theano.config.floatX) * x
y = T.nnet.sigmoid(T.dot(tilde_x, W) + bhid)
z = T.nnet.sigmoid(T.dot(y, W.T) + bvis)
L = - T.sum(x * T.log(z) + (1 - x) * T.log(1 - z), axis=1)
cost = T.mean(L)
params = [W, bhid, bvis]
gparams = T.grad(cost, params)
updates = [(param, param - 0.1 * gparam) for param, gparam in zip(params, gparams)]
index = T.lscalar()
train_da = theano.function([index], cost, updates=updates, givens={x: data[index * 10: (index + 1) * 10]})
costs = [float(train_da(i % 2)) for i in range(6)]
"""


def test_denoising_autoencoder_with_mrg_random_streams(theano):
    scope = {}
    exec(DENOISING_AUTOENCODER, scope)
    # The same program against exprc: the same seed gives the same corruption masks.
    numpy_rng = np.random.RandomState(123)
    srng = ex.random.RandomStream(numpy_rng.randint(2**30))
    data = numpy_rng.rand(20, 8)
    W = ex.shared(numpy_rng.uniform(low=-0.5, high=0.5, size=(8, 5)))
    bvis, bhid = ex.shared(np.zeros(8)), ex.shared(np.zeros(5))
    x = ex.matrix("x")
    y = ex.sigmoid((srng.binomial(1, 0.7, size=x.shape).astype("float64") * x) @ W + bhid)
    z = ex.sigmoid(y @ W.T + bvis)
    cost = (-(x * ex.log(z) + (1 - x) * ex.log(1 - z)).sum(axis=1)).mean()
    params = [W, bhid, bvis]
    step = ex.function([x], cost, updates=[(p, p - 0.1 * g) for p, g in zip(params, ex.grad(cost, params))])
    costs = [float(step(data[(i % 2) * 10 : (i % 2 + 1) * 10])) for i in range(6)]
    np.testing.assert_allclose(scope["costs"], costs, rtol=1e-10)
    np.testing.assert_allclose(scope["W"].get_value(), W.get_value(), rtol=1e-10)
    assert costs[-1] < costs[0]


LENET_LAYER = """
import numpy
import theano
import theano.tensor as T
from theano.tensor.nnet import conv2d
from theano.tensor.signal import pool

rng = numpy.random.RandomState(23455)
image_shape, filter_shape, poolsize = (2, 1, 8, 8), (3, 1, 3, 3), (2, 2)
fan_in = numpy.prod(filter_shape[1:])
W_bound = numpy.sqrt(6. / (fan_in + filter_shape[0] * numpy.prod(filter_shape[2:]) // numpy.prod(poolsize)))
W = theano.shared(numpy.asarray(rng.uniform(low=-W_bound, high=W_bound, size=filter_shape), dtype=theano.config.floatX), borrow=True)
b = theano.shared(numpy.zeros((filter_shape[0],), dtype=theano.config.floatX), borrow=True)
input = T.tensor4('input')
conv_out = conv2d(input=input, filters=W, filter_shape=filter_shape, input_shape=image_shape)
pooled_out = pool.pool_2d(input=conv_out, ws=poolsize, ignore_border=True)
output = T.tanh(pooled_out + b.dimshuffle('x', 0, 'x', 'x'))
f = theano.function([input], output.flatten(2))
images = rng.rand(*image_shape)
result = f(images)
"""


def test_a_lenet_layer_with_conv2d_and_pool_2d(theano):
    scope = {}
    exec(LENET_LAYER, scope)
    images, W = scope["images"], scope["W"].get_value()
    flipped = W[:, :, ::-1, ::-1]
    conv = np.zeros((2, 3, 6, 6))
    for n in range(2):
        for k in range(3):
            for i in range(6):
                for j in range(6):
                    conv[n, k, i, j] = np.sum(images[n, :, i : i + 3, j : j + 3] * flipped[k])
    pooled = conv.reshape(2, 3, 3, 2, 3, 2).max(axis=(3, 5))
    np.testing.assert_allclose(scope["result"], np.tanh(pooled).reshape(2, -1), rtol=1e-10)


RNN_WITH_DEFAULTS = """
import numpy
import theano
import theano.tensor as T

rng = numpy.random.RandomState(7)
n_in, n_hidden = 3, 4
W_in = theano.shared(rng.uniform(-0.5, 0.5, (n_in, n_hidden)), name='W_in')
W_rec = theano.shared(rng.uniform(-0.5, 0.5, (n_hidden, n_hidden)), name='W_rec')
u = T.matrix('u')
h0 = T.vector('h0')
lr = T.scalar('lr')

def step(u_t, h_tm1):
    return T.tanh(T.dot(u_t, W_in) + T.dot(h_tm1, W_rec))

h, _ = theano.scan(step, sequences=u, outputs_info=h0)
cost = T.sum(h[-1] ** 2)
gW_in, gW_rec = T.grad(cost, [W_in, W_rec])
train = theano.function([u, h0, theano.In(lr, value=0.05)], cost,
                        updates=[(W_in, W_in - lr * gW_in), (W_rec, W_rec - lr * gW_rec)])
sequence = rng.rand(5, n_in)
costs = [float(train(sequence, numpy.zeros(n_hidden))) for _ in range(3)]
costs.append(float(train(sequence, numpy.zeros(n_hidden), lr=0.0)))
"""


def test_an_rnn_with_scan_and_in_defaults(theano):
    scope = {}
    exec(RNN_WITH_DEFAULTS, scope)
    rng = np.random.RandomState(7)
    W_in, W_rec = rng.uniform(-0.5, 0.5, (3, 4)), rng.uniform(-0.5, 0.5, (4, 4))
    sequence = rng.rand(5, 3)
    w_in, w_rec = ex.shared(W_in), ex.shared(W_rec)
    u, h = ex.matrix("u"), ex.zeros(4)
    for t in range(5):  # the loop unrolled: the reference scan must match it
        h = ex.tanh(u[t] @ w_in + h @ w_rec)
    cost = (h**2).sum()
    g_in, g_rec = ex.grad(cost, [w_in, w_rec])
    costs = []
    for lr in (0.05, 0.05, 0.05, 0.0):
        step = ex.function([u], cost, updates=[(w_in, w_in - lr * g_in), (w_rec, w_rec - lr * g_rec)])
        costs.append(float(step(sequence)))
    np.testing.assert_allclose(scope["costs"], costs, rtol=1e-10)
    assert scope["costs"][3] == pytest.approx(scope["costs"][2], rel=0.5)


RBM_GIBBS_CHAIN = """
import numpy
import theano
import theano.tensor as T
from theano.tensor.shared_randomstreams import RandomStreams

rng = numpy.random.RandomState(5)
theano_rng = RandomStreams(rng.randint(2 ** 30))
W = theano.shared(rng.uniform(-0.3, 0.3, (6, 4)), name='W')
hbias = theano.shared(numpy.zeros(4), name='hbias')
vbias = theano.shared(numpy.zeros(6), name='vbias')

def gibbs_vhv(v0_sample):
    h1_mean = T.nnet.sigmoid(T.dot(v0_sample, W) + hbias)
    v1_mean = T.nnet.sigmoid(T.dot(h1_mean, W.T) + vbias)
    return v1_mean

v0 = T.matrix('v0')
chain, updates = theano.scan(gibbs_vhv, outputs_info=[v0], n_steps=4)
sample = theano.function([v0], chain[-1], updates=updates)
start = rng.rand(3, 6)
result = sample(start)
"""


def test_an_rbm_gibbs_chain_with_scan(theano):
    scope = {}
    exec(RBM_GIBBS_CHAIN, scope)
    W = scope["W"].get_value()
    v = scope["start"]
    for _ in range(4):
        h = 1 / (1 + np.exp(-(v @ W)))
        v = 1 / (1 + np.exp(-(h @ W.T)))
    np.testing.assert_allclose(scope["result"], v, rtol=1e-10)
