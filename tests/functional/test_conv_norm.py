"""First- and second-order checks of the convolution family, pooling and batch norm."""
import numpy as np
import pytest

import minigan
import minigan.nn.functional as F
from minigan import Tensor
from minigan.testing import check_backward, check_double_backward

R = np.random.default_rng(42)

CONV_CONFIGS = [  # x shape, w shape, stride, padding, dilation
    ((2, 3, 5, 6), (4, 3, 3, 2), 1, 0, 1),
    ((1, 2, 7, 7), (3, 2, 3, 3), 2, 1, 1),
    ((2, 2, 6, 5), (2, 2, 2, 3), (1, 2), (2, 1), (2, 1)),
]


def _xp_inputs(xp, *arrays):
    return [xp.asarray(a) for a in arrays]


@pytest.mark.parametrize("xs,ws,s,p,d", CONV_CONFIGS)
def test_conv2d_first_and_second_order(xp, xs, ws, s, p, d):
    x, w, b = _xp_inputs(xp, R.standard_normal(xs), R.standard_normal(ws),
                         R.standard_normal(ws[0]))

    def f(x, w, b):
        return F.conv2d(x, w, b, s, p, d)

    check_backward(f, [x, w, b])
    check_double_backward(f, [x, w, b])


@pytest.mark.parametrize("xs,ws,s,p,op,d", [
    ((2, 3, 3, 4), (3, 2, 3, 3), 1, 0, 0, 1),
    ((1, 2, 4, 3), (2, 3, 4, 4), 2, 1, 1, 1),
    ((2, 2, 3, 3), (2, 2, 3, 2), (2, 3), (1, 0), (1, 2), (1, 2)),
    ((1, 2, 3, 3), (2, 2, 3, 3), 1, 0, 1, 2),  # output_padding >= stride (below the dilation)
])
def test_conv_transpose2d_first_and_second_order(xp, xs, ws, s, p, op, d):
    x, w, b = _xp_inputs(xp, R.standard_normal(xs), R.standard_normal(ws),
                         R.standard_normal(ws[1]))

    def f(x, w, b):
        return F.conv_transpose2d(x, w, b, s, p, op, dilation=d)

    check_backward(f, [x, w, b])
    check_double_backward(f, [x, w, b])


@pytest.mark.parametrize("xs,ws,s,p,d", CONV_CONFIGS)
def test_conv2d_grad_weight_first_and_second_order(xp, xs, ws, s, p, d):
    x = xp.asarray(R.standard_normal(xs))
    y = F.conv2d(Tensor(x), Tensor(xp.asarray(R.standard_normal(ws))), None, s, p, d)
    gy = xp.asarray(R.standard_normal(y.shape))

    def f(x, gy):
        return F.conv2d_grad_weight(x, gy, ws[2:], s, p, d)

    check_backward(f, [x, gy])
    check_double_backward(f, [x, gy])


def test_conv2d_grad_weight_is_the_weight_gradient():
    x = R.standard_normal((2, 3, 6, 6))
    w = Tensor(R.standard_normal((4, 3, 3, 3)), requires_grad=True)
    y = F.conv2d(Tensor(x), w, None, 2, 1)
    gy = R.standard_normal(y.shape)
    (gw,) = minigan.grad(y, w, Tensor(gy))
    direct = F.conv2d_grad_weight(Tensor(x), Tensor(gy), (3, 3), 2, 1)
    np.testing.assert_allclose(gw.numpy(), direct.numpy(), rtol=1e-12)


