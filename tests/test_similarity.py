"""The similarity report on a batch with planted copies among independently written notebooks.

Six students write their own code and reports; four plants are added: an exact copy, a copy with renamed
variables and reordered cells, a shared trained model under different code, and a paraphrased report.
Each plant must be flagged by its signal, and no pair of independent students by any. Models are real
(small MLPs trained in-process on MNIST slices, one per independent student): the model signal must
tell two independent trainings from one shared model.
"""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder.output import similarity
from autograder.output.store import open_results

TEMPLATE = Path(__file__).resolve().parents[1] / "student_template" / "mnist_homework.ipynb"

# Each independent student's code for the template's TODO cells (q1..q7), in their own style.
CODE = {
    "alice": [
        """(x_train_full, y_train_full), (x_test_raw, y_test_raw) = keras.datasets.mnist.load_data()
x_train_full = x_train_full.astype("float32") / 255.0
x_test = x_test_raw.astype("float32") / 255.0
y_test = y_test_raw
x_train, x_val = x_train_full[:55000], x_train_full[55000:]
y_train, y_val = y_train_full[:55000], y_train_full[55000:]
print(x_train.shape, x_val.shape, x_test.shape)""",
        """mlp_model = keras.Sequential([keras.Input((28, 28)), layers.Flatten(), layers.Dense(256, activation="relu"),
    layers.Dropout(0.2), layers.Dense(128, activation="relu"), layers.Dense(10, activation="softmax")])
mlp_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
start = time.time()
mlp_model.fit(x_train, y_train, epochs=EPOCHS["mlp"], batch_size=128, validation_data=(x_val, y_val))
results["mlp"] = evaluate(mlp_model, time.time() - start)""",
        """cnn_model = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"),
    layers.MaxPooling2D(), layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(), layers.Flatten(),
    layers.Dropout(0.3), layers.Dense(128, activation="relu"), layers.Dense(10, activation="softmax")])
cnn_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
start = time.time()
cnn_model.fit(x_train[..., None], y_train, epochs=EPOCHS["cnn"], batch_size=128,
              validation_data=(x_val[..., None], y_val))
results["cnn"] = evaluate(cnn_model, time.time() - start)""",
        """rnn_model = keras.Sequential([keras.Input((28, 28)), layers.SimpleRNN(128), layers.Dense(10, activation="softmax")])
rnn_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
start = time.time()
rnn_model.fit(x_train, y_train, epochs=EPOCHS["simple_rnn"], batch_size=128, validation_data=(x_val, y_val))
results["simple_rnn"] = evaluate(rnn_model, time.time() - start)""",
        """lstm_model = keras.Sequential([keras.Input((28, 28)), layers.LSTM(128), layers.Dense(10, activation="softmax")])
lstm_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
start = time.time()
lstm_model.fit(x_train, y_train, epochs=EPOCHS["lstm"], batch_size=128, validation_data=(x_val, y_val))
results["lstm"] = evaluate(lstm_model, time.time() - start)""",
        """gru_model = keras.Sequential([keras.Input((28, 28)), layers.GRU(128), layers.Dense(10, activation="softmax")])
gru_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
start = time.time()
gru_model.fit(x_train, y_train, epochs=EPOCHS["gru"], batch_size=128, validation_data=(x_val, y_val))
results["gru"] = evaluate(gru_model, time.time() - start)""",
        """best_model_name = max(results, key=lambda name: results[name]["test_accuracy"])
best = {"mlp": mlp_model, "cnn": cnn_model, "simple_rnn": rnn_model, "lstm": lstm_model, "gru": gru_model}[best_model_name]
inputs = x_test[..., None] if best_model_name == "cnn" else x_test
predicted = best.predict(inputs, verbose=0).argmax(axis=1)
confusion = tf.math.confusion_matrix(y_test, predicted, num_classes=10).numpy()
plt.imshow(confusion, cmap="Blues")
plt.colorbar()
plt.title(f"Confusion matrix: {best_model_name}")
plt.show()""",
    ],
    "bob": [
        """(X, Y), (Xt, Yt) = keras.datasets.mnist.load_data()
X = X.reshape(-1, 28, 28).astype(np.float32) / 255
n_val = 6000
x_val, y_val = X[-n_val:], Y[-n_val:]
x_train, y_train = X[:-n_val], Y[:-n_val]
x_test, y_test = Xt.astype(np.float32) / 255, Yt
for name, arr in [("train", x_train), ("val", x_val), ("test", x_test)]:
    print(name, arr.shape, arr.min(), arr.max())""",
        """def dense_net(width=300):
    m = keras.models.Sequential()
    m.add(layers.Input(shape=(28, 28)))
    m.add(layers.Reshape((784,)))
    for units in (width, width // 3):
        m.add(layers.Dense(units))
        m.add(layers.Activation("relu"))
    m.add(layers.Dense(10, activation="softmax"))
    m.compile(keras.optimizers.Adam(5e-4), "sparse_categorical_crossentropy", ["accuracy"])
    return m

mlp_model = dense_net()
t0 = time.perf_counter()
hist_mlp = mlp_model.fit(x_train, y_train, batch_size=64, epochs=EPOCHS["mlp"], validation_data=(x_val, y_val), verbose=2)
results["mlp"] = evaluate(mlp_model, time.perf_counter() - t0)""",
        """def conv_net():
    m = keras.models.Sequential()
    m.add(layers.Input(shape=(28, 28, 1)))
    for filters in (16, 32):
        m.add(layers.Conv2D(filters, (5, 5), padding="same", activation="relu"))
        m.add(layers.MaxPool2D((2, 2)))
    m.add(layers.GlobalAveragePooling2D())
    m.add(layers.Dense(10, activation="softmax"))
    m.compile(keras.optimizers.Adam(5e-4), "sparse_categorical_crossentropy", ["accuracy"])
    return m

cnn_model = conv_net()
t0 = time.perf_counter()
hist_cnn = cnn_model.fit(np.expand_dims(x_train, -1), y_train, batch_size=64, epochs=EPOCHS["cnn"],
                         validation_data=(np.expand_dims(x_val, -1), y_val), verbose=2)
results["cnn"] = evaluate(cnn_model, time.perf_counter() - t0)""",
        """def recurrent(cell, units=96):
    m = keras.models.Sequential([layers.Input(shape=(28, 28)), cell(units), layers.Dense(10, activation="softmax")])
    m.compile(keras.optimizers.Adam(5e-4), "sparse_categorical_crossentropy", ["accuracy"])
    return m

rnn_model = recurrent(layers.SimpleRNN)
t0 = time.perf_counter()
rnn_model.fit(x_train, y_train, batch_size=64, epochs=EPOCHS["simple_rnn"], validation_data=(x_val, y_val), verbose=2)
results["simple_rnn"] = evaluate(rnn_model, time.perf_counter() - t0)""",
        """lstm_model = recurrent(layers.LSTM)
t0 = time.perf_counter()
lstm_model.fit(x_train, y_train, batch_size=64, epochs=EPOCHS["lstm"], validation_data=(x_val, y_val), verbose=2)
results["lstm"] = evaluate(lstm_model, time.perf_counter() - t0)""",
        """gru_model = recurrent(layers.GRU)
t0 = time.perf_counter()
gru_model.fit(x_train, y_train, batch_size=64, epochs=EPOCHS["gru"], validation_data=(x_val, y_val), verbose=2)
results["gru"] = evaluate(gru_model, time.perf_counter() - t0)""",
        """scores = {k: v["test_accuracy"] for k, v in results.items()}
best_model_name = sorted(scores, key=scores.get)[-1]
print("best:", best_model_name, scores[best_model_name])
chosen = globals()[{"simple_rnn": "rnn_model"}.get(best_model_name, best_model_name + "_model")]
x_in = np.expand_dims(x_test, -1) if best_model_name == "cnn" else x_test
y_hat = np.argmax(chosen.predict(x_in, batch_size=256, verbose=0), 1)
confusion = np.zeros((10, 10), dtype=np.int64)
for truth, guess in zip(y_test, y_hat):
    confusion[truth, guess] += 1
fig, ax = plt.subplots(figsize=(6, 6))
ax.matshow(confusion)
for (i, j), value in np.ndenumerate(confusion):
    ax.text(j, i, value, ha="center", va="center", fontsize=7)""",
    ],
    "carol": [
        """data = keras.datasets.mnist.load_data()
(train_images, train_labels), (test_images, test_labels) = data
def prep(images):
    return (images / 255.0).astype("float32")
x_train, y_train = prep(train_images[:50000]), train_labels[:50000]
x_val, y_val = prep(train_images[50000:]), train_labels[50000:]
x_test, y_test = prep(test_images), test_labels""",
        """inputs = keras.Input(shape=(28, 28))
h = layers.Flatten()(inputs)
h = layers.Dense(512, activation="relu")(h)
h = layers.BatchNormalization()(h)
h = layers.Dense(64, activation="relu")(h)
outputs = layers.Dense(10, activation="softmax")(h)
mlp_model = keras.Model(inputs, outputs, name="carol_mlp")
mlp_model.compile(optimizer=keras.optimizers.RMSprop(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
tic = time.time()
mlp_history = mlp_model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=EPOCHS["mlp"], batch_size=256)
results["mlp"] = evaluate(mlp_model, time.time() - tic)""",
        """inputs = keras.Input(shape=(28, 28, 1))
h = layers.Conv2D(24, 3, padding="same", activation="relu")(inputs)
h = layers.Conv2D(24, 3, activation="relu")(h)
h = layers.MaxPooling2D(2)(h)
h = layers.Conv2D(48, 3, activation="relu")(h)
h = layers.MaxPooling2D(2)(h)
h = layers.Flatten()(h)
outputs = layers.Dense(10, activation="softmax")(h)
cnn_model = keras.Model(inputs, outputs, name="carol_cnn")
cnn_model.compile(optimizer=keras.optimizers.RMSprop(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
tic = time.time()
cnn_history = cnn_model.fit(x_train.reshape(-1, 28, 28, 1), y_train, validation_data=(x_val.reshape(-1, 28, 28, 1), y_val),
                            epochs=EPOCHS["cnn"], batch_size=256)
results["cnn"] = evaluate(cnn_model, time.time() - tic)""",
        """inputs = keras.Input(shape=(28, 28))
outputs = layers.Dense(10, activation="softmax")(layers.SimpleRNN(64, activation="tanh")(inputs))
rnn_model = keras.Model(inputs, outputs)
rnn_model.compile(optimizer=keras.optimizers.RMSprop(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
tic = time.time()
rnn_model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=EPOCHS["simple_rnn"], batch_size=256)
results["simple_rnn"] = evaluate(rnn_model, time.time() - tic)""",
        """inputs = keras.Input(shape=(28, 28))
seq = layers.LSTM(64, return_sequences=True)(inputs)
outputs = layers.Dense(10, activation="softmax")(layers.LSTM(64)(seq))
lstm_model = keras.Model(inputs, outputs)
lstm_model.compile(optimizer=keras.optimizers.RMSprop(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
tic = time.time()
lstm_model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=EPOCHS["lstm"], batch_size=256)
results["lstm"] = evaluate(lstm_model, time.time() - tic)""",
        """inputs = keras.Input(shape=(28, 28))
outputs = layers.Dense(10, activation="softmax")(layers.Bidirectional(layers.GRU(48))(inputs))
gru_model = keras.Model(inputs, outputs)
gru_model.compile(optimizer=keras.optimizers.RMSprop(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
tic = time.time()
gru_model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=EPOCHS["gru"], batch_size=256)
results["gru"] = evaluate(gru_model, time.time() - tic)""",
        """import seaborn as sns
from sklearn.metrics import confusion_matrix as sk_confusion
table = pd.DataFrame.from_dict(results, orient="index")
best_model_name = table["test_accuracy"].idxmax()
lookup = dict(mlp=mlp_model, cnn=cnn_model, simple_rnn=rnn_model, lstm=lstm_model, gru=gru_model)
feed = x_test.reshape(-1, 28, 28, 1) if best_model_name == "cnn" else x_test
confusion = sk_confusion(y_test, lookup[best_model_name].predict(feed).argmax(-1))
sns.heatmap(confusion, annot=True, fmt="d", cbar=False)""",
    ],
    "dan": [
        """(xtr, ytr), (xte, yte) = keras.datasets.mnist.load_data()
scale = lambda a: np.asarray(a, dtype="float32") * (1.0 / 255.0)
idx = np.random.default_rng(3).permutation(len(xtr))
train_idx, val_idx = idx[:54000], idx[54000:]
x_train, y_train = scale(xtr[train_idx]), ytr[train_idx]
x_val, y_val = scale(xtr[val_idx]), ytr[val_idx]
x_test, y_test = scale(xte), yte
assert x_train.max() <= 1.0""",
        """class Timer:
    def __enter__(self):
        self.t = time.monotonic()
        return self
    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self.t

mlp_model = keras.Sequential(name="baseline")
mlp_model.add(layers.Flatten(input_shape=(28, 28)))
mlp_model.add(layers.Dense(200, activation="tanh"))
mlp_model.add(layers.Dropout(0.1))
mlp_model.add(layers.Dense(10, activation="softmax"))
mlp_model.compile(loss=keras.losses.SparseCategoricalCrossentropy(), optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
with Timer() as timer:
    mlp_model.fit(x_train, y_train, epochs=EPOCHS["mlp"], batch_size=32, validation_data=(x_val, y_val), verbose=0)
results["mlp"] = evaluate(mlp_model, timer.seconds)""",
        """cnn_model = keras.Sequential(name="lenet")
cnn_model.add(layers.Reshape((28, 28, 1), input_shape=(28, 28)))
cnn_model.add(layers.Conv2D(6, 5, activation="tanh", padding="same"))
cnn_model.add(layers.AveragePooling2D(2))
cnn_model.add(layers.Conv2D(16, 5, activation="tanh"))
cnn_model.add(layers.AveragePooling2D(2))
cnn_model.add(layers.Flatten())
cnn_model.add(layers.Dense(120, activation="tanh"))
cnn_model.add(layers.Dense(84, activation="tanh"))
cnn_model.add(layers.Dense(10, activation="softmax"))
cnn_model.compile(loss=keras.losses.SparseCategoricalCrossentropy(), optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
with Timer() as timer:
    cnn_model.fit(x_train, y_train, epochs=EPOCHS["cnn"], batch_size=32, validation_data=(x_val, y_val), verbose=0)
results["cnn"] = evaluate(cnn_model, timer.seconds)""",
        """rnn_model = keras.Sequential([layers.SimpleRNN(100, input_shape=(28, 28), dropout=0.1), layers.Dense(10, activation="softmax")])
rnn_model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.Nadam(), metrics=["accuracy"])
with Timer() as timer:
    rnn_model.fit(x_train, y_train, epochs=EPOCHS["simple_rnn"], batch_size=100, verbose=0)
results["simple_rnn"] = evaluate(rnn_model, timer.seconds)""",
        """lstm_model = keras.Sequential([layers.LSTM(100, input_shape=(28, 28), dropout=0.1), layers.Dense(10, activation="softmax")])
lstm_model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.Nadam(), metrics=["accuracy"])
with Timer() as timer:
    lstm_model.fit(x_train, y_train, epochs=EPOCHS["lstm"], batch_size=100, verbose=0)
results["lstm"] = evaluate(lstm_model, timer.seconds)""",
        """gru_model = keras.Sequential([layers.GRU(100, input_shape=(28, 28), dropout=0.1), layers.Dense(10, activation="softmax")])
gru_model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.Nadam(), metrics=["accuracy"])
with Timer() as timer:
    gru_model.fit(x_train, y_train, epochs=EPOCHS["gru"], batch_size=100, verbose=0)
results["gru"] = evaluate(gru_model, timer.seconds)""",
        """ranking = sorted(results.items(), key=lambda kv: -kv[1]["test_accuracy"])
best_model_name = ranking[0][0]
models_by_name = {"mlp": mlp_model, "cnn": cnn_model, "simple_rnn": rnn_model, "lstm": lstm_model, "gru": gru_model}
y_pred = models_by_name[best_model_name].predict(x_test, verbose=0).argmax(axis=-1)
confusion = np.bincount(10 * y_test + y_pred, minlength=100).reshape(10, 10)
print(pd.DataFrame(confusion, index=range(10), columns=range(10)))""",
    ],
}
# Two more independent students whose code only needs to be their own.
CODE["gina"] = [
    """mnist = keras.datasets.mnist
(a, b), (c, d) = mnist.load_data()
a = a / np.float32(255.0)
c = c / np.float32(255.0)
split = int(0.85 * len(a))
x_train, x_val, y_train, y_val = a[:split], a[split:], b[:split], b[split:]
x_test, y_test = c, d
print("split at", split)""",
    """import tensorflow.keras as tfk
def train_and_record(key, net, xs=x_train, xv=x_val, xt=None):
    net.compile(optimizer=tfk.optimizers.Adamax(learning_rate=0.002), loss="sparse_categorical_crossentropy",
                metrics=["accuracy"])
    began = time.process_time()
    net.fit(xs, y_train, epochs=EPOCHS[key], batch_size=200, validation_data=(xv, y_val), verbose=0)
    results[key] = evaluate(net, time.process_time() - began)
    return net

mlp_model = train_and_record("mlp", tfk.Sequential([tfk.layers.Flatten(input_shape=(28, 28)),
    tfk.layers.Dense(400, activation="sigmoid"), tfk.layers.Dense(10, activation="softmax")]))""",
    """images4d = lambda arr: arr[:, :, :, np.newaxis]
cnn_model = train_and_record("cnn", tfk.Sequential([
    tfk.layers.Conv2D(12, kernel_size=4, strides=2, activation="relu", input_shape=(28, 28, 1)),
    tfk.layers.Conv2D(24, kernel_size=3, activation="relu"),
    tfk.layers.AveragePooling2D(pool_size=2),
    tfk.layers.Flatten(),
    tfk.layers.Dense(10, activation="softmax")]), images4d(x_train), images4d(x_val))""",
    """rnn_model = train_and_record("simple_rnn", tfk.Sequential([
    tfk.layers.SimpleRNN(50, return_sequences=True, input_shape=(28, 28)), tfk.layers.SimpleRNN(50),
    tfk.layers.Dense(10, activation="softmax")]))""",
    """lstm_model = train_and_record("lstm", tfk.Sequential([tfk.layers.LSTM(70, input_shape=(28, 28)),
    tfk.layers.Dropout(0.2), tfk.layers.Dense(10, activation="softmax")]))""",
    """gru_model = train_and_record("gru", tfk.Sequential([tfk.layers.GRU(70, input_shape=(28, 28)),
    tfk.layers.Dropout(0.2), tfk.layers.Dense(10, activation="softmax")]))""",
    """accs = pd.Series({name: r["test_accuracy"] for name, r in results.items()})
best_model_name = accs.idxmax()
winner = eval({"simple_rnn": "rnn"}.get(best_model_name, best_model_name) + "_model")
probabilities = winner.predict(images4d(x_test) if best_model_name == "cnn" else x_test, verbose=0)
confusion = pd.crosstab(pd.Series(y_test, name="true"), pd.Series(probabilities.argmax(1), name="predicted")).values
print(accs.sort_values(ascending=False))""",
]
CODE["hank"] = list(CODE["dan"])  # replaced cell by cell below
CODE["hank"][1] = """mlp_model = keras.Sequential([layers.Input((28, 28)), layers.Flatten(), layers.Dense(96, activation="elu"),
                         layers.Dense(48, activation="elu"), layers.Dense(32, activation="elu"),
                         layers.Dense(10, activation="softmax")])
mlp_model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
began = time.time()
mlp_model.fit(x_train, y_train, epochs=EPOCHS["mlp"], validation_split=0.05, batch_size=48, shuffle=True, verbose=1)
results["mlp"] = evaluate(mlp_model, time.time() - began)"""
CODE["hank"][6] = """best_model_name = "cnn" if results["cnn"]["test_accuracy"] >= max(r["test_accuracy"] for r in results.values()) else "lstm"
net = cnn_model if best_model_name == "cnn" else lstm_model
guess = net(x_test[:10000], training=False).numpy().argmax(1)
confusion = np.zeros((10, 10), int)
np.add.at(confusion, (y_test, guess), 1)"""
# Hank's recurrent cells: one loop over the three cells, his own idea.
CODE["hank"][3] = """def seq_model(kind):
    net = keras.Sequential([layers.Input((28, 28)), layers.LayerNormalization(), kind(80, activation="relu"),
                            layers.Dense(10, activation="softmax")])
    net.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return net

rnn_model = seq_model(layers.SimpleRNN)
began = time.time()
rnn_model.fit(x_train, y_train, epochs=EPOCHS["simple_rnn"], validation_split=0.05, batch_size=48, verbose=1)
results["simple_rnn"] = evaluate(rnn_model, time.time() - began)"""
CODE["hank"][4] = """lstm_model = seq_model(layers.LSTM)
began = time.time()
lstm_model.fit(x_train, y_train, epochs=EPOCHS["lstm"], validation_split=0.05, batch_size=48, verbose=1)
results["lstm"] = evaluate(lstm_model, time.time() - began)"""
CODE["hank"][5] = """gru_model = seq_model(layers.GRU)
began = time.time()
gru_model.fit(x_train, y_train, epochs=EPOCHS["gru"], validation_split=0.05, batch_size=48, verbose=1)
results["gru"] = evaluate(gru_model, time.time() - began)"""
CODE["hank"][0] = """(train_x, train_y), (test_x, test_y) = keras.datasets.mnist.load_data()
x_train = train_x.astype("float32") / 255.0
y_train = train_y
x_test, y_test = test_x.astype("float32") / 255.0, test_y
x_val = y_val = None  # hank validates with validation_split inside fit"""
CODE["hank"][2] = """cnn_model = keras.Sequential([layers.Input((28, 28)), layers.Reshape((28, 28, 1)),
    layers.SeparableConv2D(32, 3, activation="relu"), layers.MaxPooling2D(), layers.Dropout(0.25),
    layers.SeparableConv2D(64, 3, activation="relu"), layers.GlobalMaxPooling2D(), layers.Dense(10, activation="softmax")])
cnn_model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
began = time.time()
cnn_model.fit(x_train, y_train, epochs=EPOCHS["cnn"], validation_split=0.05, batch_size=48, verbose=1)
results["cnn"] = evaluate(cnn_model, time.time() - began)"""

