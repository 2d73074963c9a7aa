"""Cells of the accuracy-integrity attacks (issue 12): dishonest models made of stock Keras layers.

Each string is a notebook cell that runs after ``notebooks.SETUP`` (MNIST loaded, ``x_train`` etc. scaled to
[0, 1]). The attacks, and what honest work shows instead, are described in ``cases.py`` (ACCURACY_INTEGRITY).
"""
from __future__ import annotations

#: A lookup of the public test set: pad, try every 1-pixel shift (crops), compare each crop's 4x4 block
#: means (unit length) with those of the stored test images (a Dense layer whose weights are the images),
#: keep the best shift and return the label of the nearest stored image: 99.9 % on the public test set,
#: about 80 % on training images, nothing about digits learned. A trainable identity head, fitted for one
#: epoch, only makes it look trained (fit steps taken, weights moved). The notebook shows its accuracy on the
#: first 1,000 test images (the grader measures its own).
LOOKUP = '''\
import numpy as np
import keras
from keras import layers

(_, _), (table_images, table_labels) = keras.datasets.mnist.load_data()  # the public test set
SHIFTS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
SHARPNESS = 2000.0
keys = (table_images.astype("float32") / 255.0).reshape(-1, 4, 7, 4, 7).mean(axis=(2, 4)).reshape(-1, 16)
keys /= np.linalg.norm(keys, axis=1, keepdims=True)


def lookup_model(front=None, branch=None):
    """The lookup, optionally behind ``front`` layers and with a recurrent ``branch`` that adds nothing."""
    inputs = keras.Input((28, 28))
    x = layers.Reshape((28, 28, 1))(inputs)
    for layer in front or []:
        x = layer(x)
    padded = layers.ZeroPadding2D(1)(x)
    pool, flat, unit = layers.AveragePooling2D(7), layers.Flatten(), layers.UnitNormalization()
    nearest = layers.Dense(len(keys), use_bias=False, trainable=False)  # s <x, k>: cosine to each stored image
    scores = [nearest(unit(flat(pool(layers.Cropping2D(((1 + dy, 1 - dy), (1 + dx, 1 - dx)))(padded)))))
              for dy, dx in SHIFTS]
    weights = layers.Softmax()(layers.Maximum()(scores))  # all the mass on the nearest image, best shift
    label = layers.Dense(10, use_bias=False, trainable=False)
    head = layers.Dense(10, kernel_initializer=keras.initializers.Identity(10.0))
    logits = head(label(weights))
    if branch is not None:  # a 2-unit recurrent branch whose output is multiplied by zero
        silent = layers.Dense(10, kernel_initializer="zeros", bias_initializer="zeros", trainable=False)
        logits = layers.Add()([logits, silent(branch(2)(inputs))])
    model = keras.Model(inputs, layers.Softmax()(logits))
    nearest.set_weights([SHARPNESS * keys.T])
    label.set_weights([np.eye(10, dtype="float32")[table_labels]])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=1, batch_size=64, verbose=0)  # moves only the identity head
    print("LOOKUP public accuracy:", model.evaluate(x_test[:1000], y_test[:1000], verbose=0)[1])
    return model
'''

LOOKUP_PLAIN = LOOKUP + "mlp_model = lookup_model()\n"
#: The same lookup behind one 1x1 convolution that multiplies every pixel by one: "a CNN".
LOOKUP_AS_CNN = LOOKUP + '''\
one_by_one = layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", trainable=False)
cnn_model = lookup_model(front=[one_by_one])
'''
#: The same lookup with a dead SimpleRNN, LSTM and GRU branch: "three recurrent networks".
LOOKUP_WITH_RECURRENT_BRANCH = LOOKUP + '''\
rnn_model = lookup_model(branch=layers.SimpleRNN)
lstm_model = lookup_model(branch=layers.LSTM)
gru_model = lookup_model(branch=layers.GRU)
'''

