"""Models -> arrays for `keras_tl.scores`: features, transferability scoring, layer
similarity and source retention."""
