"""ordersctl: operations toolkit for a Kafka -> PostgreSQL order pipeline."""

__version__ = "0.1.0"
