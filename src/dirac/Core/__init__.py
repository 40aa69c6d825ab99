"""The framework: configuration, security, RPC over Tornado, agents, DBs and scripts.

Core imports no system package; systems and resources build on it.
"""
