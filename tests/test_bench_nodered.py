"""The Node-RED comparison's floor: what a consumer that keeps the gateway's guarantees spends at
least on a point, and the verdict that names its parts."""

from __future__ import annotations

from bench.nodered import Floor, _delay_verdict, _verdict, validate_cpu_us


def test_the_validation_floor_validates_a_contract_payload_of_the_loads_size() -> None:
    for readings in (1, 10, 500):  # decode_readings raises on a payload the contract refuses
        assert validate_cpu_us(readings) > 0


def test_a_goal_below_the_floor_is_said_to_be_out_of_reach() -> None:
    floor = Floor(receive_us=3.0, validate_us=1.0, write_us=2.0)
    verdict = _verdict("CPU a point", 0.7, floor, baseline_us=10.0)
    assert verdict == (
        "CPU a point: MISSED: floor is 0.60 of Node-RED's "
        "(receive+ack 0.30, validate 0.10, write 0.20)"
    )
    below = _verdict("CPU a point", 0.9, Floor(1.0, 1.0, 1.0), baseline_us=10.0)
    assert below.startswith("CPU a point: MISSED: 0.90 of Node-RED's against a floor of 0.30")


def test_a_delay_missed_by_less_than_a_poll_is_called_level() -> None:
    level = _delay_verdict("p99", mine_s=0.074, baseline_s=0.072)
    assert (
        level
        == "p99: MISSED (1.03 of Node-RED's, 2 ms, less than the 50 ms between two polls: level)"
    )
    slower = _delay_verdict("p99", mine_s=0.227, baseline_s=0.078)
    assert slower == "p99: MISSED (2.91 of Node-RED's, 149 ms)"
