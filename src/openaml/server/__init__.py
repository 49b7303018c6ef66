"""The HTTP side: the AWS JSON endpoint, health and log routes, and an embeddable server."""
