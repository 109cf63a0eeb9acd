from keras_tl_cli.main import main

main()
