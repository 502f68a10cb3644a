"""`adapters.tf_hessian` against dense Hessians from nested `tf.GradientTape` jacobians."""

from __future__ import annotations

import importlib
import itertools
import logging

import numpy as np
import pytest
from helpers import Backend, check_extreme_eigenvalues, need

need(Backend.TENSORFLOW)
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import slq  # noqa: E402
from slq import adapters  # noqa: E402

tf_adapter = importlib.import_module("slq.adapters.tensorflow")

# Every layer and loss is given its dtype: Keras' global floatx and dtype policy are
# never touched (the policy, once read, would keep a changed floatx for later tests).
F64 = "float64"


def loss_fn(dtype=F64):
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=dtype)


def randomize(model, seed):
    rng = np.random.default_rng(seed)
    for v in model.trainable_variables:
        fan_in = v.shape[0] if len(v.shape) > 1 else 1
        v.assign(rng.standard_normal(v.shape) / np.sqrt(fan_in))
    return model


def mlp(widths=(4, 6, 3), seed=0, dtype=F64):
    hidden = [keras.layers.Dense(w, activation="tanh", dtype=dtype) for w in widths[1:-1]]
    model = keras.Sequential(
        [
            keras.Input((widths[0],), dtype=dtype),
            *hidden,
            keras.layers.Dense(widths[-1], dtype=dtype),
        ]
    )
    return randomize(model, seed)


def conv_bn(seed=1, dropout=False):
    """Conv2D -> BatchNorm -> tanh -> Dense (n = 81), with moving statistics far from 0 and 1."""
    layers = [
        keras.Input((5, 5, 1), dtype=F64),
        keras.layers.Conv2D(2, 3, dtype=F64),
        keras.layers.BatchNormalization(dtype=F64),
        keras.layers.Activation("tanh", dtype=F64),
        keras.layers.Flatten(dtype=F64),
    ]
    if dropout:
        layers.append(keras.layers.Dropout(0.5, seed=seed, dtype=F64))
    model = randomize(keras.Sequential([*layers, keras.layers.Dense(3, dtype=F64)]), seed)
    bn = model.layers[1]
    rng = np.random.default_rng(seed + 100)
    bn.moving_mean.assign(rng.standard_normal(2))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, 2))
    return model


def data(n, features=(4,), classes=3, seed=0, dtype=F64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *features)).astype(dtype)
    return tf.constant(x), tf.constant(rng.integers(0, classes, n))


def split(batch, sizes):
    cuts = np.cumsum([0, *sizes])
    return [tuple(t[a:b] for t in batch) for a, b in itertools.pairwise(cuts)]


def keras_forward(model, training=False):
    state = [tf.convert_to_tensor(v) for v in model.non_trainable_variables]

    def forward(values, x):
        return model.stateless_call(values, state, x, training=training)[0]

    return forward


def dense_hessian(forward, variables, batches, loss):
    """∇² Σ_b (N_b/N) loss(y_b, forward(θ, x_b)) by a jacobian of the gradient of flat θ."""
    shapes = [tuple(v.shape) for v in variables]
    flat = tf.concat([tf.reshape(tf.convert_to_tensor(v), [-1]) for v in variables], 0)
    counts = [int(b[0].shape[0]) for b in batches]

    def total(f):
        values = [
            tf.reshape(p, s)
            for p, s in zip(tf.split(f, [int(np.prod(s)) for s in shapes]), shapes, strict=True)
        ]
        terms = [n * loss(y, forward(values, x)) for n, (x, y) in zip(counts, batches, strict=True)]
        return tf.add_n(terms) / sum(counts)

    with tf.GradientTape() as outer:
        outer.watch(flat)
        with tf.GradientTape() as inner:
            inner.watch(flat)
            value = total(flat)
        gradient = inner.gradient(value, flat)
    return outer.jacobian(gradient, flat).numpy()