REPORTS = {
    "alice": """## Architectures
I trained five networks. The MLP flattens each image and uses two hidden layers (256 and 128 ReLU units) with
dropout. The CNN stacks two convolution and pooling blocks before a dense classifier. The three recurrent models
read an image row by row as 28 time steps and end in a softmax over the ten digits.

## Results
| Model | Test accuracy |
|---|---|
| MLP | 97.9% |
| CNN | 99.1% |
| SimpleRNN | 96.8% |
| LSTM | 98.4% |
| GRU | 98.2% |

## Insights
Convolutions win because weight sharing exploits local strokes and translation structure. Gated cells fix the
vanishing gradient problem that hurts the plain recurrent network on long sequences of rows, so LSTM and GRU beat
the SimpleRNN by more than a point while the GRU trains faster with fewer parameters.""",
    "bob": """# Report (Bob)
**Architectures.** My dense baseline reshapes to 784 values, then 300 and 100 unit layers. For convolutions I used
5x5 kernels with same padding, max pooling and global average pooling instead of a big dense head, which keeps the
parameter count tiny. Recurrent: 96 units each, the image rows as the sequence.

**Results.** CNN 98.7 %, dense 97.6 %, LSTM 98.0 %, GRU 97.9 %, SimpleRNN 95.9 %.

**Insights.** Global pooling makes the conv net robust to where the digit sits. The vanilla RNN was unstable: its
validation loss jumped around between epochs. Lowering the learning rate to 5e-4 helped every model a little.""",
    "carol": """### 1. Models
Functional API throughout: a 512-64 MLP with batch normalisation, a three-convolution network without dropout,
a SimpleRNN with 64 tanh units, a stacked two-layer LSTM and a bidirectional GRU. RMSprop for all of them.

### 2. Evaluation
| | MLP | CNN | SimpleRNN | LSTM | GRU |
|---|---|---|---|---|---|
| test acc | 0.978 | 0.990 | 0.962 | 0.985 | 0.984 |

### 3. Discussion
Reading both directions helps the GRU see the whole digit before deciding; stacking LSTMs costs time but gives a
small gain. Batch normalisation let the MLP converge in fewer epochs. The CNN was clearly best, as expected from
its inductive bias for images.""",
    "dan": """## Architectures
A classical setup: a tanh MLP with one hidden layer of 200 units trained with SGD and momentum, and LeNet-5 with
average pooling and tanh activations, as LeCun designed it in 1998. The recurrent networks have 100 units and input
dropout; they were trained with Nadam.

## Results
LeNet reached 98.9% and the MLP 97.1%. Among recurrent models LSTM gave 98.1%, GRU 98.3% and SimpleRNN 96.4%.

## Insights
Momentum SGD is slower to start than adaptive optimisers but LeNet still converged within the budget. Average
pooling smooths the feature maps, which seemed to help with thick strokes. The gated recurrent units beat the
simple cell clearly, confirming that gating preserves information across the 28 rows. The GRU was the best
recurrent model and trained about a quarter faster than the LSTM, which has an extra gate.""",
    "gina": """## Architectures
Sequential models built with small helper functions. Dense net with 300/100 units, a conv net with 5x5 filters
and global pooling, and recurrent nets (96 units) over the rows. Adamax optimiser everywhere.

## Results
- MLP: 97.4 %
- CNN: 98.5 %
- SimpleRNN: 95.1 %
- LSTM: 97.8 %
- GRU: 97.7 %

## Insights
The Adamax optimiser was stable but a little slower than Adam would have been. The global pooling CNN has under
20k parameters yet beats the 260k parameter MLP, which shows how much structure matters more than size.""",
    "hank": """## Architectures
I picked a small ELU MLP with three hidden layers, a depthwise separable convolution network, and relu recurrent
models with eighty units. Every model used a 5% validation split inside fit.

## Results
| network | accuracy on test |
|---|---|
| MLP | 96.9 |
| CNN | 98.6 |
| SimpleRNN | 95.7 |
| LSTM | 97.9 |
| GRU | 98.0 |

## Insights
Separable convolutions need far fewer weights than ordinary ones and still learned good filters. ELU activations
made the MLP train smoothly without batch normalisation. Relu recurrent cells were harder to train than tanh ones
and needed a smaller learning rate.""",
}
# Hank's report is replaced by a paraphrase of Dan's below (the plant); his own is kept for an honest check.
PARAPHRASE_OF_DAN = """## Architectures
The setup is classical: one hidden layer of 200 units in a tanh MLP trained by SGD with momentum, plus LeNet-5 with
average pooling and tanh activations, the way LeCun designed it in 1998. The recurrent networks have input dropout
and 100 units; Nadam trained them.

## Results
The MLP got 97.1% and LeNet reached 98.9%. Of the recurrent models, SimpleRNN gave 96.4%, LSTM 98.1% and GRU 98.3%.

## Insights
Momentum SGD starts slower than adaptive optimisers, yet LeNet still converged within the budget. Average pooling
smooths feature maps, which seemed helpful with thick strokes. The gated recurrent units clearly beat the simple
cell, which confirms that gating keeps information across the 28 rows. The best recurrent model was the GRU, and it
trained about a quarter faster than the LSTM, which has one more gate."""


