"""The Pipeline view of the web page: status and the latest dead letters, read for it and served."""
