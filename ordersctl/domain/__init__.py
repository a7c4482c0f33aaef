"""Order model, business rules and the order <-> rows mapping. No I/O here."""
