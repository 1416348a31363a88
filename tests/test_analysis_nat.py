"""NAT behaviour (RFC 4787 mapping, RFC 5780 filtering tests, RFC 3489 names)."""

from __future__ import annotations

from test_analysis_support import BINDING, Script, change_request, codes, xor_mapped

LOCAL = "10.0.0.1:5000"


def nat_of(s: Script):
    (nat,) = [n for n in s.analyze().nat if n.local == LOCAL]
    return nat


def test_same_mapping_toward_two_servers_is_endpoint_independent() -> None:
    s = Script()
    s.transaction(0, LOCAL, "192.0.2.1:3478", BINDING, resp=[xor_mapped("203.0.113.5:6000")])
    s.transaction(1, LOCAL, "198.51.100.1:3478", BINDING, resp=[xor_mapped("203.0.113.5:6000")])
    nat = nat_of(s)
    assert nat.mapping_behavior == "endpoint-independent"
    assert nat.mapped == ("203.0.113.5:6000",)
    assert nat.filtering_behavior == "unknown" and nat.rfc3489_type == "unknown"


def test_mapping_per_server_address_is_symmetric() -> None:
    s = Script()
    s.transaction(0, LOCAL, "192.0.2.1:3478", BINDING, resp=[xor_mapped("203.0.113.5:6000")])
    s.transaction(1, LOCAL, "198.51.100.1:3478", BINDING, resp=[xor_mapped("203.0.113.5:6001")])
    nat = nat_of(s)
    assert nat.mapping_behavior == "address-dependent" and nat.rfc3489_type == "symmetric"
    assert "symmetric-nat" in codes(s.analyze())


def test_mapping_per_server_port_is_address_and_port_dependent() -> None:
    s = Script()
    s.transaction(0, LOCAL, "192.0.2.1:3478", BINDING, resp=[xor_mapped("203.0.113.5:6000")])
    s.transaction(1, LOCAL, "192.0.2.1:3479", BINDING, resp=[xor_mapped("203.0.113.5:6002")])
    assert nat_of(s).mapping_behavior == "address-and-port-dependent"


def test_one_server_only_is_unknown_with_reason() -> None:
    s = Script()
    s.transaction(0, LOCAL, "192.0.2.1:3478", BINDING, resp=[xor_mapped("203.0.113.5:6000")])
    nat = nat_of(s)
    assert nat.mapping_behavior == "unknown" and "one server" in nat.reason


def test_filtering_from_change_request_tests() -> None:
    def run(ip_port_answered: bool, port_answered: bool):
        s = Script()
        s.transaction(0, LOCAL, "192.0.2.1:3478", BINDING, resp=[xor_mapped("203.0.113.5:6000")])
        s.transaction(1, LOCAL, "198.51.100.1:3478", BINDING, resp=[xor_mapped("203.0.113.5:6000")])
        s.transaction(2, LOCAL, "192.0.2.1:3478", BINDING, [change_request(True, True)],
                      resp=[xor_mapped("203.0.113.5:6000")] if ip_port_answered else None)
        s.transaction(3, LOCAL, "192.0.2.1:3478", BINDING, [change_request(False, True)],
                      resp=[xor_mapped("203.0.113.5:6000")] if port_answered else None)
        s.transaction(50, "10.9.9.9:1", "192.0.2.1:3478", BINDING, resp=[])  # clock moves on
        return nat_of(s), s.analyze()

    full, _ = run(True, True)
    restricted, _ = run(False, True)
    port_restricted, analysis = run(False, False)
    assert (full.filtering_behavior, full.rfc3489_type) == ("endpoint-independent", "full-cone")
    assert (restricted.filtering_behavior, restricted.rfc3489_type) == ("address-dependent", "restricted-cone")
    assert port_restricted.rfc3489_type == "port-restricted-cone"
    # An unanswered filtering test is expected behaviour, not an unanswered request.
    assert "unanswered-request" not in codes(analysis)


def test_no_nat_when_mapped_equals_local() -> None:
    s = Script()
    s.transaction(0, LOCAL, "192.0.2.1:3478", BINDING, resp=[xor_mapped(LOCAL)])
    s.transaction(1, LOCAL, "198.51.100.1:3478", BINDING, resp=[xor_mapped(LOCAL)])
    nat = nat_of(s)
    assert nat.mapping_behavior == "endpoint-independent" and "no NAT" in nat.reason