def vectors(n, k, seed=1, dtype=tf.float64):
    return tf.constant(np.random.default_rng(seed).standard_normal((n, k)), dtype)


def check_products(op, dense, rtol=1e-10):
    v = vectors(op.shape[0], 3, dtype=op.dtype)
    scale = np.abs(dense).max()
    expected = dense @ v.numpy().astype(np.float64)
    np.testing.assert_allclose(op.matmat(v).numpy(), expected, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(
        op.matvec(v[:, 0]).numpy(), expected[:, 0], rtol=rtol, atol=rtol * scale
    )


def snapshot(model):
    return [v.numpy().copy() for v in model.variables]


def assert_unchanged(model, before):
    after = snapshot(model)
    assert len(after) == len(before)
    for a, b in zip(after, before, strict=True):
        np.testing.assert_array_equal(a, b)  # bit for bit, seeds and moving statistics included


@pytest.mark.parametrize("hvp", ["forward-over-reverse", "double-backward"])
def test_mlp_matches_the_dense_hessian(hvp: str) -> None:
    model, batch, loss = mlp(), data(40), loss_fn()
    op = adapters.tf_hessian(model, batch, loss, hvp=hvp)
    assert op.hvp == hvp and op.shape == (51, 51) and op.dtype == tf.float64
    dense = dense_hessian(keras_forward(model), model.trainable_variables, [batch], loss)
    check_products(op, dense)
    check_extreme_eigenvalues(op, dense)


@pytest.mark.parametrize("training", [True, False])
def test_conv_batchnorm_in_both_modes_leaves_every_variable_as_it_was(training: bool) -> None:
    model, loss = conv_bn(), loss_fn()
    batches = split(data(24, features=(5, 5, 1)), [12, 12])
    before = snapshot(model)
    op = adapters.tf_hessian(model, batches, loss, training=training)
    assert op.shape == (81, 81)
    dense = dense_hessian(keras_forward(model, training), model.trainable_variables, batches, loss)
    check_products(op, dense)
    assert_unchanged(model, before)
    check_extreme_eigenvalues(op, dense)
    assert_unchanged(model, before)


def test_batchnorm_modes_differ_and_eval_mode_is_the_plain_keras_call() -> None:
    """In inference mode the operator is the Hessian of `model(x, training=False)` itself."""
    model, loss = conv_bn(), loss_fn()
    x, y = data(16, features=(5, 5, 1))
    v = vectors(81, 2)
    train = adapters.tf_hessian(model, (x, y), loss, training=True).matmat(v).numpy()
    op = adapters.tf_hessian(model, (x, y), loss)
    evaluation = op.matmat(v).numpy()
    assert not np.allclose(train, evaluation, rtol=1e-3)
    variables = model.trainable_variables
    direction = op.unflatten(v[:, 0])

    def gradient(step):  # of the plain Keras call at θ + step·v, on the variables themselves
        saved = [w.numpy() for w in variables]
        try:
            for w, d in zip(variables, direction, strict=True):
                w.assign_add(step * d)
            with tf.GradientTape() as tape:
                value = loss(y, model(x, training=False))
            return np.concatenate([g.numpy().ravel() for g in tape.gradient(value, variables)])
        finally:
            for w, old in zip(variables, saved, strict=True):
                w.assign(old)

    h = 1e-5
    difference = (gradient(h) - gradient(-h)) / (2 * h)
    np.testing.assert_allclose(evaluation[:, 0], difference, rtol=1e-6, atol=1e-8)


def test_training_mode_dropout_is_one_fixed_matrix_and_its_seed_does_not_move() -> None:
    model, loss = conv_bn(dropout=True), loss_fn()
    batch = data(16, features=(5, 5, 1))
    before = snapshot(model)
    rng_state = tf.random.get_global_generator().state.numpy()
    op = adapters.tf_hessian(model, batch, loss, training=True)
    v = vectors(op.shape[0], 2)
    first, second = op.matmat(v).numpy(), op.matmat(v).numpy()
    np.testing.assert_array_equal(first, second)
    dense = dense_hessian(keras_forward(model, True), model.trainable_variables, [batch], loss)
    np.testing.assert_allclose(first, dense @ v.numpy(), rtol=1e-10, atol=1e-12)
    assert_unchanged(model, before)
    np.testing.assert_array_equal(tf.random.get_global_generator().state.numpy(), rng_state)


@pytest.mark.parametrize("sizes", [[10, 30], [7, 13, 20]])
def test_operator_does_not_depend_on_the_batch_split(sizes) -> None:
    model, batch, loss = mlp(), data(40), loss_fn()
    v = vectors(51, 2)
    whole = adapters.tf_hessian(model, batch, loss).matmat(v).numpy()
    parts = adapters.tf_hessian(model, split(batch, sizes), loss).matmat(v).numpy()
    np.testing.assert_allclose(parts, whole, rtol=1e-12, atol=1e-14)


def test_a_dataset_with_a_short_last_batch_traces_once_per_number_of_columns() -> None:
    model, batch, loss = mlp(), data(40), loss_fn()
    dataset = tf.data.Dataset.from_tensor_slices(batch).batch(13)  # 13, 13, 13, 1
    op = adapters.tf_hessian(model, dataset, loss)
    assert op.num_batches == 4 and op.num_examples == 40
    assert op.traces == 1  # "auto" traced forward-over-reverse for one vector
    v = vectors(51, 3)
    op.matmat(v)
    op.matvec(v[:, 0])
    assert op.traces == 2  # + 3 columns; the one-vector trace is reused
    for _ in range(4):
        op.matmat(v)
        op.matvec(v[:, 0])
    assert op.traces == 2
    whole = adapters.tf_hessian(model, batch, loss).matmat(v)
    np.testing.assert_allclose(op.matmat(v).numpy(), whole.numpy(), rtol=1e-12, atol=1e-14)


def test_streamed_data_equals_cached_data() -> None:
    model, batch, loss = mlp(), data(30), loss_fn()
    dataset = tf.data.Dataset.from_tensor_slices(batch).batch(8)
    v = vectors(51, 2)
    cached = adapters.tf_hessian(model, dataset, loss).matmat(v)
    streamed = adapters.tf_hessian(model, dataset, loss, cache_data=False).matmat(v)
    np.testing.assert_array_equal(streamed.numpy(), cached.numpy())


def test_chunked_matmat_equals_unchunked() -> None:
    model, batches, loss = mlp(), split(data(30), [10, 20]), loss_fn()
    v = vectors(51, 5)
    reference = adapters.tf_hessian(model, batches, loss).matmat(v).numpy()  # one chunk of 5
    for chunk_size in (1, 2, 3):  # 5 x 1; 3 x 2 and 2 x 3 with a zero column padded
        op = adapters.tf_hessian(model, batches, loss, chunk_size=chunk_size)
        np.testing.assert_allclose(op.matmat(v).numpy(), reference, rtol=1e-12, atol=1e-14)
        assert op.traces == 2  # the one-vector trial and one chunk width
    empty = adapters.tf_hessian(model, batches, loss).matmat(vectors(51, 0))
    assert tuple(empty.shape) == (51, 0)


def test_xla_compiled_products() -> None:
    model, batch, loss = mlp(), data(20), loss_fn()
    op = adapters.tf_hessian(model, batch, loss, jit_compile=True)
    dense = dense_hessian(keras_forward(model), model.trainable_variables, [batch], loss)
    check_products(op, dense)


def test_falls_back_to_double_backward_when_forward_mode_fails(monkeypatch, caplog) -> None:
    def no_forward_mode(*args):
        raise LookupError("gradient registry has no entry for: SomeGradGrad")

    monkeypatch.setitem(tf_adapter._PRODUCTS, "forward-over-reverse", no_forward_mode)
    model, batch, loss = mlp(), data(20), loss_fn()
    with caplog.at_level(logging.INFO, logger="slq"):
        op = adapters.tf_hessian(model, batch, loss)
    assert op.hvp == "double-backward"
    assert "forward-over-reverse failed (" in caplog.text
    assert "LookupError: gradient registry has no entry for: SomeGradGrad); using double" in (
        caplog.text
    )
    check_products(
        op, dense_hessian(keras_forward(model), model.trainable_variables, [batch], loss)
    )


def test_logs_once_what_it_uses(caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger="slq"):
        adapters.tf_hessian(mlp(), split(data(20), [5, 15]), loss_fn(), chunk_size=4)
    records = [r for r in caplog.records if r.name == "slq"]
    assert len(records) == 1
    assert records[0].getMessage() == (
        "tf_hessian: n=51, float64, 20 examples in 2 batches; forward-over-reverse, "
        "training=False, up to 4 vectors per traced product"
    )


def test_warns_when_the_loss_is_less_precise_than_the_variables(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="slq"):
        adapters.tf_hessian(mlp(), data(10), loss_fn("float32"))
    assert "the loss is float32 but the variables are float64" in caplog.text
    assert "give the Keras loss dtype='float64'" in caplog.text


def test_float32_model() -> None:
    model = mlp(dtype="float32")
    batch = data(40, dtype="float32")
    op = adapters.tf_hessian(model, batch, loss_fn("float32"))
    assert op.dtype == tf.float32
    wide = mlp()
    for w, v in zip(wide.trainable_variables, model.trainable_variables, strict=True):
        w.assign(tf.cast(v, tf.float64))
    dense = dense_hessian(
        keras_forward(wide),
        wide.trainable_variables,
        [(tf.cast(batch[0], tf.float64), batch[1])],
        loss_fn(),
    )
    check_products(op, dense, rtol=1e-4)


def test_a_subset_of_variables_by_object_name_or_tf_variable() -> None:
    model, batch, loss = mlp(), data(20), loss_fn()
    kernel = model.layers[0].kernel
    ops = [
        adapters.tf_hessian(model, batch, loss, variables=[kernel]),
        adapters.tf_hessian(model, batch, loss, variables=[kernel.path]),
        adapters.tf_hessian(model, batch, loss, variables=[kernel.value]),
    ]
    full = dense_hessian(keras_forward(model), model.trainable_variables, [batch], loss)
    v = vectors(24, 2)
    for op in ops:
        assert op.names == (kernel.path,) and op.shape == (24, 24)
        np.testing.assert_allclose(
            op.matmat(v).numpy(), full[:24, :24] @ v.numpy(), rtol=1e-10, atol=1e-12
        )


def test_embedding_gradients_arrive_as_indexed_slices() -> None:
    model = keras.Sequential(
        [
            keras.Input((3,), dtype="int32"),
            keras.layers.Embedding(7, 2, dtype=F64),
            keras.layers.Flatten(dtype=F64),
            keras.layers.Dense(3, dtype=F64),
        ]
    )
    randomize(model, 4)
    rng = np.random.default_rng(4)
    batch = tf.constant(rng.integers(0, 7, (20, 3)), tf.int32), tf.constant(rng.integers(0, 3, 20))
    op = adapters.tf_hessian(model, batch, loss_fn())
    check_products(
        op, dense_hessian(keras_forward(model), model.trainable_variables, [batch], loss_fn())
    )


def test_flatten_and_unflatten() -> None:
    model = mlp()
    op = adapters.tf_hessian(model, data(10), loss_fn())
    assert op.names == tuple(v.path for v in model.trainable_variables)
    v = tf.range(51, dtype=tf.float64)
    parts = op.unflatten(v)
    assert [tuple(p.shape) for p in parts] == [(4, 6), (6,), (6, 3), (3,)]
    np.testing.assert_array_equal(op.flatten(parts).numpy(), v.numpy())
    with pytest.raises(ValueError, match=r"flatten needs tensors of shapes \[\(4, 6\)"):
        op.flatten(parts[:2])
    assert "Keras model with 4 variables, n=51, float64" in repr(op)


class ModuleMLP(tf.Module):
    def __init__(self, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.w1 = tf.Variable(rng.standard_normal((4, 5)) / 2, name="w1")
        self.w2 = tf.Variable(rng.standard_normal((5, 3)) / 2, name="w2")
        self.frozen = tf.Variable(np.ones(3), trainable=False)

    def __call__(self, x):
        return tf.tanh(x @ self.w1) @ self.w2 + self.frozen

    @staticmethod
    def forward(values, x):
        return tf.tanh(x @ values[0]) @ values[1] + 1.0


def test_a_tf_module_and_a_plain_function_with_dict_inputs() -> None:
    net, batch, loss = ModuleMLP(), data(30), loss_fn()
    batches = split(batch, [12, 18])
    dense = dense_hessian(ModuleMLP.forward, [net.w1, net.w2], batches, loss)
    op = adapters.tf_hessian(net, batches, loss)
    assert op.names == ("w1:0", "w2:0") and repr(op).startswith("<slq Hessian of a callable")
    check_products(op, dense)

    def function(inputs):  # its variables are found by watching one loss evaluation
        return net(inputs["x"])

    dict_batches = [({"x": x}, y) for x, y in batches]
    plain = adapters.tf_hessian(function, dict_batches, loss)
    check_products(plain, dense)
    single = adapters.tf_hessian(function, dict_batches[0], loss)
    assert single.num_examples == 12


# ----------------------------------------------------------------------------- bad input


def test_an_unbuilt_model_says_to_call_it_once() -> None:
    model = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match=r"not built .*call it once on a batch"):
        adapters.tf_hessian(model, data(10), loss_fn())


def test_a_model_without_trainable_variables() -> None:
    model = mlp()
    model.trainable = False
    with pytest.raises(ValueError, match="the model has no trainable variables"):
        adapters.tf_hessian(model, data(10), loss_fn())


def test_nan_in_a_later_batch_names_it() -> None:
    x, y = data(30)
    x = tf.tensor_scatter_nd_update(x, [[25, 0]], [np.nan])
    with pytest.raises(FloatingPointError, match="the loss is nan on batch 2"):
        adapters.tf_hessian(mlp(), split((x, y), [10, 10, 10]), loss_fn())


def test_inf_in_the_first_batch() -> None:
    x, y = data(10)
    x = tf.tensor_scatter_nd_update(x, [[3, 1]], [np.inf])
    # Without a squashing layer the logits reach ±inf.
    model = keras.Sequential([keras.Input((4,), dtype=F64), keras.layers.Dense(3, dtype=F64)])
    with pytest.raises(FloatingPointError, match=r"the loss is (nan|inf) on batch 0"):
        adapters.tf_hessian(randomize(model, 0), (x, y), loss_fn())


def test_products_that_turn_non_finite_name_the_batch() -> None:
    model = mlp()
    op = adapters.tf_hessian(model, split(data(20), [10, 10]), loss_fn())
    before = model.layers[0].bias.numpy()
    model.layers[0].bias.assign(np.full(6, np.nan))  # products read the current values
    try:
        with pytest.raises(FloatingPointError, match=r"not finite on batch 0 \(the loss is nan\)"):
            op.matvec(tf.ones(51, tf.float64))
    finally:
        model.layers[0].bias.assign(before)


def mean_free_loss(y, logits):
    return keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"data": []}, ValueError, "data is empty"),
        ({"data": tf.data.Dataset.range(0)}, ValueError, "data is empty"),
        (
            {"loss_fn": mean_free_loss},
            ValueError,
            r"loss_fn must return a scalar \(the batch mean\), got shape \(10,\)",
        ),
        ({"loss_fn": "crossentropy"}, TypeError, "loss_fn must be callable"),
        ({"model": "mlp"}, TypeError, "model must be a Keras model or a callable, got str"),
        ({"hvp": "newton"}, ValueError, "hvp must be one of 'auto', "),
        ({"chunk_size": 0}, ValueError, "chunk_size must be >= 1, got 0"),
        (
            {"variables": ["nope"]},
            ValueError,
            "variables names 'nope', which is not a trainable variable of the model",
        ),
        (
            {"variables": [tf.Variable(1.0)]},
            ValueError,
            "variables contains a ResourceVariable that is not a trainable variable",
        ),
        (
            {"data": tf.data.Dataset.from_tensor_slices(np.ones((4, 4))).batch(2)},
            TypeError,
            r"batch 0 is a EagerTensor; every batch must be an \(x, y\) pair",
        ),
        (
            {"data": (tf.ones((5, 4), tf.float64), tf.zeros(4, tf.int64))},
            ValueError,
            r"batch 0: its tensors have leading axes of sizes \[4, 5\]",
        ),
        (
            {"data": [data(4), (tf.ones((4, 5), tf.float64), tf.zeros(4, tf.int64))]},
            ValueError,
            r"batch 1 does not match batch 0",
        ),
    ],
)
def test_bad_input(kwargs, error, message) -> None:
    arguments = {"model": mlp(), "data": data(10), "loss_fn": loss_fn()} | kwargs
    with pytest.raises(error, match=message):
        adapters.tf_hessian(
            arguments.pop("model"), arguments.pop("data"), arguments.pop("loss_fn"), **arguments
        )


