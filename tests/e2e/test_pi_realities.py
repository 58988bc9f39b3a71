"""The agent as a real Raspberry Pi and GoPiGo3 need it (issue 12, section 4),
end to end against the simulated board: the distance sensor fails safe, 16-tick
motors are detected as the vendor's driver does, and the power button (GPIO22)
stops the wheels before it asks for a shutdown. Every port is picked at run
time; the simulated board is driven through the simulation-only debug endpoint."""

import json
import subprocess
import time

import pytest

from conftest import GOPIGO
from mqttc import Client
from test_agent import (THING, Agent, command, fleet, http_json, result_of,  # noqa: F401 (fixture)
                        wait_for, wait_moving, write_robot_toml)

# The simulated board's serial number (gopigo3::sim::SimConfig's default), as
# the vendor's get_id() prints it.
SIM_SERIAL = "53494D2D475047330000000000000001"


def vendor_serial_list(path, serials):
    """The vendor's 16-tick list: a protocol-0 pickle of serial strings."""
    body = "(lp0\nS''\np1\n" + "".join(f"aS'{s}'\np{i + 2}\n" for i, s in enumerate(serials)) + "a."
    path.write_text(body)


def append(cfg, text):
    cfg.write_text(cfg.read_text() + text)
    return cfg


def controller(core, ctrl):
    c = Client(core, ctrl, "controller")
    assert c.sub(f"gopigo/{THING}/cmd/result") == [1]
    assert c.sub(f"gopigo/{THING}/telemetry", qos=0) == [0]
    return c


