"""Pure STUN/TURN codec: bytes to messages and back (RFC 8489, 8656, 5780, 8445, 7983). No I/O."""