def test_training_mode_is_for_keras_models() -> None:
    with pytest.raises(TypeError, match="training=True selects the mode of Keras layers"):
        adapters.tf_hessian(ModuleMLP(), data(10), loss_fn(), training=True)


def test_a_reshuffling_dataset_is_refused_naming_the_batch() -> None:
    shuffled = tf.data.Dataset.from_tensor_slices(data(40)).shuffle(40, seed=0).batch(16)
    with pytest.raises(ValueError, match=r"batch 0 of the data changed between passes \(its"):
        adapters.tf_hessian(mlp(), shuffled, loss_fn(), cache_data=False)
    generator = (batch for batch in split(data(20), [10, 10]))
    with pytest.raises(ValueError, match=r"data must be re-iterable .* a generator is used up"):
        adapters.tf_hessian(mlp(), generator, loss_fn(), cache_data=False)


class Augmented:
    """Re-iterable batches, batch 1 with new random noise on every pass."""

    def __init__(self) -> None:
        self.batches, self.rng = split(data(30), [10, 10, 10]), np.random.default_rng(0)

    def __iter__(self):
        for i, (x, y) in enumerate(self.batches):
            yield (x + self.rng.normal(0, 0.1, x.shape) if i == 1 else x), y


def test_data_that_changes_on_a_later_batch_is_refused_naming_it() -> None:
    # Building reads the data twice (counting, then checking every loss): the second pass sees it.
    with pytest.raises(ValueError, match=r"batch 1 of the data changed between passes"):
        adapters.tf_hessian(mlp(), Augmented(), loss_fn(), cache_data=False)


