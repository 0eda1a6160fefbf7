"""tunepilot's benchmarks: sample efficiency, sampler overhead, sweep server, online optimizer."""
