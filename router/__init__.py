"""The FastAGI daemon: call sessions, CDR writing, metrics and the command line."""
