"""What probably answers on a port: a guess from the banner first, then TLS, then the port number.

The guess is a label for people (``ssh``, ``https``, ``postgresql``), not a fingerprint: the scan
sends nothing but a TLS ClientHello, so a service that waits for the client is named by its port
alone. ``CLIENT_SPEAKS_FIRST`` lists the ports whose protocols never send a greeting; the prober
skips the banner read there instead of waiting out the banner timeout on every web server.
"""

from __future__ import annotations

import re

PORT_SERVICES: dict[int, str] = {
    21: "ftp", 22: "ssh", 23: "telnet", 25: "smtp", 53: "domain", 80: "http", 110: "pop3", 111: "rpcbind",
    135: "msrpc", 139: "netbios-ssn", 143: "imap", 161: "snmp", 389: "ldap", 443: "https", 445: "microsoft-ds",
    465: "smtps", 587: "submission", 636: "ldaps", 853: "domain-s", 873: "rsync", 989: "ftps-data", 990: "ftps",
    992: "telnets", 993: "imaps", 994: "ircs", 995: "pop3s", 1433: "ms-sql", 1521: "oracle", 2049: "nfs",
    2376: "docker-tls", 2379: "etcd", 3000: "http", 3306: "mysql", 3389: "rdp", 5061: "sips", 5432: "postgresql",
    5672: "amqp", 5900: "vnc", 5985: "wsman", 5986: "wsmans", 6379: "redis", 6443: "kubernetes-api", 8000: "http",
    8008: "http", 8080: "http-proxy", 8443: "https-alt", 8888: "http", 9090: "http", 9092: "kafka",
    9200: "elasticsearch", 9443: "https-alt", 10250: "kubelet", 11211: "memcached", 27017: "mongodb",
}

# Protocols where the client talks first: a banner read there only costs the banner timeout.
CLIENT_SPEAKS_FIRST: frozenset[int] = frozenset({
    53, 80, 111, 135, 139, 161, 389, 443, 445, 465, 636, 853, 989, 990, 992, 993, 994, 995, 1433, 1521, 2049,
    2376, 2379, 3000, 3389, 5061, 5432, 5672, 5985, 5986, 6379, 6443, 8000, 8008, 8080, 8443, 8888, 9090, 9092,
    9200, 9443, 10250, 11211, 27017,
})

# Plain-text names that become their TLS form when the port turned out to speak TLS.
TLS_NAMES: dict[str, str] = {"http": "https", "http-proxy": "https", "ldap": "ldaps", "imap": "imaps",
                             "pop3": "pop3s", "smtp": "smtps", "ftp": "ftps", "telnet": "telnets"}

_BANNER_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^SSH-\d"), "ssh"),
    (re.compile(r"^220[ -].*\bE?SMTP\b|^220[ -].*\b(Postfix|Exim|Sendmail|mail)\b", re.I), "smtp"),
    (re.compile(r"^220[ -].*\bFTP\b|^220[ -].*(FileZilla|vsFTPd|ProFTPD|Pure-FTPd)", re.I), "ftp"),
    (re.compile(r"^\+OK\b"), "pop3"),
    (re.compile(r"^\* (OK|PREAUTH)\b"), "imap"),
    (re.compile(r"^RFB \d{3}\.\d{3}"), "vnc"),
    (re.compile(r"mysql|mariadb|^\S*\d+\.\d+\.\d+.*(-log|-MariaDB)", re.I), "mysql"),
    (re.compile(r"^@RSYNCD:"), "rsync"),
    (re.compile(r"^HTTP/\d"), "http"),
)


def guess_service(port: int, banner: str | None, tls: bool | None) -> str | None:
    """The best label for what answers on ``port``: banner > TLS > port number; None when unknown."""
    if banner:
        for pattern, name in _BANNER_RULES:
            if pattern.search(banner):
                return TLS_NAMES.get(name, name) if tls else name
    by_port = PORT_SERVICES.get(port)
    if tls:
        return "tls" if by_port is None else TLS_NAMES.get(by_port, by_port)
    return by_port
