"""Composing chatstream's services: ``make run`` (gateway and worker in one process on the
embedded transports) and ``make stack`` (a gateway and worker processes on the real servers).

Nothing else imports both the gateway and the worker.
"""
