"""Training: fit and predict, the target recipes, the model pool and feature cache,
fused multi-task models and `keras.distribution`."""