def test_conv_errors_name_shapes():
    x = Tensor(np.ones((1, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"3 channels but weight of shape \(2, 4, 3, 3\)"):
        F.conv2d(x, np.ones((2, 4, 3, 3)))
    with pytest.raises(ValueError, match="4-D"):
        F.conv2d(Tensor(np.ones((3, 5, 5))), np.ones((2, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"conv_transpose2d.*3 channels"):
        F.conv_transpose2d(x, np.ones((2, 4, 3, 3)))


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 3, 2)])
def test_batch_norm_training_first_and_second_order(xp, shape):
    c = shape[1]
    x, w, b = _xp_inputs(xp, R.standard_normal(shape) * 2 + 1, R.uniform(0.5, 1.5, c),
                         R.standard_normal(c))

    def f(x, w, b):
        return F.batch_norm(x, None, None, w, b, training=True)

    check_backward(f, [x, w, b])
    check_double_backward(f, [x, w, b])


@pytest.mark.parametrize("slope", [0.0, 0.2])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 3, 2)])
def test_batch_norm_leaky_relu_training_first_and_second_order(xp, shape, slope):
    """The fused op in float64 against finite differences (the mask comes from its output)."""
    from minigan.functional.norm import batch_norm_leaky_relu
    c = shape[1]
    x, w, b = _xp_inputs(xp, R.standard_normal(shape) * 2 + 1, R.uniform(0.5, 1.5, c),
                         R.standard_normal(c))

    def f(x, w, b):
        return batch_norm_leaky_relu(x, None, None, w, b, True, negative_slope=slope)

    check_backward(f, [x, w, b])
    check_double_backward(f, [x, w, b])


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("slope", [0.0, 0.2])
def test_batch_norm_leaky_relu_is_the_two_ops(xp, slope, training):
    """Values (bit for bit), running statistics and gradients of the fused op equal those of
    leaky_relu(batch_norm(...))."""
    from minigan.functional.norm import batch_norm_leaky_relu
    x0 = R.standard_normal((5, 4, 3, 3))
    w0, b0 = R.uniform(0.5, 1.5, 4), R.standard_normal(4)
    rm0, rv0 = R.standard_normal(4) * 0.1, R.uniform(0.5, 2, 4)
    runs = []
    for fused in (True, False):
        x, w, b = (Tensor(a, requires_grad=True) for a in _xp_inputs(xp, x0, w0, b0))
        rm, rv = xp.asarray(rm0.copy()), xp.asarray(rv0.copy())
        if fused:
            y = batch_norm_leaky_relu(x, rm, rv, w, b, training, 0.1, 1e-5, slope)
        else:
            y = F.leaky_relu(F.batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5), slope)
        (y * y * Tensor(xp.asarray(np.arange(y.size).reshape(y.shape) % 7))).sum().backward()
        runs.append([y.numpy(), minigan.backend.to_numpy(rm), minigan.backend.to_numpy(rv),
                     x.grad.numpy(), w.grad.numpy(), b.grad.numpy()])
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for a, b_ in zip(runs[0][1:], runs[1][1:]):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="negative_slope must be >= 0, got -0.5"):
        batch_norm_leaky_relu(Tensor(x0), None, None, training=True, negative_slope=-0.5)


@pytest.mark.parametrize("slope", [0.0, 0.2])
@pytest.mark.parametrize("bias,shape", [(True, (5, 4)), (False, (2, 3, 4))])
def test_linear_leaky_relu_first_and_second_order(xp, slope, bias, shape):
    from minigan.functional.activation import linear_leaky_relu
    x, w, b = _xp_inputs(xp, R.standard_normal(shape), R.standard_normal((3, shape[-1])),
                         R.standard_normal(3))

    def f(x, w, *b):
        return linear_leaky_relu(x, w, b[0] if b else None, slope)

    inputs = [x, w, b] if bias else [x, w]
    check_backward(f, inputs)
    check_double_backward(f, inputs)


@pytest.mark.parametrize("slope", [0.0, 0.2])
def test_linear_leaky_relu_is_the_two_ops(xp, slope):
    from minigan.functional.activation import linear_leaky_relu
    x0, w0, b0 = R.standard_normal((6, 5)), R.standard_normal((4, 5)), R.standard_normal(4)
    runs = []
    for fused in (True, False):
        x, w, b = (Tensor(a, requires_grad=True) for a in _xp_inputs(xp, x0, w0, b0))
        y = (linear_leaky_relu(x, w, b, slope) if fused
             else F.leaky_relu(F.linear(x, w, b), slope))
        (y * y * Tensor(xp.asarray(np.arange(y.size).reshape(y.shape) % 5))).sum().backward()
        runs.append([y.numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()])
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for a, b_ in zip(runs[0][1:], runs[1][1:]):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="negative_slope must be >= 0, got -1"):
        linear_leaky_relu(Tensor(x0), w0, None, -1)


