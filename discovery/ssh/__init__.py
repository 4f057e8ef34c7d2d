"""SSH discovery: Linux hosts (facts, packages, sockets) and application dependency mapping."""
