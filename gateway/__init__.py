"""The chatstream gateway: the HTTP API, job submission and the SSE relay."""
