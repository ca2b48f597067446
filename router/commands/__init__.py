"""One module per `hotline400` subcommand, each with `add_parser` and `run`."""
