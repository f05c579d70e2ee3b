"""Throughput and cost measurement: backends, the interleaved timing session (run in a worker
process), params and FLOPs, ONNX export."""
