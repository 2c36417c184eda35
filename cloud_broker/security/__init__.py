"""Broker security: password hashes in mosquitto's own format, password/ACL files, PKI.

See README.md in this folder for the roles, their ACLs and how the files are reloaded.
"""