def notebook(code_cells: list[str], report: str) -> nbformat.NotebookNode:
    """The student template with its seven TODO cells and its report cell filled in."""
    nb = nbformat.read(TEMPLATE, as_version=4)
    todo = [c for c in nb.cells if c.cell_type == "code" and "TODO" in c.source]
    assert len(todo) == len(code_cells) == 7
    for cell, source in zip(todo, code_cells):
        cell.source = source
    next(c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("_Replace this text")).source = report
    return nb


def renamed_and_reordered(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Bob's notebook as a copier would disguise it: other names, the model cells in another order."""
    nb = copy.deepcopy(nb)
    renames = {"dense_net": "make_dense", "conv_net": "make_conv", "recurrent": "make_rnn", "t0": "clock0",
               "hist_mlp": "h1", "hist_cnn": "h2", "m.": "net.", "m =": "net =", "return m": "return net",
               "scores": "accs", "chosen": "picked", "y_hat": "preds", "n_val": "holdout", "width": "size"}
    for cell in nb.cells:
        if cell.cell_type == "code":
            for old, new in renames.items():
                cell.source = cell.source.replace(old, new)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "EPOCHS[" in c.source]
    cells = [nb.cells[i] for i in code]
    for i, cell in zip(code, cells[::-1]):  # the five model cells in reverse order
        nb.cells[i] = cell
    return nb


