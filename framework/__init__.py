"""howto-conformance: DPDK HowTo guides as conformance tests."""
