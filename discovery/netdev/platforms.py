"""Per device type: the fixed show commands discovery runs and how their text becomes records.

Each platform (netmiko ``device_type``) lists its commands in order. Text is parsed with the
ntc-templates TextFSM templates, then mapped to the vendor-neutral records of ``records`` with
names normalised (``names``). A command's output that is a CLI error (``% Invalid input``,
``Unknown command``, ``syntax error``), that no template parses, or that yields nothing where
something is expected raises ``CommandParseError`` naming the command: the text is never kept as
data. ``essential`` commands (the ones that say which device this is) fail the whole target;
the others make the view partial. ``CDP/LLDP is not enabled`` is an empty neighbour list.

Supported: cisco_ios (IOS, IOS-XE), arista_eos, juniper_junos, cisco_nxos.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import textfsm

from cmdb.model import canonical_mac
from discovery.names import long_interface_name, short_hostname
from discovery.netdev.records import InterfaceRecord, NeighbourRecord, Record, SystemRecord

Rows = list[dict[str, Any]]


class CommandParseError(Exception):
    """A command's output could not be turned into records; ``command`` names it."""

    def __init__(self, command: str, reason: str) -> None:
        super().__init__(f"`{command}`: {reason}")
        self.command = command
        self.reason = reason


Converter = Callable[[Rows, str], list[Record]]


@dataclass(frozen=True)
class Command:
    text: str
    convert: Converter  # (ntc-templates rows, raw text) -> records
    essential: bool = False  # the device's identity: its failure fails the target
    may_be_empty: bool = False  # no records is a valid answer (no neighbours)


@dataclass(frozen=True)
class Platform:
    device_type: str  # netmiko's name
    vendor: str
    os: str
    enable: bool  # enter privileged mode first (IOS and EOS restrict some show commands)
    commands: tuple[Command, ...]
    classify: Callable[[SystemRecord], str]


# -- shared value helpers ----------------------------------------------------------------------

def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    out = str(value).strip().strip('"').strip()
    return out or None