def train_tiny_mlp(seed: int, mnist) -> tuple[np.ndarray, str]:
    """A real, small MLP trained on a slice: (class ids on 2,000 test images, weight hash)."""
    import keras

    from autograder.run.inside import predict

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(mnist.x_train[:3000].reshape(-1, 784) / 255.0, mnist.y_train[:3000], epochs=2, batch_size=64, verbose=0)
    predicted = model.predict(mnist.x_test[:2000].reshape(-1, 784) / 255.0, verbose=0).argmax(axis=1)
    return predicted.astype(np.int8), predict.weights_sha256(model)  # the prediction sandbox's own hash


def save_model_evidence(artifacts: Path, predictions: np.ndarray, digest: str) -> None:
    """The evidence of a notebook whose MLP was found and predicted, stored by the grader's own writer: the
    class ids on the secret evaluation images and the weight hash, as the prediction sandbox reports them."""
    from autograder.assignment import ARCHITECTURES
    from autograder.score.artifacts import Evidence, ModelEvidence, save_evidence

    models = {arch: ModelEvidence(arch) for arch in ARCHITECTURES}
    models["mlp"] = ModelEvidence("mlp", found=True, variable="mlp_model", found_by="name", weights_sha256=digest,
                                  predictions={similarity.EVAL_SET: predictions})
    save_evidence(Evidence(models=models, data={}, validation={}, confusion=[], best_model="mlp", fits=[],
                           problems=[]), artifacts)


