"""Packet sources: pcap/pcapng reader, link/IP/UDP/TCP unwrap, message stream, live capture."""
