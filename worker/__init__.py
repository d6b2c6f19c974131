"""The chatstream worker: consumes jobs and runs their pipelines, publishing events to Redis."""
