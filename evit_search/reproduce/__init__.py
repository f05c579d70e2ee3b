"""The paper reproduced: its tables as data, the throughput benches, Table 6, the proxy check."""
