"""stunscope: a Wireshark-style analyzer for STUN, TURN and ICE traffic."""

__version__ = "0.1.0"