@pytest.mark.parametrize("bias,shape", [(True, (5, 4)), (False, (2, 3, 4))])
def test_linear_tanh_first_and_second_order(xp, bias, shape):
    from minigan.functional.activation import linear_tanh
    x, w, b = _xp_inputs(xp, R.standard_normal(shape), R.standard_normal((3, shape[-1])) * 0.5,
                         R.standard_normal(3))

    def f(x, w, *b):
        return linear_tanh(x, w, b[0] if b else None)

    inputs = [x, w, b] if bias else [x, w]
    check_backward(f, inputs)
    check_double_backward(f, inputs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_tanh_is_the_two_ops(xp, dtype, bias):
    """The same values and gradients as linear then tanh, bit for bit on the CPU (on a GPU the
    fused kernel's tanh and the tanh ufunc may come from different math libraries: the
    emulator's ufunc is NumPy's); a column slice as the output's gradient (as a conditional
    D's concat hands back) is read in place."""
    from minigan.functional.activation import linear_tanh
    x0, w0, b0 = (R.standard_normal(sh).astype(dtype) for sh in ((6, 5), (40, 5), (40,)))
    runs = []
    for fused in (True, False):
        x, w, b = (Tensor(a, requires_grad=True) for a in _xp_inputs(xp, x0, w0, b0))
        y = linear_tanh(x, w, b if bias else None) if fused \
            else F.tanh(F.linear(x, w, b if bias else None))
        wide = F.concat([y, y * 0.5], 1)  # the gradient of y is then a column slice
        (wide * Tensor(xp.asarray((np.arange(wide.size).reshape(wide.shape) % 7)
                                  .astype(dtype)))).sum().backward()
        runs.append([y.numpy(), x.grad.numpy(), w.grad.numpy()]
                    + ([b.grad.numpy()] if bias else []))
    exact = xp is np
    for a, b_ in zip(*runs):
        assert a.dtype == dtype
        if exact:
            np.testing.assert_array_equal(a, b_)
        else:  # an ulp of y moves a float32 gradient by the size of its terms times 1e-7
            scale = (1e-5 if dtype == np.float32 else 1e-13) * max(1.0, np.abs(b_).max())
            np.testing.assert_allclose(a, b_, rtol=scale, atol=scale)


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4), (1, 1)])
def test_linear_with_one_output_first_and_second_order(xp, shape):
    """A discriminator's last layer (out_features = 1, with a bias): one kernel each way on the
    GPU, the GEMM path on the CPU; exact first and second derivatives on both."""
    x, w, b = _xp_inputs(xp, R.standard_normal(shape), R.standard_normal((1, shape[-1])),
                         R.standard_normal(1))
    check_backward(F.linear, [x, w, b])
    check_double_backward(F.linear, [x, w, b])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_with_one_output_is_the_matmul_and_the_add(xp, dtype):
    """The same values and gradients as ``x @ w.T + b`` made of the two general ops, with the
    gradients of two backward passes summed into .grad (on the GPU by the backward kernel
    itself), and the output's gradient a column slice of a wider one."""
    x0, w0, b0 = (R.standard_normal(sh).astype(dtype) for sh in ((9, 7), (1, 7), (1,)))
    weights = (np.arange(18).reshape(9, 2) % 5).astype(dtype)
    runs = []
    for one_op in (True, False):
        x, w, b = (Tensor(a, requires_grad=True) for a in _xp_inputs(xp, x0, w0, b0))
        for _ in range(2):
            y = F.linear(x, w, b) if one_op else F.matmul(x, F.transpose(w, 0, 1)) + b
            wide = F.concat([y, y * 0.5], 1)  # the gradient of y: a column slice
            (wide * Tensor(xp.asarray(weights))).sum().backward()
        runs.append([y.numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()])
    tol = 1e-5 if dtype == np.float32 else 1e-13
    for name, a, b_ in zip(("y", "x.grad", "w.grad", "b.grad"), *runs):
        assert a.dtype == dtype and a.shape == b_.shape, name
        np.testing.assert_allclose(a, b_, rtol=tol, atol=tol * np.abs(b_).max(), err_msg=name)