def write_result(results: Path, student: str, nb: nbformat.NotebookNode, model: tuple[np.ndarray, str],
                 submitted_at: str | None = None) -> None:
    """A stored result as `autograder grade` leaves it: result JSON, sanitized notebook, evidence."""
    from autograder.assignment import load_assignment
    from autograder.pipeline.grade_one import base_result
    from autograder.results import write_result as write_json
    from result_fixtures import fixture_result

    key = f"{student}-{abs(hash(submitted_at)) % 10**12:012d}"
    (results / "results").mkdir(parents=True, exist_ok=True)
    artifacts = results / "artifacts" / key
    artifacts.mkdir(parents=True)
    nbformat.write(nb, artifacts / "submission.ipynb")
    save_model_evidence(artifacts, *model)
    assignment = load_assignment(Path(__file__).resolve().parents[1] / "assignments" / "mnist")
    result = base_result(artifacts / "submission.ipynb", assignment, None,
                         {"student_id": student, "student_name": student.title(), "submitted_at": submitted_at},
                         sandboxed=True)
    result["models"] = {"mlp": {**fixture_result("a001-complete")["models"]["mlp"], "accuracy": 0.9}}
    write_json(results / "results" / f"{key}.json", result)


@pytest.fixture(scope="module")
def batch(tmp_path_factory, mnist):
    results = tmp_path_factory.mktemp("similarity") / "results"
    own = {s: notebook(CODE[s], REPORTS[s]) for s in ("alice", "bob", "carol", "dan", "gina", "hank")}
    models = {s: train_tiny_mlp(seed, mnist) for seed, s in enumerate(own)}
    for student, nb in own.items():
        write_result(results, student, nb, models[student])
    write_result(results, "erin", copy.deepcopy(own["alice"]), models["alice"])  # exact copy: same run
    write_result(results, "frank", renamed_and_reordered(own["bob"]), train_tiny_mlp(11, mnist))  # own training
    write_result(results, "ivan", notebook(CODE["hank"], REPORTS["hank"].replace("ELU", "SELU")),
                 models["carol"])  # Hank-like code is his own; Carol's trained model
    write_result(results, "judy", notebook(CODE["gina"], PARAPHRASE_OF_DAN), train_tiny_mlp(12, mnist))
    return results