def test_an_obstacle_distance_without_a_sensor_refuses_to_start(fleet, tmp_path):
    core, robot, ctrl = fleet
    cfg = append(write_robot_toml(tmp_path / "robot.toml", core, robot),
                 "[sim]\ndistance_sensor = false\n")
    r = subprocess.run([GOPIGO, "agent", "--config", str(cfg), "--sim"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, r.stdout
    err = r.stderr
    for needle in (str(cfg), "[safety] obstacle_mm = 200 needs the distance sensor",
                   "[sim] distance_sensor = false",
                   "/dev/i2c-1", "set [safety] obstacle_mm = 0"):
        assert needle in err, (needle, err)
    assert "connected" not in r.stdout


def test_obstacle_mm_0_drives_without_a_sensor(fleet, tmp_path):
    core, robot, ctrl = fleet
    cfg = append(write_robot_toml(tmp_path / "robot.toml", core, robot),
                 "[safety]\nobstacle_mm = 0\n[sim]\ndistance_sensor = false\n")
    agent = Agent(cfg)
    c = controller(core, ctrl)
    try:
        assert any(l.startswith("distance    none; obstacle stop off") for l in agent.lines), agent.lines
        x0 = agent.sim()["pose"]["x_mm"]
        cid = command(c, action="drive", direction="forward", duration_ms=500)
        result_of(c, cid, "done", timeout=5)
        assert agent.sim()["pose"]["x_mm"] > x0 + 40
        t = wait_for(c, lambda topic, d: topic.endswith("/telemetry"))[1]
        assert "distance_mm" not in t and "distance_error" not in t, t
    finally:
        c.close()
        agent.stop()


def test_a_failing_sensor_stops_a_forward_drive_and_recovery_takes_a_new_command(fleet, tmp_path):
    core, robot, ctrl = fleet
    agent = Agent(write_robot_toml(tmp_path / "robot.toml", core, robot))
    c = controller(core, ctrl)
    sensor = agent.debug + "/distance_sensor"
    try:
        cid = command(c, action="drive", direction="forward", duration_ms=10000)
        wait_moving(agent)
        assert http_json(sensor, {"failing": True})["failing"] is True
        r = result_of(c, cid, "done", timeout=3)
        assert r["reason"].startswith("distance sensor read failed"), r
        assert "until it reads again" in r["reason"], r
        time.sleep(0.3)
        assert agent.sim()["wheel_dps"] == {"left": 0.0, "right": 0.0}
        t = wait_for(c, lambda topic, d: topic.endswith("/telemetry") and "distance_error" in d)[1]
        assert "simulated VL53L0X" in t["distance_error"] and "distance_mm" not in t, t
        assert any("distance sensor read failed" in l for l in agent.err), "logged"
        # forward is refused while the sensor fails
        r = result_of(c, command(c, action="drive", direction="forward"), "rejected")
        assert "distance sensor read failed" in r["reason"], r
        # reads again: nothing resumes by itself; the next forward command runs
        http_json(sensor, {"failing": False})
        time.sleep(0.5)
        assert agent.sim()["wheel_dps"] == {"left": 0.0, "right": 0.0}
        x0 = agent.sim()["pose"]["x_mm"]
        cid = command(c, action="drive", direction="forward", duration_ms=500)
        result_of(c, cid, "done", timeout=5)
        assert agent.sim()["pose"]["x_mm"] > x0 + 40
        wait_for(c, lambda topic, d: topic.endswith("/telemetry") and "distance_mm" in d
                 and "distance_error" not in d)
    finally:
        c.close()
        agent.stop()


@pytest.mark.parametrize("motor_ticks,ticks,listed,want_mm", [
    (16, '"auto"', True, 200.0),    # detected from the vendor's serial list
    (6, '"auto"', False, 200.0),    # not listed: 6, as the vendor
    (16, "16", False, 200.0),       # told
    (16, "6", False, 75.0),         # the bug: 37.5 % of the distance
], ids=["16-detected", "6-detected", "16-configured", "16-as-6"])
def test_drive_cm_drives_the_commanded_distance_on_6_and_16_tick_motors(fleet, tmp_path, motor_ticks,
                                                                        ticks, listed, want_mm):
    core, robot, ctrl = fleet
    vendor = tmp_path / "vendor-home"
    vendor.mkdir()
    vendor_serial_list(vendor / ".gpg3_list_of_serial_numbers.pkl",
                       [SIM_SERIAL] if listed else ["00A513C35152415447202020FF192B1C"])
    cfg = append(write_robot_toml(tmp_path / "robot.toml", core, robot),
                 f'[board]\nticks = {ticks}\nvendor_config = "{vendor / ".gpg3_config.json"}"\n'
                 f"[sim]\nmotor_ticks = {motor_ticks}\n")
    agent = Agent(cfg)
    c = controller(core, ctrl)
    try:
        motors = [l for l in agent.lines if l.startswith("motors")]
        assert motors, agent.lines
        if ticks == '"auto"':
            want = "16 ticks (the board's serial number is in" if listed else "6 ticks (no vendor config"
            assert want in motors[0] and SIM_SERIAL in motors[0], motors
        x0 = agent.sim()["pose"]["x_mm"]
        cid = command(c, action="drive_cm", cm=20)
        result_of(c, cid, "done", timeout=15)
        moved = agent.sim()["pose"]["x_mm"] - x0
        print(f"{motor_ticks}-tick motors, ticks = {ticks}: drive_cm 20 moved {moved:.1f} mm")
        assert abs(moved - want_mm) < 10, moved
    finally:
        c.close()
        agent.stop()


def test_power_button_stops_the_wheels_then_runs_the_shutdown_command(fleet, tmp_path):
    core, robot, ctrl = fleet
    flag = tmp_path / "powered-off"
    cfg = append(write_robot_toml(tmp_path / "robot.toml", core, robot),
                 f'[board]\nshutdown_command = ["touch", "{flag}"]\n')
    agent = Agent(cfg)
    c = controller(core, ctrl)
    try:
        assert any(l.startswith("power       button on GPIO22") for l in agent.lines), agent.lines
        cid = command(c, action="drive", direction="forward", duration_ms=10000)
        wait_moving(agent)
        assert not flag.exists()
        http_json(agent.debug + "/power_button", {"pressed": True})
        assert agent.proc.wait(20) == 0, "".join(agent.err[-20:])
        agent._out.join(5)
        r = result_of(c, cid, "done")
        assert "power button" in r["reason"], r
        assert flag.exists(), "the shutdown command ran"
        # wheels stopped and floated before the command ran
        final = next(i for i, l in enumerate(agent.lines) if l.startswith("sim final"))
        ran = next(i for i, l in enumerate(agent.lines) if l.startswith("power       button pressed"))
        assert final < ran, agent.lines
        state = json.loads(agent.lines[final].split(None, 2)[2])
        assert state == {"motor_modes": ["Float", "Float"], "wheel_dps": [0.0, 0.0]}, state
    finally:
        c.close()
        agent.stop()


def test_power_button_is_left_to_the_vendor_service_when_it_holds_the_power_line(fleet, tmp_path):
    core, robot, ctrl = fleet
    flag = tmp_path / "powered-off"
    cfg = append(write_robot_toml(tmp_path / "robot.toml", core, robot),
                 f'[board]\nhold_power_line = false\nshutdown_command = ["touch", "{flag}"]\n')
    agent = Agent(cfg)
    try:
        assert any("left to the vendor's gopigo3_power" in l for l in agent.lines), agent.lines
        http_json(agent.debug + "/power_button", {"pressed": True})
        time.sleep(1.0)
        assert agent.proc.poll() is None and not flag.exists()
    finally:
        assert agent.stop() == 0


def test_a_failing_shutdown_command_is_an_error_after_the_wheels_stopped(fleet, tmp_path):
    core, robot, ctrl = fleet
    cfg = append(write_robot_toml(tmp_path / "robot.toml", core, robot),
                 '[board]\nshutdown_command = ["false"]\n')
    agent = Agent(cfg)
    try:
        http_json(agent.debug + "/power_button", {"pressed": True})
        assert agent.proc.wait(20) != 0
        err = "".join(agent.err)
        assert 'shutdown_command ["false"] failed' in err and "shut the Pi down by hand" in err, err
        assert any(l.startswith("sim final") for l in agent.lines)
    finally:
        agent.stop()


def test_the_simulated_board_runs_no_shutdown_command_unless_one_is_set(fleet, tmp_path):
    # The simulated button can be pressed by any local user (debug endpoint):
    # the default `systemctl poweroff` belongs to the real board only.
    core, robot, ctrl = fleet
    agent = Agent(write_robot_toml(tmp_path / "robot.toml", core, robot))
    try:
        assert any("nothing is run" in l for l in agent.lines if l.startswith("power")), agent.lines
        http_json(agent.debug + "/power_button", {"pressed": True})
        assert agent.proc.wait(20) == 0, "".join(agent.err[-20:])
        agent._out.join(5)
        assert any("no shutdown_command on the simulated board" in l for l in agent.lines), agent.lines
        assert not any("running" in l for l in agent.lines if l.startswith("power")), agent.lines
    finally:
        agent.stop()
