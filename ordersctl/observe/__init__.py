"""What an operator asks about the pipeline: is it healthy (``status``), where is one order (``trace``).

Shared by the CLI and the HTTP API: functions that take their collaborators and return plain dataclasses
with ``as_json()``; nothing here prints. Kafka is read with assign, watermarks and the admin API, never by
joining the orders group.
"""