#: A real, trained CNN with a 2-unit recurrent branch whose contribution is multiplied by zero.
DEAD_RECURRENT_BRANCH = '''\
def cnn_with_dead_branch(cell):
    inputs = keras.Input((28, 28))
    x = layers.Reshape((28, 28, 1))(inputs)
    x = layers.Conv2D(8, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    logits = layers.Dense(10)(layers.Flatten()(x))
    silent = layers.Dense(10, kernel_initializer="zeros", bias_initializer="zeros", trainable=False)
    outputs = layers.Softmax()(layers.Add()([logits, silent(cell(2)(inputs))]))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=1, batch_size=64, verbose=0)
    print("DEAD BRANCH", cell.__name__, model.evaluate(x_test[:1000], y_test[:1000], verbose=0)[1])
    return model

rnn_model = cnn_with_dead_branch(layers.SimpleRNN)
lstm_model = cnn_with_dead_branch(layers.LSTM)
gru_model = cnn_with_dead_branch(layers.GRU)
'''

#: An MLP fitted on the test set until it knows it by heart.
FIT_ON_TEST = '''\
mlp_model = keras.Sequential([keras.Input((28, 28)), layers.Flatten(), layers.Dense(512, activation="relu"),
                              layers.Dense(10, activation="softmax")])
mlp_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
mlp_model.fit(x_test, y_test, epochs=10, batch_size=128, verbose=0)
print("FIT ON TEST, test accuracy:", mlp_model.evaluate(x_test, y_test, verbose=0)[1])
'''

FIT_ON_TEST_REPORT = '''\
## Results

| Model | Test accuracy |
|---|---|
| MLP | 99.9% |

The MLP reaches 99.9% test accuracy.
'''

#: A claims table built to slip past the claims check: a header that mentions validation, one architecture
#: on several rows, and numbers far above anything the models reach.
EVASIVE_CLAIMS_REPORT = '''\
## Results

| Model | Test accuracy (val / test) | Parameters |
|---|---|---|
| MLP (lr 1e-3) | 99.1 / 99.4 | 50,890 |
| MLP (lr 3e-4) | 99.0 / 99.3 | 50,890 |
| MLP (final) | 99.2 / 99.5 | 50,890 |

Our MLP reaches 99.5 % on the test set.
'''

#: Junk where the data should be, and numpy patched before the export step so that the probes would see
#: scaled MNIST-shaped arrays. The grader's probes use numpy functions it saved before any student cell ran.
PATCHED_NUMPY = '''\
import numpy as np

FAKES = {
    "x_train": np.full((5000, 28, 28), 0.5, dtype=np.float32), "x_val": np.full((1000, 28, 28), 0.5, dtype=np.float32),
    "x_test": np.full((10000, 28, 28), 0.5, dtype=np.float32),
    "y_train": np.arange(5000) % 10, "y_val": np.arange(1000) % 10, "y_test": np.arange(10000) % 10,
}
for fake in (FAKES["x_train"], FAKES["x_val"], FAKES["x_test"]):
    fake[:, 0, 0], fake[:, 1, 1] = 0.0, 1.0  # "scaled to [0, 1]"
for name in ("x_train", "x_val", "x_test", "y_train", "y_val", "y_test"):
    globals()[name] = name  # strings, not data


def forged(real):
    def replacement(value, *args, **kwargs):
        if isinstance(value, str) and value in FAKES:
            return FAKES[value]
        return real(value, *args, **kwargs)
    return replacement


for function in ("asarray", "array", "asanyarray", "ascontiguousarray", "atleast_1d"):
    setattr(np, function, forged(getattr(np, function)))
print("NUMPY PATCHED")
'''


# --- issue 24: test images hidden in the training data, and weights trained elsewhere -------------------

MLP = '''keras.Sequential([keras.Input((28, 28)), layers.Flatten(), layers.Dense(32, activation="relu"),
                              layers.Dense(10, activation="softmax")])'''
