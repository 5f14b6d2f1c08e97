"""Notification channels (in-app, webhook, e-mail) and the deliveries that travel on the ``notifications`` topic."""
