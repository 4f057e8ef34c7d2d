"""The SNMP client and walker: against snmpd (compared with net-snmp's own snmpbulkwalk), and against a
scripted agent on a real UDP socket that misbehaves the ways real agents do."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from snmp_agents import SnmpdAgent

from discovery.credentials import SecretRef, SnmpProfile
from discovery.outcomes import Outcome, TargetResult
from discovery.runner import collect_target
from discovery.snmp import snmprec
from discovery.snmp.ber import (
    PDU_GET,
    PDU_GET_BULK,
    TAG_END_OF_MIB_VIEW,
    TAG_INTEGER,
    TAG_NO_SUCH_OBJECT,
    TAG_OCTET_STRING,
    Varbind,
    decode_message,
    encode_response,
)
from discovery.snmp.client import (
    SnmpProtocolError,
    SnmpRefused,
    SnmpSettings,
    SnmpTimeout,
    V2cSession,
    open_session,
    walk,
)
from discovery.snmp.collector import SnmpCollector
from discovery.snmp.oids import IF_DESCR, IF_NAME, IF_TYPE, LLDP_REM_SYS_NAME, Oid, dotted, oid

HR_SW_INSTALLED = oid("1.3.6.1.2.1.25.6.3")  # installed packages: thousands of values that stay put
FAST = SnmpSettings(timeout=0.3, retries=0, max_repetitions=25)


def snmpbulkwalk(agent: SnmpdAgent, root: Oid) -> list[Oid]:
    out = subprocess.run(["snmpbulkwalk", "-v2c", "-c", agent.community, "-Cr50", "-On", "-t", "2",
                          f"{agent.host}:{agent.port}", dotted(root)], capture_output=True, text=True, timeout=60,
                         check=True, env={**os.environ, "MIBS": ""})
    return [oid(line.split(" = ", 1)[0]) for line in out.stdout.splitlines() if " = " in line]


@pytest.fixture()
def v2c(snmpd: SnmpdAgent, monkeypatch: pytest.MonkeyPatch) -> SnmpProfile:
    monkeypatch.setenv("CMDB_TEST_CLIENT_COMMUNITY", snmpd.community)
    return SnmpProfile("v2c", "2c", community=SecretRef("v2c", "community", env="CMDB_TEST_CLIENT_COMMUNITY"),
                       port=snmpd.port)


@pytest.fixture()
def v3(snmpd: SnmpdAgent, monkeypatch: pytest.MonkeyPatch) -> SnmpProfile:
    monkeypatch.setenv("CMDB_TEST_CLIENT_AUTH", snmpd.auth_key)
    monkeypatch.setenv("CMDB_TEST_CLIENT_PRIV", snmpd.priv_key)
    return SnmpProfile("v3", "3", user=snmpd.v3_user, auth_protocol="sha",
                       auth_key=SecretRef("v3", "auth_key", env="CMDB_TEST_CLIENT_AUTH"), priv_protocol="aes",
                       priv_key=SecretRef("v3", "priv_key", env="CMDB_TEST_CLIENT_PRIV"), port=snmpd.port)


async def read(profile: SnmpProfile, host: str, columns: list[Oid], settings: SnmpSettings = FAST) -> list[Varbind]:
    session = await open_session(host, profile, settings)
    try:
        return await walk(session, columns, settings)
    finally:
        session.close()


def test_walk_matches_snmpbulkwalk(snmpd: SnmpdAgent, v2c: SnmpProfile) -> None:
    expected = snmpbulkwalk(snmpd, HR_SW_INSTALLED)
    assert len(expected) > 100
    for reps in (1, 7, 50):
        got = asyncio.run(read(v2c, snmpd.host, [HR_SW_INSTALLED],
                               SnmpSettings(timeout=1, retries=1, max_repetitions=reps)))
        assert [name for name, _, _ in got] == expected


def test_columns_side_by_side_and_v3_agree_with_v2c(snmpd: SnmpdAgent, v2c: SnmpProfile, v3: SnmpProfile) -> None:
    columns = [IF_DESCR, IF_TYPE, IF_NAME, oid("1.3.6.1.2.1.25.6.3.1.2"), oid("1.3.6.1.2.1.25.6.3.1.4")]
    one_by_one = [vb for c in columns for vb in asyncio.run(read(v2c, snmpd.host, [c]))]
    together = asyncio.run(read(v2c, snmpd.host, columns))
    assert together == one_by_one
    assert asyncio.run(read(v3, snmpd.host, columns)) == together
    assert {c for c in columns if any(name[:len(c)] == c for name, _, _ in together)} == set(columns)


def test_nothing_listening_is_refused(v2c: SnmpProfile) -> None:
    with pytest.raises(SnmpRefused, match=r"127\.0\.0\.1"):
        asyncio.run(read(SnmpProfile("x", "2c", community=v2c.community, port=9), "127.0.0.1", [IF_DESCR]))


# --- a scripted agent: real UDP, real BER, behaviour chosen per test -------------------------------------


@dataclass
class ScriptedAgent(asyncio.DatagramProtocol):
    """Answers GET and GETBULK from ``mib``; ``rewrite`` may change (or drop, with None) each answer."""

    mib: list[Varbind]
    community: bytes = b"public"
    rewrite: Callable[[int, list[Varbind]], list[Varbind] | None] = lambda n, vbs: vbs
    status: int = 0
    requests: list[tuple[int, list[Oid], int, int]] = field(default_factory=list)
    transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        _, community, pdu, request_id, _, max_rep, asked = decode_message(data)
        names = [name for name, _, _ in asked]
        self.requests.append((pdu, names, max_rep, request_id))
        if community != self.community:
            return
        answer: list[Varbind] = []
        if pdu == PDU_GET:
            known = {n: (t, v) for n, t, v in self.mib}
            answer = [(n, *known.get(n, (TAG_NO_SUCH_OBJECT, None))) for n in names]
        elif pdu == PDU_GET_BULK:
            cursors = list(names)
            for _ in range(max_rep):
                for i, cursor in enumerate(cursors):
                    nxt = next((vb for vb in self.mib if vb[0] > cursor), None)
                    answer.append(nxt if nxt is not None else (cursor, TAG_END_OF_MIB_VIEW, None))
                    cursors[i] = answer[-1][0]
        rewritten = self.rewrite(len(self.requests), answer)
        if rewritten is not None:
            self.transport.sendto(encode_response(request_id, self.community, rewritten, self.status), addr)


def table(rows: int) -> list[Varbind]:
    mib: list[Varbind] = [(oid("1.3.6.1.2.1.1.5.0"), TAG_OCTET_STRING, b"scripted")]
    for col in (2, 3):
        mib += [((*oid("1.3.6.1.2.1.2.2.1"), col, i), TAG_INTEGER, i * col) for i in range(1, rows + 1)]
    mib.append((oid("1.3.6.1.2.1.31.1.1.1.1.1"), TAG_OCTET_STRING, b"after the table"))
    return sorted(mib)


async def against(agent: ScriptedAgent, columns: list[Oid], settings: SnmpSettings = FAST) -> list[Varbind]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: agent, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    session = await V2cSession("127.0.0.1", port, agent.community.decode(), settings).open()
    try:
        return await walk(session, columns, settings)
    finally:
        session.close()
        transport.close()


IF_COLS = [oid("1.3.6.1.2.1.2.2.1.2"), oid("1.3.6.1.2.1.2.2.1.3")]


def test_columns_end_where_their_subtree_ends() -> None:
    agent = ScriptedAgent(table(30))
    got = asyncio.run(against(agent, IF_COLS, SnmpSettings(timeout=0.3, retries=0, max_repetitions=8)))
    assert got == [vb for vb in table(30) if vb[0][:10] in IF_COLS]
    assert all(pdu == PDU_GET_BULK and reps == 8 for pdu, _, reps, _ in agent.requests)
    assert len(agent.requests) == 4  # 30 rows at 8 a time, the last answer crossing into ifXTable


def test_end_of_mib_view_ends_the_walk() -> None:
    mib = [vb for vb in table(5) if vb[0][:10] == IF_COLS[1]]  # the column is the last thing in the MIB
    assert asyncio.run(against(ScriptedAgent(mib), [IF_COLS[1]])) == mib


def test_non_increasing_oid_is_an_error_not_a_loop() -> None:
    def go_back(n: int, vbs: list[Varbind]) -> list[Varbind]:
        return vbs if n == 1 else [(IF_COLS[0] + (1,), TAG_INTEGER, 0), *vbs[1:]]

    with pytest.raises(SnmpProtocolError, match="not increasing"):
        asyncio.run(against(ScriptedAgent(table(60), rewrite=go_back), [IF_COLS[0]]))


def test_a_lost_answer_is_retried_with_the_same_request() -> None:
    agent = ScriptedAgent(table(3), rewrite=lambda n, vbs: None if n == 1 else vbs)
    got = asyncio.run(against(agent, [IF_COLS[0]], SnmpSettings(timeout=0.2, retries=1)))
    assert [v for _, _, v in got] == [2, 4, 6]
    assert agent.requests[0] == agent.requests[1]  # same request id: a late first answer would do too


def test_silence_wrong_community_and_errors() -> None:
    with pytest.raises(SnmpTimeout, match=r"no SNMP answer within 0\.2 s"):
        asyncio.run(against(ScriptedAgent(table(3), rewrite=lambda n, vbs: None), [IF_COLS[0]],
                            SnmpSettings(timeout=0.2, retries=1)))
    # an answer carrying another community is not ours: ignored, so the request times out
    impostor = ScriptedAgent(table(3), rewrite=lambda n, vbs: vbs)
    impostor.community = b"other"

    async def wrong_community() -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: impostor, local_addr=("127.0.0.1", 0))
        session = await V2cSession("127.0.0.1", transport.get_extra_info("sockname")[1], "public", FAST).open()
        try:
            await walk(session, [IF_COLS[0]], FAST)
        finally:
            session.close()
            transport.close()

    with pytest.raises(SnmpTimeout):
        asyncio.run(wrong_community())
    with pytest.raises(SnmpProtocolError, match="genErr"):
        asyncio.run(against(ScriptedAgent(table(3), status=5), [IF_COLS[0]]))


def test_too_big_halves_the_repetitions() -> None:
    agent = ScriptedAgent(table(12))
    agent.rewrite = lambda n, vbs: vbs
    original = agent.datagram_received

    def too_big_above_4(data: bytes, addr: Any) -> None:
        agent.status = 1 if decode_message(data)[5] > 4 else 0
        original(data, addr)

    agent.datagram_received = too_big_above_4  # type: ignore[method-assign]
    got = asyncio.run(against(agent, [IF_COLS[0]], SnmpSettings(timeout=0.3, retries=0, max_repetitions=16)))
    assert [v for _, _, v in got] == [2 * i for i in range(1, 13)]
    assert [reps for _, _, reps, _ in agent.requests][:3] == [16, 8, 4]


LAB_DATA = Path(__file__).resolve().parents[2] / "data" / "snmp"


async def collect_from(agent: ScriptedAgent, monkeypatch: pytest.MonkeyPatch) -> TargetResult:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: agent, local_addr=("127.0.0.1", 0))
    monkeypatch.setenv("CMDB_TEST_SCRIPTED_COMMUNITY", "public")
    profile = SnmpProfile("scripted", "2c", port=transport.get_extra_info("sockname")[1],
                          community=SecretRef("scripted", "community", env="CMDB_TEST_SCRIPTED_COMMUNITY"))
    try:
        return await collect_target(SnmpCollector([profile], SnmpSettings(timeout=0.2, retries=0)), "127.0.0.1")
    finally:
        transport.close()


def test_a_table_the_agent_fails_makes_the_batch_partial(monkeypatch: pytest.MonkeyPatch) -> None:
    agent = ScriptedAgent(snmprec.load(LAB_DATA / "sw-acc-2.snmprec"))
    answer = agent.datagram_received

    def gen_err_on_lldp(data: bytes, addr: Any) -> None:
        lldp_rem_entry = LLDP_REM_SYS_NAME[:-1]
        first_asked = decode_message(data)[6][0][0]
        agent.status = 5 if first_asked[:len(lldp_rem_entry)] == lldp_rem_entry else 0  # 5: genErr
        answer(data, addr)

    agent.datagram_received = gen_err_on_lldp  # type: ignore[method-assign]
    result = asyncio.run(collect_from(agent, monkeypatch))
    assert result.outcome == Outcome.OK and result.batch is not None
    assert not result.batch.complete
    assert result.detail.startswith("partial: lldpRemTable:") and "genErr" in result.detail
    assert [r for r in result.batch.rels if r.type == "CONNECTED_TO"] == []  # what failed is missing ...
    assert sum(c.cls == "Interface" for c in result.batch.cis) == 7  # ... what was read is there


def test_an_agent_that_goes_silent_is_not_waited_for_table_by_table(monkeypatch: pytest.MonkeyPatch) -> None:
    agent = ScriptedAgent(snmprec.load(LAB_DATA / "sw-acc-2.snmprec"), rewrite=lambda n, vbs: vbs if n <= 3 else None)
    started = time.monotonic()
    result = asyncio.run(collect_from(agent, monkeypatch))
    assert time.monotonic() - started < 1.0  # one timeout (0.2 s), not one per table
    assert result.batch is not None and not result.batch.complete
    assert "not read after an earlier timeout" in result.detail
    assert len(agent.requests) == 4  # system group, ifTable, ifXTable, then one unanswered