class Unread:
    """Data that fails the test if it is read: every argument is checked before."""

    def __iter__(self):
        raise AssertionError("data was read before the arguments were checked")


@pytest.mark.parametrize(
    ("name", "value", "error", "message"),
    [
        ("model", None, TypeError, "model must be a Keras model or a callable, got NoneType"),
        ("data", 3, TypeError, "data must be one batch or an iterable of batches .* got int"),
        ("loss_fn", "mse", TypeError, r"loss_fn must be callable as loss_fn\(y_true, y_pred\)"),
        ("variables", "dense/kernel", TypeError, r"variables must be a list of .*, got str"),
        ("training", "yes", TypeError, "training must be True or False, got 'yes'"),
        ("hvp", "yes", ValueError, "hvp must be one of 'auto'"),
        ("chunk_size", "8", TypeError, "chunk_size must be an integer >= 1, got '8'"),
        ("cache_data", 1, TypeError, "cache_data must be True, False or None, got 1"),
        ("jit_compile", "yes", TypeError, "jit_compile must be True or False, got 'yes'"),
    ],
)
def test_every_argument_is_checked_before_the_data_is_read(name, value, error, message) -> None:
    arguments = {"model": mlp(), "data": Unread(), "loss_fn": loss_fn(), name: value}
    with pytest.raises(error, match=message):
        adapters.tf_hessian(
            arguments.pop("model"), arguments.pop("data"), arguments.pop("loss_fn"), **arguments
        )


