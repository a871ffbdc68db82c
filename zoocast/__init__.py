"""The launcher: command line in, roles and local clusters out (the only package importing every role)."""