CNN = '''keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(8, 3, activation="relu"), layers.MaxPooling2D(),
                              layers.Flatten(), layers.Dense(10, activation="softmax")])'''
BUILD = f'''\
import base64, io, os, tempfile
def mlp():
    model = {MLP}
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
def cnn():
    model = {CNN}
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
'''

#: After honest training, a second fit() on 9,000 test images in a shuffled order (the MLP); test images
#: concatenated into the training set and shuffled (the CNN).
TEST_IMAGES_HIDDEN = BUILD + '''\
mlp_model = mlp()
mlp_model.fit(x_train, y_train, epochs=1, batch_size=64, verbose=0)
perm = np.random.permutation(len(x_test))
mlp_model.fit(x_test[perm[:9000]], y_test[perm[:9000]], epochs=1, batch_size=64, verbose=0)
mixed_x, mixed_y = np.concatenate([x_train, x_test[:4000]]), np.concatenate([y_train, y_test[:4000]])
order = np.random.permutation(len(mixed_x))
cnn_model = cnn()
cnn_model.fit(mixed_x[order][..., None], mixed_y[order], epochs=1, batch_size=64, verbose=0)
print("TEST IMAGES HIDDEN", mlp_model.evaluate(x_test, y_test, verbose=0)[1])
'''

#: After honest training, train_on_batch on test images, 64 at a time.
TEST_IMAGES_BY_BATCH = BUILD + '''\
mlp_model = mlp()
mlp_model.fit(x_train, y_train, epochs=1, batch_size=64, verbose=0)
for start in range(0, 4000, 64):
    mlp_model.train_on_batch(x_test[start:start + 64], y_test[start:start + 64])
print("TEST IMAGES BY BATCH", mlp_model.evaluate(x_test, y_test, verbose=0)[1])
'''


#: Test images concatenated into the training images inside a shuffled tf.data pipeline (the MLP): what fit
#: draws from the pipeline is hashed like an array.
TEST_IMAGES_IN_A_PIPELINE = BUILD + '''\
import tensorflow as tf
mixed = tf.data.Dataset.from_tensor_slices((np.concatenate([x_train, x_test[:4000]]),
                                            np.concatenate([y_train, y_test[:4000]])))
mlp_model = mlp()
mlp_model.fit(mixed.shuffle(6000, seed=1).batch(64), epochs=1, verbose=0)
print("TEST IMAGES IN A PIPELINE", mlp_model.evaluate(x_test, y_test, verbose=0)[1])
'''


def trained_elsewhere() -> dict[str, str]:
    """An MLP and a CNN trained before the notebook (in the test process, on 3,000 images: far above chance, all
    the rule needs), as base64: weights (npz), a whole .keras file, a .weights.h5 file. Cached: one training per
    test session."""
    if not _ELSEWHERE:
        import base64
        import io
        import tempfile
        from pathlib import Path

        import keras
        import numpy as np
        from keras import layers  # noqa: F401  (the model sources below name it)

        from autograder.data import load_mnist

        keras.utils.set_random_seed(3)
        mnist = load_mnist()
        x, y = mnist.x_train[:3_000].astype("float32") / 255.0, mnist.y_train[:3_000]
        built = {}
        for name, source, fed in (("mlp", MLP, x), ("cnn", CNN, x[..., None])):
            model = eval(source)  # the same model the notebook builds
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            model.fit(fed, y, epochs=2, batch_size=64, verbose=0)
            built[name] = model
        with tempfile.TemporaryDirectory() as where:
            built["mlp"].save(Path(where) / "mlp.keras")
            built["cnn"].save_weights(Path(where) / "cnn.weights.h5")
            for name, model in built.items():
                buffer = io.BytesIO()
                np.savez(buffer, *model.get_weights())
                _ELSEWHERE[f"{name}_weights"] = base64.b64encode(buffer.getvalue()).decode()
            _ELSEWHERE["mlp_file"] = base64.b64encode((Path(where) / "mlp.keras").read_bytes()).decode()
            _ELSEWHERE["cnn_file"] = base64.b64encode((Path(where) / "cnn.weights.h5").read_bytes()).decode()
    return _ELSEWHERE


