"""Developer commands: set up, run the stack locally, run the tests (``python -m devtools``)."""