PLANTS = {("alice", "erin"): {"code", "prose", "models"}, ("bob", "frank"): {"code"},
          ("carol", "ivan"): {"models"}, ("dan", "judy"): {"prose"}}


SAME_MODEL = {("alice", "erin"), ("carol", "ivan")}  # one trained model in two submissions


def flagged(pairs) -> dict[tuple[str, str], set[str]]:
    return {tuple(sorted((p.a.student_id, p.b.student_id))): set(p.signals) for p in pairs}


def same_weights(pairs) -> set[tuple[str, str]]:
    return {tuple(sorted((p.a.student_id, p.b.student_id))) for p in pairs if any(m.same_weights for m in p.models)}


@pytest.mark.slow
def test_every_plant_is_flagged_by_its_signal(batch, repo):
    from autograder.assignment import load_assignment

    pairs = similarity.write_report(batch, batch.parent / "report", load_assignment(repo / "assignments" / "mnist"))
    found = flagged(pairs)
    for pair, signals in PLANTS.items():
        assert pair in found, f"plant {pair} not flagged; flagged: {found}"
        assert signals <= found[pair], f"{pair}: expected {signals}, got {found[pair]}"
    assert same_weights(pairs) == SAME_MODEL


@pytest.mark.slow
def test_no_independent_pair_is_flagged(batch, repo):
    """Hank/Ivan and Gina/Judy share their code on purpose (the plants' carriers); every other pair is independent."""
    from autograder.assignment import load_assignment

    pairs = similarity.write_report(batch, batch.parent / "report2", load_assignment(repo / "assignments" / "mnist"))
    carriers = {("hank", "ivan"), ("gina", "judy")}
    unexpected = {pair: s for pair, s in flagged(pairs).items() if pair not in PLANTS and pair not in carriers}
    assert not unexpected, f"independent pairs flagged: {unexpected}"