@pytest.mark.parametrize("slope", [None, 0.2])
def test_batch_norm_with_a_shift_first_and_second_order(xp, slope):
    """The training op with a shift (the bias of the Linear layer before, which nn.Sequential
    hands over): exact first and second derivatives in all four inputs, and the values of
    batch norm on x + shift."""
    from minigan.functional.norm import _batch_norm
    x, w, b, s = _xp_inputs(xp, R.standard_normal((6, 3)), R.uniform(0.5, 1.5, 3),
                            R.standard_normal(3), R.standard_normal(3) * 2)

    def f(x, w, b, s):
        return _batch_norm(x, None, None, w, b, True, 0.1, 1e-5, slope, None, s)

    check_backward(f, [x, w, b, s])
    check_double_backward(f, [x, w, b, s])
    # the graph-building first derivatives (which the check above differentiates) are the
    # plain ones
    gy = xp.asarray(R.standard_normal((6, 3)))
    firsts = []
    for create_graph in (False, True):
        ts = [Tensor(a, requires_grad=True) for a in (x, w, b, s)]
        gs = minigan.grad(f(*ts), ts, Tensor(gy), create_graph=create_graph)
        firsts.append([g.numpy() for g in gs])
    for a, b_ in zip(*firsts):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)
    want = F.batch_norm(Tensor(x + s), None, None, Tensor(w), Tensor(b), True)
    if slope is not None:
        want = F.leaky_relu(want, slope)
    np.testing.assert_allclose(f(*(Tensor(a) for a in (x, w, b, s))).numpy(), want.numpy(),
                               rtol=1e-13, atol=1e-13)
    with pytest.raises(ValueError, match=r"a shift of shape \(2,\) for input of shape"):
        f(Tensor(x), Tensor(w), Tensor(b), Tensor(s[:2]))
    with pytest.raises(ValueError, match="a shift is taken in training only"):
        _batch_norm(Tensor(x), xp.zeros(3), xp.ones(3), None, None, False, 0.1, 1e-5, None,
                    None, Tensor(s))


@pytest.mark.parametrize("xs,ws,s,p,op", [
    ((2, 3, 3, 4), (3, 2, 4, 4), 2, 1, 0),  # the col2im path (a DCGAN generator's output layer)
    ((2, 3, 1, 1), (3, 2, 4, 4), 1, 0, 0),  # a 1x1 input: the GEMM path
])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose2d_tanh_first_and_second_order(xp, xs, ws, s, p, op, bias):
    from minigan.functional.conv import conv_transpose2d_tanh
    x, w, b = _xp_inputs(xp, R.standard_normal(xs), R.standard_normal(ws) * 0.5,
                         R.standard_normal(ws[1]))

    def f(x, w, *b):
        return conv_transpose2d_tanh(x, w, b[0] if b else None, s, p, op)

    inputs = [x, w, b] if bias else [x, w]
    check_backward(f, inputs)
    check_double_backward(f, inputs)
    want = F.tanh(F.conv_transpose2d(*(Tensor(a) for a in inputs), stride=s, padding=p,
                                     output_padding=op))
    got = f(*(Tensor(a) for a in inputs))
    if xp is np:
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    else:  # (the kernel's tanh and the ufunc's may come from different math libraries)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-13, atol=1e-15)


def test_batch_norm_second_order_is_not_the_cached_invstd_bug():
    """Differentiating sum(grad_x(BN)^2) wrt x: treating 1/std as a constant gives a visibly
    different answer, so this pins the exact composition."""
    x = R.standard_normal((5, 2)) * 3
    check_double_backward(lambda x: F.batch_norm(x, None, None, None, None, True), [x])


