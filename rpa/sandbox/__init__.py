"""Local stand-ins for the platform services, used by the sandbox mode and the tests."""
