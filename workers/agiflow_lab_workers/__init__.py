"""AGIFlow Lab worker process: job runner (papermill + kernel pool) and the other consumers."""
