from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = None

@test_case(points=None, hidden=False)
def test_preprocessing(x_train, y_train, x_val, y_val, x_test, y_test):
    import numpy as np
    images = {'x_train': x_train, 'x_val': x_val, 'x_test': x_test}
    labels = {'y_train': y_train, 'y_val': y_val, 'y_test': y_test}
    for name, value in {**images, **labels}.items():
        assert isinstance(value, np.ndarray), f'{name} should be a NumPy array, but it is {type(value).__name__}: complete the TODO in Question 1'
        assert len(value) > 0, f'{name} is empty: the validation split should hold the last 5,000 training images'
    for name, x in images.items():
        assert x.shape[1:] in ((28, 28), (28, 28, 1), (784,)), f'{name} should hold images shaped (n, 28, 28), but its shape is {x.shape}'
        low, high = (float(x.min()), float(x.max()))
        assert low >= 0.0 and high <= 1.0, f'{name} should be float scaled to [0, 1], but its max is {high} and its min is {low}: divide by 255'
        assert x.dtype == np.float32, f"{name} should be float32, but its dtype is {x.dtype}: use .astype('float32')"
        assert high > 0.5, f'{name} is too dark: its max is {high:.4f} where white should be 1.0; did you divide by 255 twice?'
    for name, y in labels.items():
        assert y.ndim == 1, f'{name} should be a 1-D array of integer labels 0-9, but its shape is {y.shape}; keep integer labels (no one-hot encoding)'
        assert np.issubdtype(y.dtype, np.integer), f'{name} should hold integer labels, but its dtype is {y.dtype}'
        assert y.min() >= 0 and y.max() <= 9, f'{name} should hold the digits 0-9, but it ranges from {y.min()} to {y.max()}'
    for part in ('train', 'val', 'test'):
        x, y = (images[f'x_{part}'], labels[f'y_{part}'])
        assert len(x) == len(y), f'x_{part} has {len(x)} images but y_{part} has {len(y)} labels; they must match one to one'
    assert len(x_test) == 10000, f'x_test should be the 10,000 MNIST test images, but it holds {len(x_test)}'
    assert len(x_train) + len(x_val) <= 60000, f'x_train and x_val hold {len(x_train) + len(x_val)} images together, more than the 60,000 training images; the validation set must come out of the training set'

