"""A simulated plant that streams edge packages to Kafka, and a CSV replay.

Pure modules (`plant`, `signals`, `clock`, `faults`, `simulate`, `replay`) build
contract-shaped bytes with no I/O; `producer` is the only one that talks to Kafka;
`cli` wires them into the `vigil-gateway` command.
"""