@pytest.mark.slow
def test_pairs_csv_and_page(batch, repo, tmp_path):
    """The CSV is ranked, names are inert in a spreadsheet, and the page renders in a real browser."""
    from autograder.assignment import load_assignment

    out = tmp_path / "similarity"
    similarity.write_report(batch, out, load_assignment(repo / "assignments" / "mnist"))
    import pandas as pd

    table = pd.read_csv(out / "pairs.csv")
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    assert tuple(sorted(table.iloc[0][["student_a", "student_b"]])) == ("alice", "erin")  # three signals ranks first
    html = (out / "index.html").read_text()
    assert "<script" not in html and "<mark>" in html
    shot = tmp_path / "page.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,1600", (out / "index.html").as_uri()], check=True, capture_output=True,
                   timeout=120)
    assert shot.stat().st_size > 10_000


def test_identical_weights_are_named_from_the_stored_evidence(tmp_path, assignment):
    """One model in two submissions is named by its weight hash, read where grading stores it; a model that
    only predicts the same classes is a near match, not the same weights."""
    import hashlib

    import pandas as pd

    classes = np.random.default_rng(0).integers(0, 10, 2000).astype(np.int8)
    shared, own = (hashlib.sha256(text.encode()).hexdigest() for text in ("a shared model", "another model"))
    for student, digest in (("alice", shared), ("bob", shared), ("carol", own)):
        write_result(tmp_path / "results", student, notebook(CODE[student], REPORTS[student]), (classes, digest))
    similarity.write_report(tmp_path / "results", tmp_path / "report", assignment)
    table = pd.read_csv(tmp_path / "report" / "pairs.csv")
    models = {tuple(sorted(row[["student_a", "student_b"]])): row["shared_models"] for _, row in table.iterrows()}
    assert models == {("alice", "bob"): "mlp:same-weights", ("alice", "carol"): "mlp:0/2000",
                      ("bob", "carol"): "mlp:0/2000"}


