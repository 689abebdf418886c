"""Traffic: scapy packet builders, the TG agent driver and send-and-verify checks."""