def test_variables_as_inputs_and_products_inside_a_tape_or_a_tf_function() -> None:
    model, (x, y) = mlp(), data(10)
    op = adapters.tf_hessian(model, (x, y), loss_fn())
    v = vectors(op.shape[0], 1)[:, 0]
    expected = op.matvec(v).numpy()
    from_variables = adapters.tf_hessian(model, (tf.Variable(x), tf.Variable(y)), loss_fn())
    with tf.GradientTape():
        in_a_tape = op.matvec(v)
    for got in (from_variables.matvec(v), in_a_tape):
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-14)
    with pytest.raises(TypeError, match=r"the operator was called inside a tf\.function"):
        tf.function(op.matvec)(v)


def half_precision_callable():
    w = tf.Variable(np.random.default_rng(0).standard_normal((4, 3)), dtype=tf.float32)
    return lambda x: tf.cast(tf.cast(x, tf.float16) @ tf.cast(w, tf.float16), tf.float32)


@pytest.mark.parametrize("kind", ["mixed_float16 layer", "float16 cast"])
def test_a_model_computing_in_less_precision_than_its_variables_warns(caplog, kind) -> None:
    if kind == "mixed_float16 layer":
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, dtype="mixed_float16")])
    else:
        model = half_precision_callable()
    with caplog.at_level(logging.WARNING, logger="slq"):
        adapters.tf_hessian(model, data(8, dtype="float32"), loss_fn("float32"))
    assert "tf_hessian: the model computes in float16 where it depends on the variables" in (
        caplog.text
    )