def test_cli_refuses_a_folder_without_results(tmp_path, capsys):
    from autograder.cli import main

    assert main(["similarity", str(tmp_path)]) == 2
    assert "results" in capsys.readouterr().err


def test_latest_submission_per_student_is_compared(tmp_path):
    """A resubmission replaces the earlier one: a student is never compared with their own first try."""
    nb = notebook(CODE["alice"], REPORTS["alice"])
    model = (np.zeros(10, dtype=np.int8), "0" * 64)
    for when in ("2026-11-02T10:00:00+00:00", "2026-11-01T10:00:00+00:00"):
        write_result(tmp_path, "alice", nb, model, submitted_at=when)
    results = open_results(tmp_path).load()
    latest = next(k for k, r in results.items() if r["submission"]["submitted_at"].startswith("2026-11-02"))
    assert len(results) == 2
    assert [e.key for e in similarity.load_entries(open_results(tmp_path))] == [latest]


def test_code_fingerprints_are_the_same_in_every_process():
    """copydetect's own k-gram hash is salted per process; the report must not change from run to run."""
    script = ("from autograder.output.similarity import code_fingerprint; "
              "print(sorted(code_fingerprint('x = load()\\nfor i in range(10):\\n    model.fit(x, y, epochs=i)\\n' * 5).hashes))")
    runs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                           cwd=Path(__file__).resolve().parents[1]).stdout for _ in range(2)}
    assert len(runs) == 1 and runs.pop().startswith("[")
