"""Networks defined once (builders, files, applications, KerasHub), their transfer
units, and the copying and freezing of layers between them."""
