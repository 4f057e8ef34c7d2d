"""Discovery: collectors (scan, snmp, ssh, netdev) that read targets, turn what they read into typed
observations and ingest them as batches through ``cmdb.ingest``; the runner decides per-target outcomes."""