@pytest.fixture(scope="module")
def small_op():
    return adapters.tf_hessian(mlp(), data(10), loss_fn())


@pytest.mark.parametrize(
    ("vector", "error", "message"),
    [
        (np.ones(51), TypeError, "expected a tf.Tensor, got ndarray"),
        (tf.ones(50, tf.float64), ValueError, r"expected a vector of shape \(51,\), got \(50,\)"),
        (tf.ones((51, 2, 1), tf.float64), ValueError, r"expected a vector of shape \(51,\)"),
        (
            tf.ones(51, tf.float32),
            TypeError,
            "expected dtype float64 .the parameters'., got float32",
        ),
    ],
)
def test_bad_vectors(small_op, vector, error, message) -> None:
    with pytest.raises(error, match=message):
        small_op.matvec(vector)
    with pytest.raises((TypeError, ValueError)):
        small_op.matmat(vector)


@pytest.mark.cuda
@pytest.mark.skipif(not tf.config.list_physical_devices("GPU"), reason="needs a CUDA GPU")
def test_gpu_run_stays_on_the_gpu() -> None:
    with tf.device("/GPU:0"):
        model, batch, loss = mlp(), data(40), loss_fn()
        op = adapters.tf_hessian(model, batch, loss)
    assert "GPU" in op.device
    dense = dense_hessian(keras_forward(model), model.trainable_variables, [batch], loss)
    check_products(op, dense)
    with tf.device("/GPU:0"):
        v0 = vectors(op.shape[0], 2)
    result = slq.lanczos(op, v0, 10)
    assert result.alpha.shape == (2, 10)
    check_extreme_eigenvalues(op, dense)