def _mac(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    try:
        mac = canonical_mac(text)
    except ValueError:
        return None
    return None if mac == "00:00:00:00:00:00" else mac


def _ip(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _iface_address(address: Any, prefix: Any = None) -> str | None:
    """``10.0.0.1`` + ``30`` or ``10.0.0.1/30`` -> ``10.0.0.1/30``; anything else -> None."""
    text = _text(address)
    if text is None or text.lower() in ("unassigned", "unnumbered"):
        return None
    plen = _text(prefix)
    if plen and "/" not in text:
        text = f"{text}/{plen}"
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        return None
    return str(iface) if "/" in text else None


_SPEED = re.compile(r"(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[kmgt])(?:b(?:it|ps|/s)?)?(?:/sec)?$", re.IGNORECASE)
_UNIT_MBPS = {"k": 0.001, "m": 1.0, "g": 1000.0, "t": 1_000_000.0}


def _speed_mbps(value: Any) -> int | None:
    """``1000Mb/s``, ``1Gb/s``, ``10Gbps``, ``1000mbps``, ``1000000 Kbit`` -> Mbit/s; else None."""
    text = _text(value)
    if text is None:
        return None
    m = _SPEED.search(text.replace(" ", ""))
    if m is None:
        return None
    mbps = float(m["n"]) * _UNIT_MBPS[m["unit"].lower()]
    return int(mbps) if mbps >= 1 else None


def _first_word(value: Any) -> str:
    text = _text(value) or ""
    return text.split()[0].lower() if text else ""


def _oper(value: Any) -> str | None:
    word = _first_word(value)
    if not word:
        return None
    return {"up": "up", "down": "down", "testing": "testing", "dormant": "dormant",
            "notpresent": "notPresent", "lowerlayerdown": "lowerLayerDown"}.get(word, "unknown")


def _admin_from_link(link_status: Any) -> str | None:
    """IOS/EOS link status: ``administratively down`` means admin down, anything else admin up."""
    text = (_text(link_status) or "").lower()
    if not text:
        return None
    return "down" if "administratively" in text or "disabled" in text else "up"


_CAPABILITY_WORDS = {
    "router": "router", "r": "router", "switch": "switch", "bridge": "bridge", "b": "bridge",
    "trans-bridge": "bridge", "source-route-bridge": "bridge", "host": "host", "s": "host", "station": "host",
    "phone": "phone", "t": "phone", "telephone": "phone", "w": "wlan", "wlan": "wlan", "p": "repeater",
    "repeater": "repeater", "o": "other", "c": "docsis",
}


def _capabilities(value: Any) -> list[str]:
    text = " ".join(value) if isinstance(value, list) else (_text(value) or "")
    found = {_CAPABILITY_WORDS[w] for w in re.split(r"[\s,]+", text.lower()) if w in _CAPABILITY_WORDS}
    return sorted(found)


_IF_NAME_LIKE = re.compile(r"^([A-Za-z][A-Za-z-]*[\s.]?\d[\w/.:-]*|\d+(/\d+)+)$")


def _looks_like_if_name(text: str | None) -> bool:
    """A port id that names an interface (``Gi1/0/1``, ``Ethernet2``, ``ge-0/0/1``, ``1/1/1``), not a
    MAC address, an ifIndex (``515``) or a free-text description (``to leaf1 Et2``)."""
    if not text or not _IF_NAME_LIKE.match(text):
        return False
    return _mac(text) is None or bool(re.search(r"[g-zG-Z]", text))


def _remote_port(port_id: Any, port_description: Any) -> str | None:
    """The far end's interface name: the LLDP/CDP port id when it is one, else the port description
    when that is one (Junos sends its ifIndex as port id), else unknown (the link is not recorded)."""
    for candidate in (_text(port_id), _text(port_description)):
        if candidate and _looks_like_if_name(candidate):
            return long_interface_name(candidate)
    return None


def _neighbour(protocol: str, local: Any, name: Any, port: str | None, mgmt: Any = None, platform: Any = None,
               caps: Any = None) -> NeighbourRecord | None:
    local_if, remote = _text(local), _text(name)
    if not local_if or not remote or not port:
        return None  # without a name or a port the far end cannot be identified
    return NeighbourRecord(protocol, long_interface_name(local_if), short_hostname(remote), port,
                           management_ip=_ip(mgmt), platform=_text(platform), capabilities=_capabilities(caps))


def _some(records: Sequence[Record | None]) -> list[Record]:
    return [r for r in records if r is not None]


# -- Cisco IOS / IOS-XE ----------------------------------------------------------------------------

_IOS_XE = re.compile(r"IOS[ -]?XE", re.IGNORECASE)


def _ios_version(rows: Rows, raw: str) -> list[Record]:
    row = rows[0]
    hostname = _text(row.get("hostname"))
    if not hostname:
        raise ValueError("no hostname in the output")
    return [SystemRecord(hostname=short_hostname(hostname), model=_text(row.get("hardware")),
                         serial_number=_text(row.get("serial")), os_version=_text(row.get("version")),
                         os="IOS-XE" if _IOS_XE.search(raw) else None,  # the spelling SNMP's sysDescr gives
                         base_mac=_mac(row.get("mac_address")), description=_text(row.get("software_image")))]


def _inventory(rows: Rows, raw: str) -> list[Record]:
    """The chassis entry (named like ``Chassis`` / ``Switch 1``, else the first one): model and serial."""
    chassis = next((r for r in rows if re.search(r"chassis|^switch ?\d*$", _text(r.get("name")) or "", re.I)),
                   rows[0])
    return [SystemRecord(model=_text(chassis.get("pid")), serial_number=_text(chassis.get("sn")))]


def _ios_interfaces(rows: Rows, raw: str) -> list[Record]:
    return [InterfaceRecord(
        if_name=long_interface_name(str(r["interface"])), alias=_text(r.get("description")),
        mac_address=_mac(r.get("mac_address")),
        speed_mbps=_speed_mbps(r.get("speed")) or _speed_mbps(r.get("bandwidth")),
        admin_status=_admin_from_link(r.get("link_status")), oper_status=_oper(r.get("protocol_status")),
        addresses=[a for a in [_iface_address(r.get("ip_address"), r.get("prefix_length"))] if a],
    ) for r in rows]


def _ios_cdp(rows: Rows, raw: str) -> list[Record]:
    return _some([_neighbour("cdp", r.get("local_interface"), r.get("neighbor_name"),
                             _remote_port(r.get("neighbor_interface"), None), r.get("mgmt_address"),
                             r.get("platform"), r.get("capabilities")) for r in rows])


def _ios_lldp(rows: Rows, raw: str) -> list[Record]:
    return _some([_neighbour("lldp", r.get("local_interface"), r.get("neighbor_name"),
                             _remote_port(r.get("neighbor_port_id"), r.get("neighbor_interface")),
                             r.get("mgmt_address"), r.get("neighbor_description"), r.get("capabilities"))
                  for r in rows])


_IOS_SWITCH = re.compile(r"^(WS-C|C9[2-6]\d\d|C[23]\d\d\d|C1000|CBS|IE-?\d|CDB|VIOS[_-]?L2)", re.I)
# Software images and LLDP descriptions of Catalyst switches (an ISR's C2900 image is no switch).
_IOS_SWITCH_IMAGE = re.compile(r"vios_l2|\bC(29[56]0|35[56]0|3650|37[45]0|3850)\w*|CAT[39]K|Switch Software|cat4500|"
                               r"\bc6800", re.I)
_IOS_ROUTER = re.compile(r"^(ISR|ASR|CSR|C8\d\d\d|C11\d\d|C1[89]\d\d|CISCO\d|IR\d|VIOS\b|IOSV)", re.I)


def _ios_class(system: SystemRecord) -> str:
    model = (system.model or "").strip()
    if _IOS_SWITCH.search(model) or _IOS_SWITCH_IMAGE.search(system.description or ""):
        return "Switch"
    if _IOS_ROUTER.search(model):
        return "Router"
    return "NetworkDevice"


# -- Arista EOS ----------------------------------------------------------------------------------

def _eos_version(rows: Rows, raw: str) -> list[Record]:
    row = rows[0]
    model, image = _text(row.get("model")), _text(row.get("image"))
    if not model and not image:
        raise ValueError("neither the model nor the software image is in the output")
    return [SystemRecord(model=model, serial_number=_text(row.get("serial_number")), os_version=image,
                         base_mac=_mac(row.get("sys_mac")))]


def _eos_hostname(rows: Rows, raw: str) -> list[Record]:
    row = rows[0]
    hostname, fqdn = _text(row.get("hostname")), _text(row.get("fqdn"))
    if not hostname or not re.fullmatch(r"[A-Za-z0-9][\w.-]*", hostname):
        raise ValueError(f"no usable hostname in the output ({hostname!r})")
    return [SystemRecord(hostname=short_hostname(hostname), fqdn=fqdn.lower() if fqdn and "." in fqdn else None)]


def _eos_interfaces(rows: Rows, raw: str) -> list[Record]:
    return [InterfaceRecord(
        if_name=long_interface_name(str(r["interface"])), alias=_text(r.get("description")),
        mac_address=_mac(r.get("mac_address")), speed_mbps=_speed_mbps(r.get("bandwidth")),
        admin_status=_admin_from_link(r.get("link_status")), oper_status=_oper(r.get("protocol_status")),
        addresses=[a for a in [_iface_address(r.get("ip_address"))] if a],
    ) for r in rows]


def _eos_lldp(rows: Rows, raw: str) -> list[Record]:
    """EOS's template keeps neither the port description nor the capabilities: read them from each
    neighbour's block (the rows and the blocks come in the same order)."""
    blocks = re.split(r"(?m)^\s+Neighbor\s+", raw)[1:]
    extra = [(_block_field(b, "Port Description"), _block_field(b, "Enabled Capabilities")) for b in blocks]
    if len(extra) != len(rows):
        extra = [(None, None)] * len(rows)
    return _some([_neighbour("lldp", r.get("local_interface"), r.get("neighbor_name"),
                             _remote_port(r.get("neighbor_interface"), pdesc), r.get("mgmt_address"),
                             r.get("neighbor_description"), caps)
                  for r, (pdesc, caps) in zip(rows, extra, strict=True)])


def _block_field(block: str, label: str) -> str | None:
    m = re.search(rf"(?m)^\s*-?\s*{label}\s*:\s*(?P<v>.*)$", block)
    return _text(m["v"]) if m else None


def _eos_class(system: SystemRecord) -> str:
    return "Switch"


# -- Juniper Junos -------------------------------------------------------------------------------

def _junos_version(rows: Rows, raw: str) -> list[Record]:
    row = rows[0]
    hostname = _text(row.get("hostname"))
    if not hostname:
        raise ValueError("no hostname in the output")
    version = _text(row.get("junos_version"))
    return [SystemRecord(hostname=short_hostname(hostname), model=_text(row.get("model")),
                         serial_number=_text(row.get("serial_number")),
                         os_version=version.split()[0] if version else None)]


def _junos_chassis(rows: Rows, raw: str) -> list[Record]:
    """The Chassis row. The template splits its columns on single spaces, which cuts descriptions
    like ``JNP204 [MX204]``; the columns are separated by two or more spaces, so read them so."""
    row = next((r for r in rows if _text(r.get("chassis_serial_number"))), rows[0])
    serial, model = _text(row.get("chassis_serial_number")), _text(row.get("chassis_description"))
    line = re.search(r"(?m)^Chassis\s+(?P<cols>\S.*?)\s*$", raw)
    cols = re.split(r"\s{2,}", line["cols"]) if line else []
    if len(cols) >= 2:
        serial, model = cols[-2], cols[-1]
    bracketed = re.search(r"\[(?P<model>[^\]]+)\]", model or "")
    return [SystemRecord(serial_number=serial, model=bracketed["model"] if bracketed else model)]


# ntc-templates' Junos ``show interfaces`` has no MAC or speed column; this small template adds them.
JUNOS_INTERFACE_HARDWARE_TEMPLATE = r"""Value Required INTERFACE (\S+)
Value SPEED ([^,\s]+)
Value MAC_ADDRESS ([0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5})

Start
  ^Physical\s+interface: -> Continue.Record
  ^Physical\s+interface:\s+${INTERFACE},
  ^.*\bSpeed:\s+${SPEED}
  ^\s+Current\s+address:\s+${MAC_ADDRESS}
"""


def _junos_interfaces(rows: Rows, raw: str) -> list[Record]:
    import io

    fsm = textfsm.TextFSM(io.StringIO(JUNOS_INTERFACE_HARDWARE_TEMPLATE))
    hardware = {row[0]: (row[1], row[2]) for row in fsm.ParseText(raw)}
    out: list[Record] = []
    for r in rows:
        name = str(r["interface"])
        speed, mac = hardware.get(name, (None, None))
        admin = _text(r.get("admin_state"))
        address = None
        local, destination = _text(r.get("local")), _text(r.get("destination"))
        if local and destination and "/" in destination:
            address = _iface_address(local, destination.rsplit("/", 1)[1])
        elif local:
            address = _iface_address(local, "32" if ":" not in local else "128")
        out.append(InterfaceRecord(
            if_name=name, alias=_text(r.get("description")), mac_address=_mac(mac), speed_mbps=_speed_mbps(speed),
            admin_status=("up" if admin.lower() == "enabled" else "down") if admin else None,
            oper_status=_oper(r.get("link_status")), addresses=[address] if address else [],
        ))
    return out


def _junos_lldp(rows: Rows, raw: str) -> list[Record]:
    return _some([_neighbour("lldp", r.get("local_interface"), r.get("neighbor_name"),
                             _remote_port(r.get("neighbor_interface"), None)) for r in rows])


def _junos_class(system: SystemRecord) -> str:
    model = (system.model or "").lower()
    if re.match(r"v?srx", model):
        return "Firewall"
    if re.match(r"(ex|qfx)", model):
        return "Switch"
    if re.match(r"(v?mx|ptx|acx|m\d|t\d)", model):
        return "Router"
    return "NetworkDevice"


# -- Cisco NX-OS ---------------------------------------------------------------------------------

def _nxos_version(rows: Rows, raw: str) -> list[Record]:
    row = rows[0]
    hostname = _text(row.get("hostname"))
    if not hostname:
        raise ValueError("no hostname in the output")
    return [SystemRecord(hostname=short_hostname(hostname), model=_text(row.get("platform")),
                         serial_number=_text(row.get("serial")), os_version=_text(row.get("os")))]


def _nxos_interfaces(rows: Rows, raw: str) -> list[Record]:
    return [InterfaceRecord(
        if_name=long_interface_name(str(r["interface"])), alias=_text(r.get("description")),
        mac_address=_mac(r.get("mac_address")),
        speed_mbps=_speed_mbps(r.get("speed")) or _speed_mbps(r.get("bandwidth")),
        admin_status=_nxos_admin(r.get("admin_state"), r.get("link_status")),
        oper_status=_oper(r.get("link_status")),
        addresses=[a for a in [_iface_address(r.get("ip_address"), r.get("prefix_length"))] if a],
    ) for r in rows]


def _nxos_admin(admin_state: Any, link_status: Any) -> str | None:
    word = _first_word(admin_state)
    return word if word in ("up", "down") else _admin_from_link(link_status)


def _nxos_cdp(rows: Rows, raw: str) -> list[Record]:
    return _some([_neighbour("cdp", r.get("local_interface"), _text(r.get("neighbor_name")) or r.get("chassis_id"),
                             _remote_port(r.get("neighbor_interface"), None), r.get("mgmt_address"),
                             r.get("platform"), r.get("capabilities")) for r in rows])


def _nxos_lldp(rows: Rows, raw: str) -> list[Record]:
    return _some([_neighbour("lldp", r.get("local_interface"), r.get("neighbor_name"),
                             _remote_port(r.get("neighbor_interface"), None), r.get("mgmt_address"),
                             r.get("neighbor_description"), r.get("capabilities")) for r in rows])


# -- the table -----------------------------------------------------------------------------------

PLATFORMS: dict[str, Platform] = {
    "cisco_ios": Platform("cisco_ios", "Cisco", "IOS", True, (
        Command("show version", _ios_version, essential=True),
        Command("show inventory", _inventory),
        Command("show interfaces", _ios_interfaces),
        Command("show cdp neighbors detail", _ios_cdp, may_be_empty=True),
        Command("show lldp neighbors detail", _ios_lldp, may_be_empty=True),
    ), _ios_class),
    "arista_eos": Platform("arista_eos", "Arista", "EOS", True, (
        Command("show version", _eos_version, essential=True),
        Command("show hostname", _eos_hostname, essential=True),
        Command("show interfaces", _eos_interfaces),
        Command("show lldp neighbors detail", _eos_lldp, may_be_empty=True),
    ), _eos_class),
    "juniper_junos": Platform("juniper_junos", "Juniper", "Junos", False, (
        Command("show version", _junos_version, essential=True),
        Command("show chassis hardware", _junos_chassis),
        Command("show interfaces", _junos_interfaces),
        Command("show lldp neighbors", _junos_lldp, may_be_empty=True),
    ), _junos_class),
    "cisco_nxos": Platform("cisco_nxos", "Cisco", "NX-OS", False, (
        Command("show version", _nxos_version, essential=True),
        Command("show inventory", _inventory),
        Command("show interface", _nxos_interfaces),
        Command("show cdp neighbors detail", _nxos_cdp, may_be_empty=True),
        Command("show lldp neighbors detail", _nxos_lldp, may_be_empty=True),
    ), lambda system: "Switch"),
}


def neighbour_class(neighbour: NeighbourRecord) -> str:
    """A neighbour's class from what it advertises: its model (CDP platform, LLDP description)
    when that is telling, else its capabilities (bridge/switch -> Switch, router -> Router)."""
    platform = neighbour.platform or ""
    model = re.sub(r"^cisco\s+", "", platform, flags=re.I).split(",")[0].strip()
    by_model = _ios_class(SystemRecord(model=model, description=platform))
    if by_model != "NetworkDevice":
        return by_model
    if re.search(r"Arista|NX-OS|Nexus", platform, re.I):
        return "Switch"
    caps = set(neighbour.capabilities)
    if caps & {"phone", "wlan"}:
        return "NetworkDevice"  # phones and access points bridge too, but are no switches
    if caps & {"switch", "bridge"}:
        return "Switch"
    if "router" in caps:
        return "Router"
    if "host" in caps:
        return "Host"
    return "NetworkDevice"


def platform_for(device_type: str) -> Platform:
    try:
        return PLATFORMS[device_type]
    except KeyError:
        raise ValueError(f"device type {device_type!r} is not supported; use one of "
                         f"{', '.join(sorted(PLATFORMS))}") from None


def command_for(device_type: str, text: str) -> Command:
    for command in platform_for(device_type).commands:
        if command.text == text:
            return command
    raise ValueError(f"{device_type} has no discovery command {text!r}")


_CLI_ERROR = re.compile(r"^(%\s*(invalid|incomplete|ambiguous|unknown|unrecognized|error)\b|unknown command|"
                        r"syntax error|error:|invalid command|command rejected)", re.IGNORECASE)
_NOT_RUNNING = re.compile(r"(cdp|lldp)\b.*\bnot (enabled|running)", re.IGNORECASE)


def _first_line(raw: str) -> str:
    for line in raw.splitlines():
        if line.strip() and line.strip() != "^":
            return line.strip()
    return ""


def cli_rejection(raw: str) -> str | None:
    """The CLI's error line when ``raw`` is a refusal (``% Invalid input``, ``Unknown command`` ...)."""
    first = _first_line(raw)
    return first if _CLI_ERROR.search(first) else None


def parse_command(device_type: str, command: Command, raw: str) -> list[Record]:
    """The records ``raw`` (the command's output) holds; raises CommandParseError naming the command."""
    first = _first_line(raw)
    if command.may_be_empty and _NOT_RUNNING.search(first):
        return []
    if _CLI_ERROR.search(first):
        raise CommandParseError(command.text, f"the device rejected the command ({first[:80]!r})")
    if not first:
        if command.may_be_empty:
            return []
        raise CommandParseError(command.text, "the device returned nothing")
    try:
        from ntc_templates.parse import ParsingException, parse_output

        rows: Rows = parse_output(platform=device_type, command=command.text, data=raw)
    except (ParsingException, textfsm.TextFSMError, textfsm.TextFSMTemplateError) as exc:
        reason = (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:160]
        raise CommandParseError(command.text, f"the {device_type} TextFSM template does not match ({reason})") from exc
    if not rows:
        if command.may_be_empty:
            return []
        raise CommandParseError(command.text, f"the {device_type} TextFSM template found no record")
    try:
        return command.convert(rows, raw)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise CommandParseError(command.text, f"unexpected content: {exc}") from exc


_DETECT: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("cisco_nxos", re.compile(r"Cisco Nexus Operating System|\bNX-OS\b|cisco Nexus\s?\d+ Chassis|^\s*NXOS: version",
                              re.I | re.M)),
    ("unsupported:cisco_xr", re.compile(r"IOS[ -]XR", re.I)),
    ("arista_eos", re.compile(r"Arista|\bvEOS|\bcEOS", re.I)),
    ("juniper_junos", re.compile(r"\bJUNOS\b|^Junos:", re.I | re.M)),
    ("cisco_ios", re.compile(r"Cisco IOS|IOS-XE|Cisco Internetwork Operating System", re.I)),
)


def detect_device_type(show_version: str) -> str | None:
    """The supported device type whose ``show version`` this is; None when none fits."""
    for device_type, pattern in _DETECT:
        if pattern.search(show_version):
            return None if device_type.startswith("unsupported:") else device_type
    return None
