"""Logs, metrics and request context: what an operator needs to see the service work."""
