"""The keras-tl command line (installed as the package keras_tl_cli)."""
