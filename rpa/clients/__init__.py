"""Wrappers around every outside system the jobs talk to.

Raw replies of boto3, hvac and requests stay inside this package; callers get value
objects and the exceptions of `rpa.clients.errors`.
"""
