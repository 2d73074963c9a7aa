from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = None

@test_case(points=None, hidden=False)
def test_mlp_model(mlp_model):
    import keras
    import numpy as np
    name, required = ('mlp_model', ('Dense',))
    assert mlp_model is not None, f'{name} is not built yet: complete the TODO in this question'
    assert isinstance(mlp_model, keras.Model), f'{name} should be a Keras model such as keras.Sequential([...]), but it is {type(mlp_model).__name__}'
    pending, kinds = (list(mlp_model.layers), [])
    while pending:
        layer = pending.pop()
        kinds.append(type(layer).__name__)
        pending.extend(getattr(layer, 'layers', []))
    missing = [kind for kind in required if kind not in kinds]
    assert not missing, f'{name} has no {missing[0]} layer; its layers are {sorted(set(kinds))}'
    assert kinds.count('Dense') >= 2, f"{name} needs at least one hidden Dense layer before its 10-way output layer; it has {kinds.count('Dense')} Dense layer(s)"
    probe = np.zeros((2,) + tuple((28 if d is None else d for d in mlp_model.input_shape[1:])), dtype='float32')
    output = np.asarray(mlp_model(probe, training=False))
    assert output.shape == (2, 10), f'{name} should end in a Dense(10) layer, one output per digit, but its output shape is {output.shape[1:]}'
    assert np.all(output >= 0) and np.allclose(output.sum(axis=1), 1.0, atol=0.001), f'{name} should end in a softmax activation so that its 10 outputs are probabilities, but they sum to {output.sum(axis=1)[0]:.3f}'
    optimizer = getattr(mlp_model, 'optimizer', None)
    assert optimizer is not None, f"{name} is not compiled: call {name}.compile(optimizer=keras.optimizers.Adam(1e-3), loss='sparse_categorical_crossentropy', metrics=['accuracy'])"
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) > 0, f'{name} is compiled but not trained: call {name}.fit(...) on x_train, y_train'

