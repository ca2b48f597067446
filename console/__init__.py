"""The web management console: subscribers and the operator run their 400 numbers here."""
