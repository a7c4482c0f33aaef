"""The orders API: an order by order_uid, the list of recent orders, their schemas and cursors."""
