"""Bundled simulators that stand in for real hardware (ASICs, GPUs, miner and AI-job processes).

They speak the same wire protocols and ABIs as the real devices and never import `drivers` or
`console`, so that a driver test against a simulator proves something.
"""
