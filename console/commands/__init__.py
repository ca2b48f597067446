"""The console's `hotline400` subcommands: web, users, report."""