def test_batch_norm_updates_running_stats_and_eval_uses_them(xp):
    x = xp.asarray(R.standard_normal((8, 3, 2, 2)))
    rm, rv = xp.zeros(3), xp.ones(3)
    F.batch_norm(Tensor(x), rm, rv, training=True, momentum=0.1)
    xn = minigan.backend.to_numpy(x)
    m = xn.mean((0, 2, 3))
    v = xn.var((0, 2, 3), ddof=1)
    np.testing.assert_allclose(minigan.backend.to_numpy(rm), 0.1 * m, rtol=1e-10)
    np.testing.assert_allclose(minigan.backend.to_numpy(rv), 0.9 + 0.1 * v, rtol=1e-10)
    y = F.batch_norm(Tensor(x), rm, rv, training=False)
    expected = (xn - (0.1 * m)[None, :, None, None]) / np.sqrt(0.9 + 0.1 * v + 1e-5)[
        None, :, None, None]
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10)

    def f(x, w, b):
        return F.batch_norm(x, rm, rv, w, b, training=False)

    check_double_backward(f, _xp_inputs(xp, xn, R.standard_normal(3), R.standard_normal(3)))


def test_pooling_and_upsample_orders(xp):
    x = xp.asarray(R.standard_normal((2, 2, 6, 6)))
    for f in (lambda x: F.avg_pool2d(x, 2), lambda x: F.avg_pool2d(x, 3, 2, 1),
              lambda x: F.upsample_nearest2d(x, 2), lambda x: F.max_pool2d(x, 2),
              lambda x: F.max_pool2d(x, 3, 2, 1)):
        check_backward(f, [x])
    for f in (lambda x: F.avg_pool2d(x, 3, 2, 1), lambda x: F.upsample_nearest2d(x, 3)):
        check_double_backward(f, [x])


def test_max_pool_refuses_create_graph():
    x = Tensor(R.standard_normal((1, 1, 4, 4)), requires_grad=True)
    with pytest.raises(RuntimeError, match="once-differentiable"):
        minigan.grad(F.max_pool2d(x, 2).sum(), x, create_graph=True)


class _BNDisc:
    """A conv D with batch norm and leaky_relu, as functions of its weights."""

    @staticmethod
    def forward(x, w1, w2, g, b, w3):
        h = F.leaky_relu(F.conv2d(x, w1, None, 2, 1), 0.2)
        h = F.leaky_relu(F.batch_norm(F.conv2d(h, w2, None, 1, 1), None, None, g, b, True), 0.2)
        return F.sum(F.conv2d(h, w3), (1, 2, 3))


@pytest.mark.parametrize("with_bn", [False, True])
def test_dragan_style_penalty_through_conv_d(xp, with_bn):
    """||grad_x D(x)||^2 differentiated with respect to D's weights, for a conv D with
    leaky_relu, with and without batch norm."""
    x0 = R.standard_normal((3, 1, 6, 6))
    ws = [R.standard_normal((3, 1, 3, 3)) * 0.5, R.standard_normal((4, 3, 3, 3)) * 0.3,
          R.uniform(0.5, 1.5, 4), R.standard_normal(4) * 0.1, R.standard_normal((1, 4, 3, 3))]

    def penalty(*weights):
        xt = Tensor(xp.asarray(x0), requires_grad=True)
        w1, w2, g, b, w3 = weights
        if with_bn:
            out = _BNDisc.forward(xt, w1, w2, g, b, w3)
        else:
            h = F.leaky_relu(F.conv2d(xt, w1, None, 2, 1), 0.2)
            h = F.leaky_relu(F.conv2d(h, w2, None, 1, 1) * F.reshape(g, (1, 4, 1, 1)), 0.2)
            out = F.sum(F.conv2d(h, w3), (1, 2, 3)) + F.sum(b)
        (gx,) = minigan.grad(F.sum(out), xt, create_graph=True)
        return F.sum(gx * gx)

    check_backward(penalty, _xp_inputs(xp, *ws), rtol=1e-5, atol=1e-7)


