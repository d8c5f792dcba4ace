"""The command line's client of the HTTP API: submit tests, follow and manage runs."""