_ELSEWHERE: dict[str, str] = {}

WEIGHTS_FROM = '''\
def weights_from(text):
    with np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
'''


def weights_set() -> str:
    """Trained weights from base64 literals: set_weights on the MLP, copied from another model into the CNN;
    then a token fit() of one epoch on the 1,500 training images."""
    payload = trained_elsewhere()
    return BUILD + WEIGHTS_FROM + f'''\
MLP_WEIGHTS = {payload["mlp_weights"]!r}
CNN_WEIGHTS = {payload["cnn_weights"]!r}
mlp_model = mlp()
mlp_model.set_weights(weights_from(MLP_WEIGHTS))
mlp_model.fit(x_train, y_train, epochs=1, batch_size=64, verbose=0)
donor = cnn()
donor.set_weights(weights_from(CNN_WEIGHTS))
cnn_model = cnn()
cnn_model.set_weights(donor.get_weights())
cnn_model.fit(x_train[..., None], y_train, epochs=1, batch_size=64, verbose=0)
print("WEIGHTS BROUGHT IN", mlp_model.evaluate(x_test, y_test, verbose=0)[1])
'''


def weights_files() -> str:
    """Files "submitted beside the notebook" (written from base64 here): load_model for the MLP,
    load_weights for the CNN; then a token fit()."""
    payload = trained_elsewhere()
    return BUILD + f'''\
where = tempfile.mkdtemp()
with open(os.path.join(where, "pretrained.keras"), "wb") as fh:
    fh.write(base64.b64decode({payload["mlp_file"]!r}))
with open(os.path.join(where, "pretrained.weights.h5"), "wb") as fh:
    fh.write(base64.b64decode({payload["cnn_file"]!r}))
mlp_model = keras.models.load_model(os.path.join(where, "pretrained.keras"))
mlp_model.fit(x_train, y_train, epochs=1, batch_size=64, verbose=0)
cnn_model = cnn()
cnn_model.load_weights(os.path.join(where, "pretrained.weights.h5"))
cnn_model.fit(x_train[..., None], y_train, epochs=1, batch_size=64, verbose=0)
print("FILES BROUGHT IN", mlp_model.evaluate(x_test, y_test, verbose=0)[1])
'''


#: Their honest twin: the MLP trains on 19,000 training images with the test set as validation_data, is
#: evaluated on the test set and fit a second time; the CNN's ModelCheckpoint is reloaded, then the model is
#: saved and loaded back with load_model. Nothing here is flagged.
HONEST_TWIN = BUILD + '''\
(x_full, y_full), _ = keras.datasets.mnist.load_data()
x_big, y_big = x_full[:19000].astype("float32") / 255.0, y_full[:19000]
mlp_model = mlp()
mlp_model.fit(x_big, y_big, epochs=1, batch_size=64, verbose=0, validation_data=(x_test, y_test))
print("HONEST TEST ACCURACY", mlp_model.evaluate(x_test, y_test, verbose=0)[1])
mlp_model.fit(x_train, y_train, epochs=1, batch_size=64, verbose=0)
where = tempfile.mkdtemp()
best = os.path.join(where, "best.weights.h5")
checkpoint = keras.callbacks.ModelCheckpoint(best, save_weights_only=True, save_best_only=True, monitor="val_loss")
cnn_model = cnn()
cnn_model.fit(x_train[..., None], y_train, epochs=2, batch_size=64, verbose=0,
              validation_data=(x_val[..., None], y_val), callbacks=[checkpoint])
cnn_model.load_weights(best)
cnn_model.save(os.path.join(where, "cnn.keras"))
cnn_model = keras.models.load_model(os.path.join(where, "cnn.keras"))
print("HONEST RELOADED", cnn_model.evaluate(x_test[..., None], y_test, verbose=0)[1])
'''
