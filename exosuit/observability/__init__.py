"""What a running Exosuit tells its operators: log lines (logs.py) and traces (tracing.py).

Both sit beside the settings: they take plain values, so every layer above may use them.
"""
