"""The entry points: the `exosuit` command, the processes it runs, and their wiring.

The only package that imports every layer: it builds the storage, the model client,
the activities, the worker and the web app, and starts them.
"""