def test_batch_norm_names_a_running_buffer_or_counter_on_another_device(emulated_gpu):
    from minigan import backend
    from minigan.functional.norm import _batch_norm
    cp = emulated_gpu
    x = Tensor(cp.asarray(np.random.default_rng(0).standard_normal((4, 3))))
    on_gpu, on_cpu = cp.zeros(3), np.zeros(3)
    for rm, rv, which in ((on_cpu, cp.ones(3), "running_mean"), (on_gpu, np.ones(3), "running_var")):
        with pytest.raises(backend.DeviceError, match=rf"batch_norm \({which}\).*cuda and cpu"):
            F.batch_norm(x, rm, rv, training=True)
    counter = np.zeros((), dtype=np.int64)
    with pytest.raises(backend.DeviceError, match=r"num_batches_tracked.*cuda and cpu"):
        _batch_norm(x, on_gpu, cp.ones(3), None, None, True, 0.1, 1e-5, None, counter)
    assert int(counter) == 0  # refused before anything moved
    np.testing.assert_array_equal(on_gpu.get(), np.zeros(3))
    y = F.batch_norm(x, on_gpu, cp.ones(3), training=True)  # one device: runs
    assert backend.device_of(y.data) == "cuda"


@pytest.mark.parametrize("call", [
    lambda x, w, **kw: F.conv2d(x, w, **kw),
    lambda x, w, **kw: F.conv_transpose2d(x, w, **kw),
])
def test_conv_geometry_that_is_not_whole_numbers_is_refused_not_truncated(call):
    x = Tensor(np.ones((1, 2, 8, 8)))
    w = Tensor(np.ones((2, 2, 3, 3)))
    with pytest.raises(TypeError, match=r"stride must hold whole numbers, got \(2\.5, 2\)"):
        call(x, w, stride=(2.5, 2))  # was taken as stride 2
    with pytest.raises(TypeError, match=r"stride must be an int or an \(h, w\) pair, got 2\.5"):
        call(x, w, stride=2.5)
    if call(x, w).shape == (1, 2, 6, 6):  # conv2d: padding='same' is torch's, stride 1
        assert call(x, w, padding="same").shape == (1, 2, 8, 8)
    else:  # conv_transpose2d: an int or a pair only, as torch's
        with pytest.raises(TypeError, match="padding must be an int or an .* got 'same'"):
            call(x, w, padding="same")
    with pytest.raises(ValueError, match=r"dilation must be an int or an \(h, w\) pair, got "
                                         r"\(1, 1, 1\)"):
        call(x, w, dilation=(1, 1, 1))
    with pytest.raises(ValueError, match=r"stride must be >= 1, got \(0, 1\)"):
        call(x, w, stride=(0, 1))
    assert call(x, w, stride=(2.0, 2)).shape == call(x, w, stride=2).shape  # whole: accepted
    assert call(x, w, stride=[np.int64(2), 2]).shape == call(x, w, stride=2).shape


def test_a_layer_built_with_a_fractional_stride_refuses_to_run():
    conv = minigan.nn.Conv2d(2, 2, 3, stride=(2.5, 2))
    with pytest.raises(TypeError, match="stride must hold whole numbers"):
        conv(Tensor(np.ones((1, 2, 8, 8), dtype=np.float32)))
    for layer in (minigan.nn.Conv2d, minigan.nn.ConvTranspose2d):  # a float: refused at once
        with pytest.raises(TypeError, match=r"stride must be an int or an \(h, w\) pair, got 2\.5"):
            layer(2, 2, 3, stride=2.5)
    conv = minigan.nn.Conv2d(2, 2, np.int64(3), stride=np.int64(2))  # NumPy ints: accepted
    assert (conv.kernel_size, conv.stride) == ((3, 3), (2, 2))
    assert conv(Tensor(np.ones((1, 2, 8, 8), dtype=np.float32))).shape == (1, 2, 3, 3)
    pool = minigan.nn.MaxPool2d(2, stride=1.5)
    with pytest.raises(TypeError, match=r"stride must be an int or an \(h, w\) pair, got 1\.5"):
        pool(Tensor(np.ones((1, 2, 8, 8), dtype=np.float32)))
