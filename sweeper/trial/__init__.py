"""One trial: data, model, fit, evaluation, checkpoint, TensorBoard run and record.

TensorFlow is imported only inside this subpackage (and by export), and only when a trial runs.
"""
