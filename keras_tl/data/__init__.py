"""Tasks: named data with fixed splits, from the built-in digits, files, image folders,
`keras.datasets` files or arrays registered in Python. Imports no keras."""
