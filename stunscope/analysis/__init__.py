"""State reconstruction from the message stream: transactions, TURN, ICE, NAT, verdicts."""
