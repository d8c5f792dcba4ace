"""HTTP routes: thin — parse, call one command or read, shape the response."""
