from otter.test_files import test_case

OK_FORMAT = False

name = "q7"
points = None

@test_case(points=None, hidden=False)
def test_confusion(confusion, best_model_name, y_test):
    import numpy as np
    choices = ('mlp', 'cnn', 'simple_rnn', 'lstm', 'gru')
    assert best_model_name in choices, f'best_model_name should be one of {choices}, but it is {best_model_name!r}'
    assert isinstance(confusion, np.ndarray), f'confusion should be a NumPy array, but it is {type(confusion).__name__}: complete the TODO in Question 7'
    assert confusion.shape == (10, 10), f'confusion should be 10x10 (one row and one column per digit), but its shape is {confusion.shape}'
    assert np.issubdtype(confusion.dtype, np.integer), f'confusion should hold integer counts, but its dtype is {confusion.dtype}'
    assert isinstance(y_test, np.ndarray), 'y_test is missing: complete Question 1 first'
    assert confusion.sum() == len(y_test), f'confusion should count every test image once: it sums to {confusion.sum()}, but y_test has {len(y_test)} labels'
    per_digit = np.bincount(y_test.astype(int), minlength=10)
    assert np.array_equal(confusion.sum(axis=1), per_digit), 'row i of confusion should sum to the number of test images of digit i (rows = true labels, columns = predictions); did you swap the arguments?'

