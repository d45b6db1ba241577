"""All I/O of the workflow: the model, the database, tools."""
