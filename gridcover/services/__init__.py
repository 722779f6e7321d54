"""The operations both doors (the command line and the HTTP server) share: each takes a store, returns plain results."""
