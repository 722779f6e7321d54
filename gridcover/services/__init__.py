"""The operations the two doors share (the command line and the HTTP server): each takes a store and returns plain results."""
