"""Pure STUN/TURN codec: bytes to messages and back (RFC 8489, 8656, 5780, 8445, 7983). No I/O.

- :mod:`~stunscope.wire.demux`: ``classify(payload)`` by content (RFC 7983/9443).
- :mod:`~stunscope.wire.decode`: ``decode_message``, ``decode_channeldata``, ``decode_ms_turn_mux``;
  never raise, report ``findings`` or a ``DecodeFailure``.
- :mod:`~stunscope.wire.attributes`: typed values (``attribute_value``, ``format_value``) and helpers
  (``xor_mapped``, ``error_code``, ``ice_role``...), decoded lazily from the raw TLVs.
- :mod:`~stunscope.wire.integrity`: FINGERPRINT, MESSAGE-INTEGRITY(-SHA256), ``Keyring``, credentials.
- :mod:`~stunscope.wire.framing`: ``StreamFramer`` for one TCP direction.
- :mod:`~stunscope.wire.encode`: ``encode_message`` and value encoders, for tests and crafting.
- :mod:`~stunscope.wire.registry`: IANA method/attribute/error tables and names.
"""
